/* Runs every unit suite. Needs no root, no Docker and no kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "unit.h"

struct policy *load_policy_fixture(const char *path)
{
	struct diags d = {0};
	struct policy *p = policy_load(path, &d);

	diags_print(&d, stderr);
	diags_free(&d);
	ck_assert_msg(p != NULL, "policy %s did not load", path);
	return p;
}

/* What ports_bind would find on the fixtures' host: each endpoint with
 * a MAC on a port named for its container and network, its link-local
 * address by EUI-64, and one more port on the first bridge that nobody
 * is bound to. */
static void bind_fixture(struct inventory *inv)
{
	size_t i, j;

	for (i = 0; i < inv->n; i++)
		for (j = 0; j < inv->c[i].nnets; j++) {
			struct inv_net *n = &inv->c[i].nets[j];

			if (!n->has_mac)
				continue;
			n->port = xasprintf("p%zu-%zu", i, j);
			n->ll6 = mac_link_local(n->mac);
			n->has_ll6 = true;
		}
	if (inv->n && inv->c[0].nnets) {
		struct inv_bport *b =
		    PUSH(inv->bports, inv->nbports, inv->capbports);

		b->bridge = xstrdup(inv->c[0].nets[0].bridge);
		b->port = xstrdup("p-unbound");
	}
}

struct inventory *load_inventory_fixture(const char *path)
{
	struct diags d = {0};
	struct inventory *inv = inventory_new();

	ck_assert_int_eq(inventory_load(inv, path, &d), 0);
	diags_free(&d);
	bind_fixture(inv);
	return inv;
}

struct ir_ruleset *compile_fixture(const char *policy, const char *inventory)
{
	static const struct compile_fqdn fq[] = {
	    {"api.example.com", AF_INET, 0xcb007105, 0}, /* 203.0.113.5 */
	};
	struct policy *p = load_policy_fixture(policy);
	struct inventory *inv = load_inventory_fixture(inventory);
	struct compile_opts o = {.fqdn = fq, .nfqdn = 1};
	struct compiler *cc = compile_new(p, &o);
	struct diags d = {0};
	struct ir_ruleset *rs = compile_ruleset(cc, inv, "inv", &d);

	ck_assert_ptr_nonnull(rs);
	diags_free(&d);
	compile_free(cc);
	inventory_free(inv);
	policy_free(p);
	return rs;
}

char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

void text_edit(char **s, const char *from, const char *to)
{
	char *at = strstr(*s, from), *out;

	ck_assert_ptr_nonnull(at);
	out = xasprintf("%.*s%s%s", (int)(at - *s), *s, to, at + strlen(from));
	free(*s);
	*s = out;
}

int main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failed;

	srunner_add_suite(sr, inventory_suite());
	srunner_add_suite(sr, compile_suite());
	srunner_add_suite(sr, trace_suite());
	srunner_add_suite(sr, ir_suite());
	srunner_add_suite(sr, kernel_suite());
	srunner_add_suite(sr, docker_suite());
	srunner_add_suite(sr, flowlog_suite());
	srunner_add_suite(sr, fqdn_suite());
	srunner_add_suite(sr, revoke_suite());
	srunner_add_suite(sr, sync_suite());
	srunner_add_suite(sr, control_suite());
	srunner_add_suite(sr, denials_suite());
	srunner_add_suite(sr, allowed_suite());
	srunner_add_suite(sr, metrics_suite());
	srunner_add_suite(sr, flowsink_suite());
	srunner_add_suite(sr, scope_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
