/* Unit tests for src/policy.c: a table of bad policies, each with the
 * exact LINE:COL and message it must produce, and round trips of good
 * policies through the model. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bulkhead/util.h"
#include "unit.h"

#define HDR "version: 1\nservices:\n"
#define SVC HDR "  a:\n    match: {name: a}\n"
#define EGR SVC "    egress:\n"

struct bad {
	const char *yaml;
	unsigned line, col;
	const char *msg;
};

static const struct bad bad[] = {
    /* document shape */
    {"", 1, 1, "empty policy"},
    {"# only a comment\n", 1, 1, "empty policy"},
    {"version: 1\n", 1, 1, "missing 'services'"},
    {"services:\n  a:\n    match: {name: a}\n", 1, 1, "missing 'version: 1'"},
    {"version: 2\nservices:\n  a:\n    match: {name: a}\n", 1, 10,
     "unsupported policy version '2'"},
    {"version: 1\nfoo: 1\nservices:\n  a:\n    match: {name: a}\n", 2, 1,
     "unknown key 'foo' in the policy"},
    {"- version: 1\n", 1, 1, "the policy must be a mapping, not a list"},
    {"version: 1\nservices:\n  a:\n    match: {name: a}\n---\nversion: 1\n", 5,
     1, "one YAML document"},
    {"version: 1\nservices:\n  a: [\n", 4, 1,
     "did not find expected node content"},
    {"version: 1\nservices:\n  caf\xe9:\n    match: {name: a}\n", 3, 7,
     "invalid trailing UTF-8 octet"},
    {"version: 1\nx: &a [1]\nservices: *a\n", 3, 11,
     "YAML aliases (*a) are not allowed"},
    {"version: 1\nversion: 1\nservices:\n  a:\n    match: {name: a}\n", 2, 1,
     "duplicate key 'version' (first at 1:1)"},
    {"version: 1\n? [a]\n: 1\nservices:\n  a:\n    match: {name: a}\n", 2, 3,
     "mapping keys must be plain strings"},
    /* settings */
    {"version: 1\nsettings: [1]\nservices:\n  a:\n    match: {name: a}\n", 2,
     11, "settings must be a mapping, not a list"},
    {"version: 1\nsettings:\n  mod: audit\n"
     "services:\n  a:\n    match: {name: a}\n",
     3, 3, "unknown key 'mod' in settings"},
    {"version: 1\nsettings:\n  mode: strict\n"
     "services:\n  a:\n    match: {name: a}\n",
     3, 9, "mode 'strict' is not enforce or audit"},
    {"version: 1\nsettings:\n  unmatched: maybe\n"
     "services:\n  a:\n    match: {name: a}\n",
     3, 14, "unmatched 'maybe' is not deny or allow"},
    {"version: 1\nsettings:\n  log_allowed: yes\n"
     "services:\n  a:\n    match: {name: a}\n",
     3, 16, "settings.log_allowed 'yes' is not true or false"},
    {"version: 1\nservices:\n  a:\n    match: {name: a}\n"
     "    egress:\n      - to: world\n        log: 1\n",
     7, 14, "log '1' is not true or false"},
    {"version: 1\nsettings:\n  log_rate: fast\n"
     "services:\n  a:\n    match: {name: a}\n",
     3, 13, "log_rate 'fast' is not N/second"},
    {"version: 1\nsettings:\n  log_rate: 0/second\n"
     "services:\n  a:\n    match: {name: a}\n",
     3, 13, "log_rate '0/second'"},
    {"version: 1\nsettings:\n  log_rate: 5/day\n"
     "services:\n  a:\n    match: {name: a}\n",
     3, 13, "log_rate '5/day'"},
    {"version: 1\nsettings:\n  log_group: 70000\n"
     "services:\n  a:\n    match: {name: a}\n",
     3, 14, "log_group '70000' is not a number from 0 to 65535"},
    {"version: 1\nsettings:\n  networks: {a: b}\n"
     "services:\n  a:\n    match: {name: a}\n",
     3, 13, "settings.networks must be a string or a list of strings"},
    {"version: 1\nsettings:\n  mode: [enforce]\n"
     "services:\n  a:\n    match: {name: a}\n",
     3, 9, "settings.mode must be a scalar, not a list"},
    /* services */
    {"version: 1\nservices: [a]\n", 2, 11,
     "services must be a mapping, not a list"},
    {"version: 1\nservices: {}\n", 2, 11, "services must not be empty"},
    {HDR "  \"bad name\":\n    match: {name: x}\n", 3, 3,
     "service name 'bad name' must be 1-64 letters"},
    {HDR "  world:\n    match: {name: w}\n", 3, 3,
     "'world' is a reserved peer name"},
    {SVC "  a:\n    match: {name: b}\n", 5, 3,
     "duplicate key 'a' (first at 3:3)"},
    {HDR "  a: 5\n", 3, 6, "a service must be a mapping, not a scalar"},
    {HDR "  a:\n    egress: []\n", 4, 5, "service 'a' needs a 'match'"},
    {SVC "    egres: []\n", 5, 5, "unknown key 'egres' in a service"},
    /* match */
    {HDR "  a:\n    match: {}\n", 4, 12, "match needs at least one of"},
    {HDR "  a:\n    match: {nam: a}\n", 4, 13, "unknown key 'nam' in match"},
    {HDR "  a:\n    match: {labels: [a]}\n", 4, 21,
     "match.labels must be a mapping, not a list"},
    {HDR "  a:\n    match: {labels: {app: [x]}}\n", 4, 27,
     "label 'app' must have a string value"},
    {HDR "  a:\n    match: {name: []}\n", 4, 19,
     "match.name must not be an empty list"},
    {HDR "  a:\n    match: {image: {a: b}}\n", 4, 20,
     "match.image must be a string or a list of strings"},
    {HDR "  a:\n    match: {name: a, name: b}\n", 4, 22,
     "duplicate key 'name' (first at 4:13)"},
    {HDR "  a:\n    match: [a]\n", 4, 12, "match must be a mapping"},
    /* edges and peers */
    {SVC "    egress: {to: b}\n", 5, 13,
     "egress must be a list, not a mapping"},
    {EGR "      - too: b\n", 6, 9, "unknown key 'too' in an egress rule"},
    {EGR "      - ports: [80/tcp]\n", 6, 9, "egress rule needs 'to'"},
    {EGR "      - to: nobody\n", 6, 13, "unknown peer 'nobody'"},
    {EGR "      - to: ''\n", 6, 13, "peer must not be empty"},
    {SVC "    ingress:\n      - from: host\n", 6, 15,
     "'host' is a destination only"},
    {SVC "    ingress:\n      - from: {fqdn: a.example.com}\n", 6, 15,
     "fqdn peers are egress destinations only"},
    {EGR "      - to: {cidr: [10.0.0.300/8]}\n", 6, 21,
     "'10.0.0.300/8' is not an IPv4 or IPv6 address or CIDR"},
    {EGR "      - to: {cidr: 10.0.0.1/8}\n", 6, 20,
     "CIDR '10.0.0.1/8' has host bits set"},
    {EGR "      - to: {cidr: [\"2001:db8::/129\"]}\n", 6, 21,
     "'2001:db8::/129' is not an IPv4 or IPv6"},
    {EGR "      - to: {cidr: []}\n", 6, 20, "cidr must not be an empty list"},
    {EGR "      - to: {fqdn: \"not a name\"}\n", 6, 20,
     "fqdn must be a DNS name"},
    {EGR "      - to: {cidr: 10.0.0.0/8, fqdn: a.example.com}\n", 6, 13,
     "a peer mapping takes exactly one of cidr or fqdn"},
    {EGR "      - to: {ip: 1.2.3.4}\n", 6, 14, "unknown key 'ip' in a peer"},
    {EGR "      - to: [a]\n", 6, 13, "a peer must be a mapping"},
    /* ports */
    {EGR "      - to: a\n        ports: [99999/tcp]\n", 7, 17,
     "port '99999/tcp' is out of range (1-65535)"},
    {EGR "      - to: a\n        ports: [0/udp]\n", 7, 17,
     "port '0/udp' is out of range (1-65535)"},
    {EGR "      - to: a\n        ports: [90-80/tcp]\n", 7, 17,
     "port '90-80/tcp' is a reversed range"},
    {EGR "      - to: a\n        ports: [80]\n", 7, 17,
     "port '80' needs a protocol"},
    {EGR "      - to: a\n        ports: [80/icmp]\n", 7, 17,
     "port '80/icmp' has an unknown protocol"},
    {EGR "      - to: a\n        ports: [x/tcp]\n", 7, 17,
     "port 'x/tcp' is not a number or a range"},
    {EGR "      - to: a\n        ports: [80-/tcp]\n", 7, 17,
     "port '80-/tcp' is not a number or a range"},
    {EGR "      - to: a\n        ports: []\n", 7, 16,
     "ports must not be empty"},
    {EGR "      - to: a\n        ports: {a: b}\n", 7, 16,
     "ports must be a list, not a mapping"},
    {EGR "      - to: a\n        ports: [[80/tcp]]\n", 7, 17,
     "a port must be a string such as 8080/tcp"},
};

