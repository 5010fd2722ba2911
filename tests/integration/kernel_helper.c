/* Drives the kernel module directly for the integration tests, inside a
 * throwaway network namespace:
 *   kernel-helper POLICY INVENTORY good          apply the whole ruleset
 *   kernel-helper POLICY INVENTORY bad           the same plus an element
 *                                                overlapping an interval
 *   kernel-helper POLICY INVENTORY long          the same with a set's name
 *                                                past the kernel's limit
 *   kernel-helper POLICY INVENTORY without NAME  apply without container NAME
 *   kernel-helper POLICY INVENTORY add NAME      apply NAME's arrival delta
 *   kernel-helper POLICY INVENTORY del NAME      apply NAME's leaving delta
 * Prints the kernel error and exits 1 on one; exit 2 on bad arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/compile.h"
#include "bulkhead/kernel.h"

static size_t find(const struct inventory *inv, const char *name)
{
	size_t i;

	for (i = 0; i < inv->n; i++)
		if (!strcmp(inv->c[i].name, name))
			return i;
	return inv->n;
}

int main(int argc, char **argv)
{
	struct diags d = {0};
	struct inventory *inv = inventory_new(), less;
	struct ir_delta delta = {0};
	struct compiler *cc;
	struct ir_ruleset *rs;
	struct ir_set *s;
	struct ir_elem *e;
	struct policy *p;
	char err[512], *old_name = NULL;
	struct kernel *kh;
	size_t k = 0;
	int r;

	if (argc < 4)
		return 2;
	p = policy_load(argv[1], &d);
	if (!p || inventory_load(inv, argv[2], &d))
		return 2;
	if (argc == 5 && (k = find(inv, argv[4])) == inv->n)
		return 2;
	cc = compile_new(p, NULL);
	less = *inv;
	if (!strcmp(argv[3], "without")) {
		/* drop container k by moving the last one into its place */
		struct inv_container tmp = inv->c[k];

		inv->c[k] = inv->c[inv->n - 1];
		inv->c[inv->n - 1] = tmp;
		less.n = inv->n - 1;
	}
	rs = compile_ruleset(cc, &less, argv[2], &d);
	if (!rs)
		return 2;
	if (!strcmp(argv[3], "bad")) {
		s = ir_set_find(rs, "backend_out4");
		if (!s || !s->n)
			return 2;
		e = ir_elem_add(s);
		*e = s->e[0];
		e->hi[2] += 10; /* same start, longer port range */
	}
	if (!strcmp(argv[3], "long")) {
		/* the rules name the set by its name's pointer: the old one
		 * stays theirs, and comes back before the ruleset is freed */
		s = ir_set_find(rs, "backend_out4");
		if (!s)
			return 2;
		old_name = s->name;
		s->name = xmalloc(301);
		memset(s->name, 'x', 300);
		s->name[300] = 0;
	}
	kh = kernel_open(err, sizeof(err));
	if (!kh) {
		printf("%s\n", err);
		return 1;
	}
	if (!strcmp(argv[3], "add") || !strcmp(argv[3], "del")) {
		compile_delta(cc, inv, k, argv[3][0] == 'a', &delta);
		r = kernel_apply_delta(kh, rs, &delta, 0, err, sizeof(err));
		printf("%zu element changes\n", delta.n);
	} else {
		r = kernel_apply(kh, rs, err, sizeof(err));
	}
	if (r)
		printf("%s\n", err);
	kernel_close(kh);
	if (old_name) {
		free(s->name);
		s->name = old_name;
	}
	ir_delta_free(&delta);
	ir_free(rs);
	compile_free(cc);
	inventory_free(inv);
	policy_free(p);
	diags_free(&d);
	return r ? 1 : 0;
}
