/* denials.c: filters, times, the summary and the edges it suggests, on
 * records as the daemon writes them. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/denials.h"
#include "unit.h"

static json_t *flow(const char *ts, const char *src_svc, const char *dst,
		    int port, const char *reason)
{
	json_t *d =
	    strcmp(dst, "world")
		? json_pack("{s:s, s:s, s:s, s:i}", "ip", "172.28.5.4",
			    "container", dst, "service", dst, "port", port)
		: json_pack("{s:s, s:s, s:i}", "ip", "203.0.113.9", "peer",
			    "world", "port", port);

	return json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:o, s:s}", "ts",
			 ts, "verdict", "denied", "proto", "tcp", "src", "ip",
			 "172.28.5.2", "container", src_svc, "service", src_svc,
			 "dst", d, "reason", reason);
}

START_TEST(test_query)
{
	struct denials_filter f = {0};
	struct denials_summary *s = denials_summary_new();
	struct policy *p = load_policy_fixture("policies/three-tier.yaml");
	struct strbuf out = {0};
	struct diags dg = {0};
	struct policy *q;
	json_t *a =
	    flow("2026-11-22T16:00:00Z", "nginx", "db", 5432, "no-edge");
	json_t *b =
	    flow("2026-11-22T16:05:00.5Z", "nginx", "db", 5432, "no-edge");
	json_t *c = flow("2026-11-22T16:06:00Z", "db", "world", 443, "no-edge");
	int64_t since;
	size_t before = p->nedges;

	ck_assert_int_eq(denials_time_ms("2026-11-22T16:05:00.5Z"),
			 1795363500500);
	ck_assert_int_eq(denials_time_ms("yesterday"), -1);
	ck_assert_int_eq(denials_since("10m", 1795363800000, &since), 0);
	ck_assert_int_eq(since, 1795363200000);
	ck_assert_int_eq(denials_since("soon", 0, &since), -EINVAL);
	f.since_ms = 1795363200000; /* 16:00:00 */
	ck_assert(denials_match(a, &f) && denials_match(c, &f));
	f.since_ms = 1795363201000;
	ck_assert(!denials_match(a, &f) && denials_match(b, &f));
	f.since_ms = 0;
	f.service = "db";
	ck_assert(denials_match(a, &f) && denials_match(c, &f));
	f.service = "redis";
	ck_assert(!denials_match(a, &f));

	denials_summary_add(s, a);
	denials_summary_add(s, b);
	denials_summary_add(s, c);
	/* a link-local denial: counted, never suggested (no edge helps) */
	{
		json_t *ll = flow("2026-11-22T16:06:30Z", "redis", "world", 0,
				  "link-local");

		denials_summary_add(s, ll);
		json_decref(ll);
	}
	denials_summary_print(s, false, &out);
	ck_assert_ptr_nonnull(strstr(out.s, "       2  nginx"));
	ck_assert_ptr_nonnull(strstr(out.s, "2026-11-22T16:00:00Z "));
	ck_assert_ptr_nonnull(strstr(out.s, " 2026-11-22T16:05:00.5Z\n"));
	out.len = 0;
	denials_suggest(s, NULL, &out);
	ck_assert_ptr_nonnull(strstr(out.s, "  nginx:\n    egress:\n      - "
					    "to: db\n        ports: "
					    "[5432/tcp]\n"));
	ck_assert_ptr_nonnull(
	    strstr(out.s, "- to: { cidr: [\"203.0.113.9/32\"] }\n        "
			  "ports: [443/tcp]"));
	ck_assert_ptr_null(strstr(out.s, "redis"));
	/* with the policy: it parses, and has exactly the two new edges */
	out.len = 0;
	denials_suggest(s, p, &out);
	q = policy_parse("suggested.yaml", out.s, out.len, &dg);
	diags_print(&dg, stderr);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(q->nedges, before + 2);
	policy_free(q);
	diags_free(&dg);
	sb_free(&out);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	denials_summary_free(s);
	policy_free(p);
}
END_TEST

/* An allowed connection's two records, as the daemon writes them. */
static json_t *allowed_rec(const char *ts, const char *event, long long sent,
			   long long received)
{
	json_t *r = flow(ts, "backend", "db", 5432, "");

	json_object_del(r, "reason");
	json_object_set_new(r, "verdict", json_string("allowed"));
	json_object_set_new(r, "event", json_string(event));
	json_object_set_new(r, "edge", json_string("shop.yaml:26:9"));
	if (!strcmp(event, "close")) {
		json_object_set_new(r, "duration_ms", json_integer(2500));
		json_object_set_new(r, "bytes",
				    json_pack("{s:I, s:I}", "sent", sent,
					      "received", received));
		json_object_set_new(r, "end", json_string("closed"));
	}
	return r;
}

/* `flows`: verdicts filtered, allowed records shown with their edge or
 * counts, the summary counting connections and bytes beside denials. */