static bool has_diag(const struct diags *d, unsigned line, unsigned col,
		     const char *msg)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->v[i].line == line && d->v[i].col == col &&
		    strstr(d->v[i].msg, msg))
			return true;
	return false;
}

START_TEST(test_bad_policy)
{
	const struct bad *b = &bad[_i];
	struct diags d = {0};
	struct policy *p;

	p = policy_parse("t.yaml", b->yaml, strlen(b->yaml), &d);
	ck_assert_msg(p == NULL, "case %d was accepted", _i);
	ck_assert_uint_gt(d.nerrors, 0);
	if (!has_diag(&d, b->line, b->col, b->msg)) {
		diags_print(&d, stderr);
		ck_abort_msg("case %d: no error '%u:%u: %s'", _i, b->line,
			     b->col, b->msg);
	}
	ck_assert_str_eq(d.v[0].file, "t.yaml");
	diags_free(&d);
}
END_TEST

START_TEST(test_table_size)
{
	ck_assert_uint_ge(sizeof(bad) / sizeof(bad[0]), 40);
}
END_TEST

/* Every error in the file, not only the first. */
START_TEST(test_all_errors)
{
	const char *y = "version: 1\n"
			"settings:\n  mode: loud\n"
			"services:\n"
			"  a:\n    match: {name: a}\n"
			"    egress:\n"
			"      - to: ghost\n        ports: [70000/tcp]\n"
			"  b:\n    match: {nmae: b}\n";
	struct diags d = {0};

	ck_assert_ptr_null(policy_parse("t.yaml", y, strlen(y), &d));
	ck_assert_uint_eq(d.nerrors, 4);
	ck_assert(has_diag(&d, 3, 9, "mode 'loud'"));
	ck_assert(has_diag(&d, 8, 13, "unknown peer 'ghost'"));
	ck_assert(has_diag(&d, 9, 17, "out of range"));
	ck_assert(has_diag(&d, 11, 13, "unknown key 'nmae'"));
	diags_free(&d);
}
END_TEST

