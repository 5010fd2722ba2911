/* libFuzzer harness for the policy parser: any bytes must give a model or
 * errors, never a crash, a leak or undefined behaviour. A policy that
 * parses must also survive the dump/parse round trip and compile
 * against an empty inventory. The same bytes as one file of a policy
 * directory must parse or be refused the same way. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/compile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diags d = {0};
	struct policy *p, *q;
	struct strbuf a = {0}, b = {0};
	struct inventory *inv;
	struct compiler *cc;
	struct ir_ruleset *rs;

	/* as a directory's file, too: scope, owners, names left open */
	p = policy_parse_part("fuzz.yaml", (const char *)data, size, &d);
	if (!p && !d.nerrors)
		abort();
	policy_free(p);
	diags_free(&d);
	memset(&d, 0, sizeof(d));
	p = policy_parse("fuzz.yaml", (const char *)data, size, &d);
	if (!p) {
		if (!d.nerrors)
			abort(); /* rejected without saying why */
		diags_free(&d);
		return 0;
	}
	policy_dump(p, &a);
	q = policy_parse("dump.yaml", a.s, a.len, &d);
	if (!q)
		abort();
	policy_dump(q, &b);
	if (strcmp(a.s, b.s))
		abort();
	inv = inventory_new();
	cc = compile_new(p, NULL);
	rs = compile_ruleset(cc, inv, "none", &d);
	ir_free(rs);
	compile_free(cc);
	inventory_free(inv);
	policy_free(q);
	policy_free(p);
	sb_free(&a);
	sb_free(&b);
	diags_free(&d);
	return 0;
}
