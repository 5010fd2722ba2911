/* Applies the compiled three-tier ruleset ("good"), or the same with one
 * element added that overlaps an interval of nginx_peer4 ("bad"), which
 * the kernel must refuse as a whole. Run inside a throwaway network
 * namespace by kernel-fail.sh. Prints the kernel error; exit 1 on it. */
#include <stdio.h>
#include <string.h>

#include "bulkhead/compile.h"
#include "bulkhead/kernel.h"

int main(int argc, char **argv)
{
	struct diags d = {0};
	struct policy *p;
	struct inventory *inv = inventory_new();
	struct compiler *cc;
	struct ir_ruleset *rs;
	struct ir_set *s;
	struct ir_elem *e;
	char err[512];
	int r;

	if (argc != 4)
		return 2;
	p = policy_load(argv[1], &d);
	if (!p || inventory_load(inv, argv[2], &d))
		return 2;
	cc = compiler_new(p, NULL);
	rs = compile_ruleset(cc, inv, argv[2], &d);
	if (!rs)
		return 2;
	if (!strcmp(argv[3], "bad")) {
		s = ir_set_find(rs, "nginx_peer4");
		if (!s || !s->n)
			return 2;
		e = ir_elem_add(s);
		*e = s->e[0];
		e->hi[3] += 10; /* same start, longer port range */
	}
	r = kernel_apply(rs, err, sizeof(err));
	if (r)
		printf("%s\n", err);
	ir_free(rs);
	compiler_free(cc);
	inventory_free(inv);
	policy_free(p);
	diags_free(&d);
	return r ? 1 : 0;
}