START_TEST(test_billion_laughs)
{
	struct strbuf b = {0};
	struct diags d = {0};
	int i, j;

	sb_puts(&b, "version: 1\na0: &a0 [lol, lol, lol, lol, lol]\n");
	for (i = 1; i < 10; i++) {
		sb_printf(&b, "a%d: &a%d [", i, i);
		for (j = 0; j < 9; j++)
			sb_printf(&b, "%s*a%d", j ? ", " : "", i - 1);
		sb_puts(&b, "]\n");
	}
	sb_puts(&b, "services: *a9\n");
	ck_assert_ptr_null(policy_parse("lol.yaml", b.s, b.len, &d));
	ck_assert(has_diag(&d, 3, 10, "YAML aliases (*a0) are not allowed"));
	diags_free(&d);
	sb_free(&b);
}
END_TEST

START_TEST(test_too_large)
{
	size_t n = POLICY_MAX_BYTES + 1;
	char *buf = malloc(n);
	struct diags d = {0};

	memset(buf, '#', n);
	ck_assert_ptr_null(policy_parse("big.yaml", buf, n, &d));
	ck_assert_uint_eq(d.nerrors, 1);
	ck_assert_ptr_nonnull(
	    strstr(d.v[0].msg, "over the 4194304-byte limit"));
	diags_free(&d);
	free(buf);
}
END_TEST

START_TEST(test_too_deep)
{
	struct strbuf b = {0};
	struct diags d = {0};
	int i;

	sb_puts(&b, "version: 1\nservices: ");
	for (i = 0; i < 100; i++)
		sb_putc(&b, '[');
	for (i = 0; i < 100; i++)
		sb_putc(&b, ']');
	ck_assert_ptr_null(policy_parse("deep.yaml", b.s, b.len, &d));
	ck_assert_ptr_nonnull(strstr(d.v[0].msg, "nested too deeply"));
	diags_free(&d);
	sb_free(&b);
}
END_TEST

