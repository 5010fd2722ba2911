/* Unit tests for src/scope.c: policy directories. Names qualified by
 * their file, scopes that bound what a team's services hold, edges
 * between scopes only where both sides declare them (on the ports both
 * name), and every bad directory a clear error at FILE:LINE:COL. */
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bulkhead/trace.h"
#include "unit.h"

#define HOST                                                                   \
	"version: 1\nsettings:\n  networks: [teams]\nservices:\n"              \
	"  probe:\n    match: {name: probe}\n"
#define SHOP                                                                   \
	"version: 1\nscope: {compose_project: shop}\nservices:\n"              \
	"  backend:\n    match: {compose_service: backend}\n"                  \
	"    egress:\n      - to: billing/api\n"                               \
	"        ports: [443/tcp, 8443/tcp]\n"                                 \
	"  thief:\n    match: {compose_service: api}\n"
#define BILLING                                                                \
	"version: 1\nscope: {compose_project: billing}\nservices:\n"           \
	"  api:\n    match: {compose_service: api}\n"
#define ACCEPT                                                                 \
	"    ingress:\n      - from: shop/backend\n"                           \
	"        ports: [443/tcp, 9000/tcp]\n"

struct file {
	const char *name, *yaml;
};

static char dir[64];

static void put(const char *name, const char *yaml, mode_t mode)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(yaml, f);
	fclose(f);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void mkdir_with(const struct file *f, size_t n)
{
	size_t i;

	snprintf(dir, sizeof(dir), "/tmp/bulkhead-scope-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	chmod(dir, 0755);
	for (i = 0; i < n; i++)
		put(f[i].name, f[i].yaml, 0644);
}

static void rm_dir(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* The diag whose message holds msg: FILE (relative to the directory),
 * LINE, COL and level must be as given. */
static void has_diag(const struct diags *d, const char *file, unsigned line,
		     unsigned col, enum diag_level lv, const char *msg)
{
	char path[128];
	size_t i;

	snprintf(path, sizeof(path), "%s%s%s", dir, *file ? "/" : "", file);
	for (i = 0; i < d->n; i++)
		if (strstr(d->v[i].msg, msg))
			break;
	if (i == d->n)
		diags_print(d, stderr);
	ck_assert_msg(i < d->n, "no diag \"%s\"", msg);
	ck_assert_str_eq(d->v[i].file, path);
	ck_assert_uint_eq(d->v[i].line, line);
	ck_assert_uint_eq(d->v[i].col, col);
	ck_assert_int_eq(d->v[i].level, lv);
}

static struct inventory *teams_inventory(void)
{
	return load_inventory_fixture(FIXTURES "/teams.json");
}

START_TEST(test_names_and_scope)
{
	const struct file f[] = {{"00-host.yaml", HOST},
				 {"shop.yaml", SHOP},
				 {"billing.yaml", BILLING ACCEPT}};
	struct inventory *inv = teams_inventory();
	struct diags d = {0};
	struct policy *p;
	struct compiler *cc;
	long a, b;
	size_t i;

	mkdir_with(f, 3);
	p = policy_load(dir, &d);
	ck_assert_ptr_nonnull(p);
	ck_assert(p->is_dir);
	ck_assert_uint_eq(p->nfiles, 3);
	ck_assert_uint_eq(p->nscopes, 2);
	/* name order: 00-host, billing, shop */
	ck_assert_str_eq(p->services[0].name, "probe");
	ck_assert_str_eq(p->services[1].name, "billing/api");
	ck_assert_str_eq(p->services[2].name, "shop/backend");
	ck_assert_str_eq(p->services[3].name, "shop/thief");
	ck_assert_int_eq(p->services[0].scope, -1);
	ck_assert_str_eq(p->scopes[p->services[2].scope].name, "shop");
	ck_assert_str_eq(p->scopes[1].name, "shop");
	ck_assert(p->networks_set);
	/* shop's thief matches billing's api containers by compose service;
	 * its scope keeps it from holding any of them */
	cc = compile_new(p, NULL);
	for (i = 0; i < inv->n; i++) {
		long s = compile_assign(cc, &inv->c[i], &a, &b);

		if (!strcmp(inv->c[i].name, "billing-api-1"))
			ck_assert_int_eq(s, 1);
		ck_assert_int_ne(s, 3);
		ck_assert_int_ne(s, COMPILE_CONFLICT);
	}
	compile_free(cc);
	policy_free(p);
	diags_free(&d);
	inventory_free(inv);
	rm_dir();
}
END_TEST

static int trace_of(const struct policy *p, const struct inventory *inv,
		    const char *port, struct strbuf *out)
{
	struct compiler *cc = compile_new(p, NULL);
	struct diags d = {0};
	struct ir_ruleset *rs = compile_ruleset(cc, inv, "inv", &d);
	int r;

	ck_assert_ptr_nonnull(rs);
	out->len = 0;
	r = trace_run(cc, p, rs, inv, "shop-backend-1", "billing-api-1", port,
		      out, &d);
	ir_free(rs);
	compile_free(cc);
	diags_free(&d);
	return r;
}

START_TEST(test_consent)
{
	const struct file one[] = {{"shop.yaml", SHOP},
				   {"billing.yaml", BILLING}};
	struct inventory *inv = teams_inventory();
	struct strbuf out = {0};
	struct diags d = {0};
	struct policy *p;
	char want[160];

	/* one side: valid, warned, not programmed, traced as not-accepted */
	mkdir_with(one, 2);
	p = policy_load(dir, &d);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(d.nerrors, 0);
	has_diag(&d, "shop.yaml", 7, 9, DIAG_WARNING,
		 "billing/api does not accept this edge (no ingress from "
		 "shop/backend in billing.yaml)");
	ck_assert_uint_eq(p->nedges, 0);
	ck_assert_uint_eq(p->ncross, 1);
	ck_assert_int_eq(trace_of(p, inv, "443/tcp", &out), TRACE_DENIED);
	ck_assert_ptr_nonnull(strstr(out.s, "reason: not-accepted"));
	snprintf(want, sizeof(want), "declared: %s/shop.yaml:7:9", dir);
	ck_assert_ptr_nonnull(strstr(out.s, want));
	policy_free(p);
	diags_free(&d);

	/* both sides: the ports both name, and only those */
	put("billing.yaml", BILLING ACCEPT, 0644);
	p = policy_load(dir, &d);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(d.n, 0);
	ck_assert_uint_eq(p->nedges, 1);
	ck_assert_uint_eq(p->edges[0].nports, 1);
	ck_assert_uint_eq(p->edges[0].ports[0].lo, 443);
	/* declared by the egress side, accepted by the ingress side */
	ck_assert_ptr_nonnull(strstr(p->edges[0].file, "/shop.yaml"));
	ck_assert_ptr_nonnull(
	    strstr(p->edges[0].accepted_file, "/billing.yaml"));
	ck_assert_int_eq(trace_of(p, inv, "443/tcp", &out), TRACE_ALLOWED);
	ck_assert_ptr_nonnull(strstr(out.s, "accepted: "));
	/* shop names 8443 and billing does not; billing names 9000 and shop
	 * does not */
	ck_assert_int_eq(trace_of(p, inv, "8443/tcp", &out), TRACE_DENIED);
	ck_assert_ptr_nonnull(strstr(out.s, "reason: not-accepted"));
	ck_assert_int_eq(trace_of(p, inv, "9000/tcp", &out), TRACE_DENIED);
	ck_assert_ptr_nonnull(strstr(out.s, "reason: not-accepted"));
	policy_free(p);
	diags_free(&d);

	/* both sides, no port in common */
	put("billing.yaml",
	    BILLING "    ingress:\n      - from: shop/backend\n"
		    "        ports: [22/tcp]\n",
	    0644);
	p = policy_load(dir, &d);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->nedges, 0);
	has_diag(&d, "billing.yaml", 7, 9, DIAG_WARNING,
		 "shop/backend accepts this edge on none of its ports");
	ck_assert_uint_eq(d.n, 2); /* and the same at shop.yaml:7:9 */
	policy_free(p);
	diags_free(&d);
	sb_free(&out);
	inventory_free(inv);
	rm_dir();
}
END_TEST

/* A team's edge to one of the host's services: a host file must allow
 * it; the host's edges need no one's consent. */
START_TEST(test_host_service)
{
	const char *host =
	    "version: 1\nservices:\n  dns:\n    match: {name: dns}\n%s";
	const char *shop =
	    "version: 1\nscope: {compose_project: shop}\nservices:\n"
	    "  a:\n    match: {name: a}\n    egress:\n      - to: dns\n"
	    "        ports: [53/udp]\n";
	const struct file f[] = {{"shop.yaml", shop}};
	struct diags d = {0};
	struct policy *p;
	char buf[256];

	mkdir_with(f, 1);
	snprintf(buf, sizeof(buf), host, "");
	put("00-host.yaml", buf, 0644);
	p = policy_load(dir, &d);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->nedges, 0);
	has_diag(&d, "shop.yaml", 7, 9, DIAG_WARNING,
		 "dns does not accept this edge (no ingress from shop/a in a "
		 "file without scope)");
	policy_free(p);
	diags_free(&d);
	snprintf(buf, sizeof(buf), host,
		 "    ingress:\n      - from: shop/a\n        ports: [any]\n");
	put("00-host.yaml", buf, 0644);
	p = policy_load(dir, &d);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(d.n, 0);
	/* the host's edge itself, unconditional */
	ck_assert_uint_eq(p->nedges, 1);
	ck_assert_ptr_null(p->edges[0].accepted_file);
	policy_free(p);
	diags_free(&d);
	rm_dir();
}
END_TEST