START_TEST(test_flows)
{
	struct denials_filter f = {0};
	struct denials_summary *s = denials_summary_new();
	struct strbuf out = {0};
	json_t *o1 = allowed_rec("2026-12-02T05:00:00Z", "open", 0, 0);
	json_t *c1 = allowed_rec("2026-12-02T05:00:02Z", "close", 1500, 900);
	json_t *o2 = allowed_rec("2026-12-02T05:01:00Z", "open", 0, 0);
	json_t *c2 = allowed_rec("2026-12-02T05:01:01Z", "close", 100, 50);
	json_t *d =
	    flow("2026-12-02T05:02:00Z", "nginx", "db", 5432, "no-edge");

	ck_assert_uint_eq(denials_verdicts("allowed"), FLOWS_ALLOWED);
	ck_assert_uint_eq(denials_verdicts("denied,would-deny"),
			  FLOWS_DENIED | FLOWS_WOULD_DENY);
	ck_assert_uint_eq(denials_verdicts("allowed,maybe"), 0);
	ck_assert_uint_eq(denials_verdicts(""), 0);
	f.verdicts = FLOWS_ALLOWED;
	ck_assert(denials_match(o1, &f) && denials_match(c1, &f));
	ck_assert(!denials_match(d, &f));
	f.verdicts = FLOWS_DENIED | FLOWS_WOULD_DENY;
	ck_assert(!denials_match(o1, &f) && denials_match(d, &f));

	denials_format(o1, &out);
	ck_assert_ptr_nonnull(strstr(out.s, " allowed "));
	ck_assert_ptr_nonnull(strstr(out.s, "open by shop.yaml:26:9"));
	out.len = 0;
	denials_format(c1, &out);
	ck_assert_ptr_nonnull(
	    strstr(out.s, "closed after 2.5 s: 1500 B sent, 900 B received"));

	denials_summary_add(s, o1);
	denials_summary_add(s, c1);
	denials_summary_add(s, o2);
	denials_summary_add(s, c2);
	denials_summary_add(s, d);
	out.len = 0;
	denials_summary_print(s, true, &out);
	ck_assert_msg(strstr(out.s, "       2  backend") &&
			  strstr(out.s, " allowed ") &&
			  strstr(out.s, " 1600 ") && strstr(out.s, " 950 "),
		      "%s", out.s);
	ck_assert_ptr_nonnull(strstr(out.s, "denied: no-edge"));
	ck_assert_ptr_nonnull(strstr(out.s, "2026-12-02T05:00:00Z "));
	json_decref(o1);
	json_decref(c1);
	json_decref(o2);
	json_decref(c2);
	json_decref(d);
	sb_free(&out);
	denials_summary_free(s);
}
END_TEST

/* A scope's owners: records with an end in their scope, the other end
 * cut to its service and port. */
START_TEST(test_scope_cut)
{
	char *scopes[] = {"shop"};
	json_t *r = json_loads(
	    "{\"verdict\":\"allowed\",\"src\":{\"ip\":\"172.30.0.2\","
	    "\"port\":40000,\"container\":\"shop-backend-1\",\"service\":"
	    "\"shop/backend\",\"network\":\"n\"},\"dst\":{\"ip\":\"172.30."
	    "0.4\",\"port\":443,\"container\":\"billing-api-1\",\"service\":"
	    "\"billing/api\",\"network\":\"n\"}}",
	    0, NULL);
	json_t *o = json_loads(
	    "{\"verdict\":\"denied\",\"src\":{\"ip\":\"172.30.0.4\","
	    "\"container\":\"billing-api-1\",\"service\":\"billing/api\"},"
	    "\"dst\":{\"ip\":\"172.30.0.9\",\"port\":1,\"container\":"
	    "\"x\"}}",
	    0, NULL);
	json_t *w = json_loads("{\"verdict\":\"denied\",\"src\":{\"ip\":"
			       "\"172.30.0.2\",\"container\":\"c\",\"service\""
			       ":\"shop/web\"},\"dst\":{\"ip\":\"203.0.113.5\","
			       "\"port\":443,\"peer\":\"world\"}}",
			       0, NULL);
	char *s;

	ck_assert(denials_scope(r, scopes, 1));
	s = json_dumps(json_object_get(r, "dst"),
		       JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_str_eq(s, "{\"port\":443,\"service\":\"billing/api\"}");
	free(s);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(r, "src"), "container")),
			 "shop-backend-1");
	/* neither end in shop (a name like shopping/ is not shop/) */
	ck_assert(!denials_scope(o, scopes, 1));
	/* world is nobody's: shown as it is */
	ck_assert(denials_scope(w, scopes, 1));
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(w, "dst"), "ip")),
	    "203.0.113.5");
	json_decref(r);
	json_decref(o);
	json_decref(w);
}
END_TEST

Suite *denials_suite(void)
{
	Suite *s = suite_create("denials");
	TCase *tc = tcase_create("denials");

	tcase_add_test(tc, test_query);
	tcase_add_test(tc, test_flows);
	tcase_add_test(tc, test_scope_cut);
	suite_add_tcase(s, tc);
	return s;
}