START_TEST(test_missing_file)
{
	struct diags d = {0};

	ck_assert_ptr_null(policy_load("/nonexistent/policy.yaml", &d));
	ck_assert_ptr_nonnull(strstr(d.v[0].msg, "cannot open"));
	diags_free(&d);
}
END_TEST

/* Every example parses, and dumping the model then parsing the dump
 * gives the same model (the same dump). */
static void round_trip(const char *path)
{
	struct policy *p = load_policy_fixture(path), *q;
	struct strbuf a = {0}, b = {0};
	struct diags d = {0};

	policy_dump(p, &a);
	q = policy_parse("dump.yaml", a.s, a.len, &d);
	if (!q) {
		diags_print(&d, stderr);
		fputs(a.s, stderr);
	}
	ck_assert_ptr_nonnull(q);
	policy_dump(q, &b);
	ck_assert_str_eq(a.s, b.s);
	ck_assert_uint_eq(p->nservices, q->nservices);
	ck_assert_uint_eq(p->nedges, q->nedges);
	policy_free(p);
	policy_free(q);
	sb_free(&a);
	sb_free(&b);
	diags_free(&d);
}

/* Allowed flows are logged as settings.log_allowed says, unless the edge
 * says otherwise. */
START_TEST(test_log_allowed)
{
	static const char one_on[] =
	    "version: 1\nservices:\n  a:\n    match: {name: a}\n"
	    "    egress:\n      - to: world\n        log: true\n"
	    "      - to: host\n";
	struct diags d = {0};
	struct policy *p =
	    load_policy_fixture(FIXTURES "/policy-all-kinds.yaml");
	size_t i, on = 0, off = 0, as_settings = 0;

	ck_assert(p->log_allowed);
	for (i = 0; i < p->nedges; i++) {
		on += p->edges[i].log == 1;
		off += p->edges[i].log == 0;
		as_settings += p->edges[i].log < 0;
		ck_assert(policy_edge_logged(p, &p->edges[i]) ==
			  (p->edges[i].log != 0));
	}
	ck_assert_uint_eq(on, 0);
	ck_assert_uint_eq(off, 1);
	ck_assert_uint_eq(as_settings, p->nedges - 1);
	policy_free(p);
	/* off by default; one edge on */
	p = policy_parse("t.yaml", one_on, strlen(one_on), &d);
	ck_assert_ptr_nonnull(p);
	ck_assert(!p->log_allowed);
	ck_assert_uint_eq(p->nedges, 2);
	ck_assert(policy_edge_logged(p, &p->edges[0]));
	ck_assert(!policy_edge_logged(p, &p->edges[1]));
	policy_free(p);
	diags_free(&d);
}
END_TEST

START_TEST(test_round_trip_examples)
{
	round_trip("policies/three-tier.yaml");
	round_trip("policies/shop.yaml");
	round_trip(FIXTURES "/policy-all-kinds.yaml");
	/* found by the fuzzer: a label key with a quote and a colon */
	round_trip("tests/fuzz/regressions/policy-roundtrip-1");
	/* ... and a network name holding U+0085 (NEL), a line break to
	 * YAML: written raw in the dump, it came back as a space */
	round_trip("tests/fuzz/regressions/policy-nel-in-quoted-name");
}
END_TEST

/* Line breaks beyond ASCII (NEL, LS, PS) survive the dump, escaped. */
START_TEST(test_round_trip_breaks)
{
	const char *y =
	    "version: 1\nsettings:\n  networks: [\"a\\Nb\\Lc\\Pd\"]\n"
	    "services:\n  s:\n    match: { labels: { \"k\\N\": \"v\\P\" } }\n";
	struct diags d = {0};
	struct policy *p = policy_parse("b.yaml", y, strlen(y), &d), *q;
	struct strbuf a = {0}, b = {0};

	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->networks[0], "a\xc2\x85"
					 "b\xe2\x80\xa8"
					 "c\xe2\x80\xa9"
					 "d");
	policy_dump(p, &a);
	ck_assert_ptr_nonnull(strstr(a.s, "\"a\\Nb\\Lc\\Pd\""));
	q = policy_parse("dump.yaml", a.s, a.len, &d);
	ck_assert_ptr_nonnull(q);
	ck_assert_str_eq(q->networks[0], p->networks[0]);
	policy_dump(q, &b);
	ck_assert_str_eq(a.s, b.s);
	policy_free(p);
	policy_free(q);
	sb_free(&a);
	sb_free(&b);
	diags_free(&d);
}
END_TEST