struct bad_dir {
	struct file f[3];
	const char *file;
	unsigned line, col;
	const char *msg;
};

static const struct bad_dir bad[] = {
    {{{"shop.yaml", SHOP},
      {"billing.yaml", BILLING},
      {"x.yaml", "version: 1\nscope: {compose_project: shop}\nservices:\n"
		 "  y:\n    match: {name: y}\n"}},
     "x.yaml",
     2,
     8,
     "this scope is shop's already"},
    {{{"shop.yaml",
       "version: 1\nscope: {compose_project: shop}\n"
       "services:\n  a:\n    match: {compose_project: billing}\n"}},
     "shop.yaml",
     4,
     3,
     "service 'a' can never hold a container: its match.compose_project "
     "lies outside the file's scope"},
    {{{"shop.yaml", "version: 1\nscope: {compose_project: shop}\n"
		    "services:\n  a:\n    match: {labels: {team: red}}\n"},
      {"billing.yaml", BILLING}},
     NULL,
     0,
     0,
     NULL},
    {{{"shop.yaml", "version: 1\nscope: {labels: {team: blue}}\n"
		    "services:\n  a:\n    match: {labels: {team: red}}\n"}},
     "shop.yaml",
     4,
     3,
     "its match.labels lies outside"},
    {
	{{"shop.yaml", SHOP},
	 {"billing.yaml", "version: 1\nscope: "
			  "{compose_project: billing}\n"
			  "services:\n  apx:\n    match: "
			  "{name: a}\n"}},
	"shop.yaml",
	7,
	13,
	"unknown peer 'billing/api' (", /* then the file, then the name */
    },
    {{{"shop.yaml", SHOP}},
     "shop.yaml",
     7,
     13,
     "unknown peer 'billing/api' (no file of this directory declares a "
     "scope 'billing')"},
    {{{"shop.yaml", "version: 1\nscope: {compose_project: shop}\n"
		    "services:\n  a:\n    match: {name: a}\n"
		    "    egress:\n      - to: db\n"}},
     "shop.yaml",
     7,
     13,
     "unknown peer 'db' (not a service of this file or of a file without "
     "scope"},
    {{{"shop.yaml", "version: 1\nscope: {compose_project: shop}\n"
		    "settings:\n  log_rate: 5/second\n"
		    "services:\n  a:\n    match: {name: a}\n"}},
     "shop.yaml",
     4,
     3,
     "settings.log_rate applies to the whole host: only a file without "
     "'scope' may set it"},
    {{{"a.yaml", HOST},
      {"b.yaml", "version: 1\nsettings:\n  networks: "
		 "[x]\nservices:\n  q:\n    match: {name: "
		 "q}\n"}},
     "b.yaml",
     3,
     3,
     "settings.networks is set already, at "},
    {{{"a.yaml", HOST}, {"b.yaml", HOST}},
     "b.yaml",
     5,
     3,
     "service 'probe' is defined already, at "},
    {{{"shop.yaml", "version: 1\nscope: {compose_project: shop}\n"
		    "services:\n  a:\n    match: {name: a}\n"
		    "    ingress:\n      - from: world\n"}},
     "shop.yaml",
     7,
     9,
     "a scoped file may not open its services this way (world-ingress); a "
     "file without scope allows it with settings.scopes_may: "
     "[world-ingress]"},
    {{{"shop.yaml", "version: 1\nscope: {compose_project: shop}\n"
		    "owners: [no-such-group-here]\n"
		    "services:\n  a:\n    match: {name: a}\n"}},
     "shop.yaml",
     3,
     9,
     "owners: no group 'no-such-group-here'"},
    {{{"shop.yaml", "version: 1\nowners: [root]\n"
		    "services:\n  a:\n    match: {name: a}\n"}},
     "shop.yaml",
     2,
     9,
     "'owners' needs a 'scope'"},
    /* a file that does not load hides nothing else's errors, and no
     * name it would define is called unknown */
    {{{"a.yaml", "version: 1\nservices: [\n"},
      {"shop.yaml", "version: 1\nscope: {compose_project: shop}\n"
		    "services:\n  s:\n    match: {name: s}\n"
		    "    egress:\n      - to: a/x\n      - to: nobody/x\n"}},
     "shop.yaml",
     8,
     13,
     "unknown peer 'nobody/x' (no file of this directory declares a scope "
     "'nobody')"},
    {{{"bad name.yaml", HOST}},
     "bad name.yaml",
     0,
     0,
     "the file's name names its scope"},
};

