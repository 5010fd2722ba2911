/* libFuzzer harness for the docker-inspect reader: any bytes must give an
 * inventory or positioned errors, never a crash, a leak or undefined
 * behaviour. What loads is compiled against a fixed policy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/compile.h"

static const char policy[] =
    "version: 1\nsettings: {unmatched: allow}\nservices:\n"
    "  a:\n    match: {name: \"*a*\"}\n    egress: [{to: b}, {to: world}]\n"
    "  b:\n    match: {labels: {app: b}}\n    ingress: [{from: world}]\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diags d = {0};
	struct inventory *inv = inventory_new();
	struct policy *p;
	struct compiler *cc;
	struct ir_ruleset *rs;
	int r;

	r = inventory_load_mem(inv, (const char *)data, size, "fuzz.json", &d);
	if (r && !d.nerrors)
		abort(); /* failed without saying why */
	if (!r) {
		p = policy_parse("p.yaml", policy, strlen(policy), &d);
		cc = compile_new(p, NULL);
		rs = compile_ruleset(cc, inv, "fuzz.json", &d);
		ir_free(rs);
		compile_free(cc);
		policy_free(p);
	}
	inventory_free(inv);
	diags_free(&d);
	return 0;
}