START_TEST(test_model_contents)
{
	struct policy *p =
	    load_policy_fixture(FIXTURES "/policy-all-kinds.yaml");
	const struct pol_edge *e;
	long api = policy_service_index(p, "api");

	ck_assert_int_ge(api, 0);
	ck_assert_int_eq(p->mode, POL_AUDIT);
	ck_assert(p->unmatched_allow);
	ck_assert_uint_eq(p->log_rate, 5);
	ck_assert_str_eq(p->log_rate_unit, "minute");
	ck_assert_uint_eq(p->log_group, 7);
	ck_assert_uint_eq(p->nnetworks, 2);
	/* first edge of api: ingress from world, 80/tcp and 8000-8100/tcp */
	e = &p->edges[0];
	ck_assert(e->ingress);
	ck_assert_int_eq(e->src.kind, PEER_WORLD);
	ck_assert_uint_eq(e->dst.service, (size_t)api);
	ck_assert_uint_eq(e->nports, 2);
	ck_assert_uint_eq(e->ports[1].lo, 8000);
	ck_assert_uint_eq(e->ports[1].hi, 8100);
	ck_assert_uint_eq(e->ports[1].proto_lo, 6);
	ck_assert_uint_eq(e->loc.line, 17);
	policy_free(p);
}
END_TEST

START_TEST(test_port_forms)
{
	struct pol_port pp;
	char buf[32];
	static const char *const ok[] = {
	    "80/tcp", "8000-8100/udp", "53/udp",      "icmp",
	    "icmpv6", "any",	       "1-65535/sctp"};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_ptr_null(policy_port_parse(ok[i], &pp));
		policy_port_format(&pp, buf, sizeof(buf));
		ck_assert_str_eq(buf, ok[i]);
	}
	policy_port_parse("any", &pp);
	ck_assert_uint_eq(pp.proto_lo, 0);
	ck_assert_uint_eq(pp.proto_hi, 255);
	ck_assert_uint_eq(pp.hi, 65535);
}
END_TEST

START_TEST(test_cidr_forms)
{
	int fam, plen;
	u128 lo, hi, all = ~(u128)0;

	ck_assert_int_eq(cidr_parse("::/0", &fam, &lo, &hi, &plen), 0);
	ck_assert_int_eq(fam, AF_INET6);
	ck_assert_int_eq(plen, 0);
	ck_assert(lo == 0 && hi == all);
	ck_assert_int_eq(cidr_parse("0.0.0.0/0", &fam, &lo, &hi, &plen), 0);
	ck_assert_int_eq(fam, AF_INET);
	ck_assert(lo == 0 && hi == 0xffffffffu);
	ck_assert_int_eq(cidr_parse("2001:db8::1", &fam, &lo, &hi, &plen), 0);
	ck_assert_int_eq(plen, 128);
	ck_assert(lo == hi);
	ck_assert_int_eq(cidr_parse("203.0.113.0/24", &fam, &lo, &hi, &plen),
			 0);
	ck_assert(lo == 0xcb007100u && hi == 0xcb0071ffu);
	ck_assert_int_eq(cidr_parse("203.0.113.1/24", &fam, &lo, &hi, &plen),
			 -EDOM);
	ck_assert_int_eq(cidr_parse("::1/0", &fam, &lo, &hi, &plen), -EDOM);
	ck_assert_int_eq(cidr_parse("::/129", &fam, &lo, &hi, &plen), -EINVAL);
}
END_TEST

Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("bad");

	tcase_add_loop_test(tc, test_bad_policy, 0,
			    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_table_size);
	tcase_add_test(tc, test_all_errors);
	tcase_add_test(tc, test_billion_laughs);
	tcase_add_test(tc, test_too_large);
	tcase_add_test(tc, test_too_deep);
	tcase_add_test(tc, test_missing_file);
	suite_add_tcase(s, tc);
	tc = tcase_create("good");
	tcase_add_test(tc, test_round_trip_examples);
	tcase_add_test(tc, test_log_allowed);
	tcase_add_test(tc, test_round_trip_breaks);
	tcase_add_test(tc, test_model_contents);
	tcase_add_test(tc, test_port_forms);
	tcase_add_test(tc, test_cidr_forms);
	suite_add_tcase(s, tc);
	return s;
}