START_TEST(test_bad)
{
	const struct bad_dir *b = &bad[_i];
	struct diags d = {0};
	struct policy *p;
	size_t n = 0;

	while (n < 3 && b->f[n].name)
		n++;
	mkdir_with(b->f, n);
	p = policy_load(dir, &d);
	if (!b->msg) {
		/* a label the scope does not name: can still meet */
		ck_assert_ptr_nonnull(p);
		policy_free(p);
	} else {
		ck_assert_ptr_null(p);
		has_diag(&d, b->file, b->line, b->col, DIAG_ERROR, b->msg);
	}
	diags_free(&d);
	rm_dir();
}
END_TEST

START_TEST(test_single_file_refuses_scope)
{
	struct diags d = {0};
	const char *y = "version: 1\nscope: {compose_project: shop}\n"
			"services:\n  a:\n    match: {name: a}\n"
			"    egress:\n      - to: billing/api\n";

	ck_assert_ptr_null(policy_parse("one.yaml", y, strlen(y), &d));
	ck_assert_uint_eq(d.nerrors, 2);
	ck_assert_ptr_nonnull(strstr(d.v[0].msg, "belongs to a file of a "
						 "policy directory"));
	ck_assert_ptr_nonnull(strstr(d.v[1].msg, "unknown peer 'billing/api' "
						 "(SCOPE/SERVICE names"));
	diags_free(&d);
}
END_TEST

