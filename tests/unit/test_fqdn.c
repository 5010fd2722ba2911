/* FQDN addresses by TTL, on a fake clock: when names are asked again,
 * the timeouts programmed, the floor and ceiling, what a failure keeps,
 * the retry backoff, and policy reloads keeping state. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bulkhead/diag.h"
#include "bulkhead/fqdn.h"
#include "bulkhead/policy.h"
#include "unit.h"

#define S 1000u /* ms */

static struct policy *policy_with(const char *egress)
{
	struct diags d = {0};
	char *text = xasprintf("version: 1\nservices:\n"
			       "  a:\n    match: { name: a }\n"
			       "    egress:\n%s",
			       egress);
	struct policy *p = policy_parse("p.yaml", text, strlen(text), &d);

	ck_assert_msg(p, "policy: %s", d.n ? d.v[0].msg : "?");
	diags_free(&d);
	free(text);
	return p;
}

static struct fqdn_cache one_name(unsigned min_s, unsigned max_s)
{
	struct policy *p = policy_with("      - to: { fqdn: API.example.com }\n"
				       "        ports: [443/tcp]\n");
	struct fqdn_cache c;

	fqdn_init(&c, min_s, max_s);
	fqdn_set_names(&c, p);
	policy_free(p);
	ck_assert_uint_eq(c.n, 1);
	return c;
}

static const struct fqdn_addr A1 = {AF_INET, 0xcb00710a}; /* 203.0.113.10 */
static const struct fqdn_addr A2 = {AF_INET, 0xcb007114}; /* 203.0.113.20 */

START_TEST(test_ttl_schedule)
{
	struct fqdn_cache c = one_name(30, 3600);
	uint64_t t0 = 5 * S;
	unsigned r;

	/* new names are due at once, and are asked once at a time */
	ck_assert_str_eq(c.v[0].name, "api.example.com");
	ck_assert(fqdn_due(&c, 0, 0));
	ck_assert(fqdn_first_round(&c));
	fqdn_asking(&c, 0);
	ck_assert(!fqdn_due(&c, 0, 100 * S));
	ck_assert_uint_eq(fqdn_next(&c), FQDN_NEVER);

	/* TTL 300: asked again at 300 - 75 s, elements kept 375 s */
	r = fqdn_answer(&c, 0, t0, &A1, 1, 300);
	ck_assert_uint_eq(r, FQDN_PROGRAM | FQDN_CHANGED);
	ck_assert(!fqdn_first_round(&c));
	ck_assert_uint_eq(c.v[0].eff_s, 300);
	ck_assert_uint_eq(fqdn_timeout_ms(&c.v[0]), 375 * S);
	ck_assert_uint_eq(fqdn_next(&c), t0 + 225 * S);
	ck_assert(!fqdn_due(&c, 0, t0 + 225 * S - 1));
	ck_assert(fqdn_due(&c, 0, t0 + 225 * S));
	ck_assert_uint_eq(c.v[0].expires_at, t0 + 375 * S);

	/* the same answer again: programmed anew (timeouts extended), not
	 * a change */
	fqdn_asking(&c, 0);
	r = fqdn_answer(&c, 0, t0 + 225 * S, &A1, 1, 300);
	ck_assert_uint_eq(r, FQDN_PROGRAM);
	ck_assert_uint_eq(c.v[0].expires_at, t0 + 600 * S);
	ck_assert_uint_eq(c.v[0].changed, 1);
	fqdn_free(&c);
}
END_TEST

START_TEST(test_ttl_floor_ceiling)
{
	struct fqdn_cache c = one_name(30, 3600);

	/* below the floor (an /etc/hosts answer has TTL 0): 30 s, asked
	 * again after 20 (the margin is at least 10 s) */
	fqdn_answer(&c, 0, 0, &A1, 1, 0);
	ck_assert_uint_eq(c.v[0].ttl_s, 0);
	ck_assert_uint_eq(c.v[0].eff_s, 30);
	ck_assert_uint_eq(fqdn_next(&c), 20 * S);
	ck_assert_uint_eq(fqdn_timeout_ms(&c.v[0]), 40 * S);
	/* above the ceiling: an hour, asked again after 45 minutes */
	fqdn_answer(&c, 0, 0, &A1, 1, 86400);
	ck_assert_uint_eq(c.v[0].eff_s, 3600);
	ck_assert_uint_eq(fqdn_next(&c), 2700 * S);
	ck_assert_uint_eq(fqdn_timeout_ms(&c.v[0]), 4500 * S);
	fqdn_free(&c);

	/* a floor of 2 s: the margin is at most half the TTL */
	c = one_name(2, 10);
	fqdn_answer(&c, 0, 0, &A1, 1, 1);
	ck_assert_uint_eq(c.v[0].eff_s, 2);
	ck_assert_uint_eq(fqdn_next(&c), 1 * S);
	ck_assert_uint_eq(fqdn_timeout_ms(&c.v[0]), 3 * S);
	fqdn_free(&c);
}
END_TEST