/* What someone else could change is refused, with what and why. */
START_TEST(test_permissions)
{
	const struct file f[] = {{"shop.yaml", SHOP},
				 {"billing.yaml", BILLING}};
	struct diags d = {0};
	char path[128], link[128];

	mkdir_with(f, 2);
	put("billing.yaml", BILLING, 0666);
	ck_assert_ptr_null(policy_load(dir, &d));
	has_diag(&d, "billing.yaml", 0, 0, DIAG_ERROR,
		 "refused: anyone may write it");
	diags_free(&d);

	/* group write is the team's way in: allowed */
	put("billing.yaml", BILLING, 0664);
	ck_assert_int_eq(chmod(dir, 0775), 0);
	ck_assert_ptr_null(policy_load(dir, &d));
	has_diag(&d, "", 0, 0, DIAG_ERROR,
		 "refused: a policy directory may be writable by root only");
	diags_free(&d);
	ck_assert_int_eq(chmod(dir, 0755), 0);

	snprintf(path, sizeof(path), "%s/billing.yaml", dir);
	snprintf(link, sizeof(link), "%s/other.yaml", dir);
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_ptr_null(policy_load(dir, &d));
	has_diag(&d, "other.yaml", 0, 0, DIAG_ERROR,
		 "a symbolic link (not followed)");
	diags_free(&d);
	unlink(link);

	/* a single file, too */
	put("billing.yaml", BILLING, 0646);
	ck_assert_ptr_null(policy_load(path, &d));
	ck_assert_ptr_nonnull(strstr(d.v[0].msg, "refused: anyone may write"));
	diags_free(&d);
	rm_dir();
}
END_TEST

Suite *scope_suite(void)
{
	Suite *s = suite_create("scope");
	TCase *tc = tcase_create("scope");

	tcase_add_test(tc, test_names_and_scope);
	tcase_add_test(tc, test_consent);
	tcase_add_test(tc, test_host_service);
	tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(*bad));
	tcase_add_test(tc, test_single_file_refuses_scope);
	tcase_add_test(tc, test_permissions);
	suite_add_tcase(s, tc);
	return s;
}