START_TEST(test_failure_keeps_last_good)
{
	struct fqdn_cache c = one_name(30, 3600);
	struct compile_fqdn *l;
	struct fqdn_addr two[] = {A2, A1, A2};
	uint64_t t = 1000 * S;
	unsigned r, k;
	uint64_t want[] = {1, 2, 4, 8, 16, 32, 45, 45};

	r = fqdn_answer(&c, 0, 0, two, 3, 45);
	ck_assert_uint_eq(r, FQDN_PROGRAM | FQDN_CHANGED);
	ck_assert_uint_eq(c.v[0].n, 2); /* duplicates gone */
	ck_assert(c.v[0].a[0].addr == A1.addr);

	/* SERVFAIL: the addresses stay, programmed again so they do not
	 * lapse (45 s and a margin of 11.25); an outage is reported once;
	 * retries back off 1, 2, 4 s ... and never wait past the TTL */
	for (k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		fqdn_asking(&c, 0);
		r = fqdn_failed(&c, 0, t, "server failure");
		ck_assert_uint_eq(r, k ? FQDN_PROGRAM
				       : FQDN_PROGRAM | FQDN_OUTAGE);
		ck_assert_int_eq(c.v[0].state, FQDN_STALE);
		ck_assert_uint_eq(c.v[0].n, 2);
		ck_assert_uint_eq(c.v[0].expires_at, t + 56250);
		ck_assert_uint_eq(fqdn_next(&c), t + want[k] * S);
		t = fqdn_next(&c);
	}
	ck_assert_str_eq(c.v[0].error, "server failure");
	ck_assert_uint_eq(fqdn_compile_list(&c, &l), 2);
	ck_assert_uint_eq(l[0].timeout_ms, 56250);
	ck_assert_str_eq(l[1].name, "api.example.com");
	free(l);

	/* DNS back with a new address: a change, and a recovery */
	r = fqdn_answer(&c, 0, t, &A2, 1, 45);
	ck_assert_uint_eq(r, FQDN_PROGRAM | FQDN_CHANGED | FQDN_RECOVERED);
	ck_assert_int_eq(c.v[0].state, FQDN_OK);
	ck_assert_uint_eq(c.v[0].failures, 0);
	/* an empty answer is a failure too, and keeps A2 */
	r = fqdn_answer(&c, 0, t, NULL, 0, 45);
	ck_assert_uint_eq(r, FQDN_PROGRAM | FQDN_OUTAGE);
	ck_assert_str_eq(c.v[0].error, "no address");
	ck_assert_uint_eq(c.v[0].n, 1);
	fqdn_free(&c);
}
END_TEST

START_TEST(test_never_answered)
{
	struct fqdn_cache c = one_name(30, 3600);
	struct compile_fqdn *l;
	unsigned r;

	r = fqdn_failed(&c, 0, 0, "timeout");
	ck_assert_uint_eq(r, FQDN_OUTAGE); /* nothing to program */
	ck_assert_int_eq(c.v[0].state, FQDN_FAILING);
	ck_assert(!fqdn_first_round(&c));
	ck_assert_uint_eq(fqdn_compile_list(&c, &l), 0);
	ck_assert_uint_eq(fqdn_next(&c), 1 * S);
	free(l);
	fqdn_free(&c);
}
END_TEST

START_TEST(test_reload_keeps_state)
{
	struct policy *p = policy_with("      - to: { fqdn: a.example.com }\n"
				       "      - to: { fqdn: b.example.com }\n"
				       "      - to: { fqdn: A.example.com }\n");
	struct fqdn_cache c;

	fqdn_init(&c, 30, 3600);
	fqdn_set_names(&c, p);
	policy_free(p);
	ck_assert_uint_eq(c.n, 2); /* a name once, whatever its case */
	fqdn_answer(&c, (size_t)fqdn_find(&c, "B.example.com"), 0, &A2, 1, 100);
	p = policy_with("      - to: { fqdn: b.example.com }\n"
			"      - to: { fqdn: c.example.com }\n");
	fqdn_set_names(&c, p);
	policy_free(p);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_int_eq(fqdn_find(&c, "a.example.com"), -1);
	/* b keeps its answer and schedule; c is new and due */
	ck_assert_uint_eq(c.v[0].n, 1);
	ck_assert(!fqdn_due(&c, 0, 1 * S));
	ck_assert(fqdn_due(&c, 1, 0));
	fqdn_free(&c);
}
END_TEST

Suite *fqdn_suite(void)
{
	Suite *s = suite_create("fqdn");
	TCase *tc = tcase_create("ttl");

	tcase_add_test(tc, test_ttl_schedule);
	tcase_add_test(tc, test_ttl_floor_ceiling);
	tcase_add_test(tc, test_failure_keeps_last_good);
	tcase_add_test(tc, test_never_answered);
	tcase_add_test(tc, test_reload_keeps_state);
	suite_add_tcase(s, tc);
	return s;
}
