/* Unit tests for src/metrics.c (the series and the text format) and for
 * the addresses --metrics takes (src/scrape.c). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/metrics.h"
#include "bulkhead/scrape.h"
#include "unit.h"

static bool has(const struct strbuf *b, const char *line)
{
	return strstr(b->s, line) != NULL;
}

/* One series per label set, counted; values escaped; series in the
 * order of their labels whatever the order they came in. */
START_TEST(test_series)
{
	struct metrics *m = metrics_new();
	struct metrics_state st = {.denied_packets = -1};
	struct strbuf b = {0};
	uint32_t a, c;
	size_t i;

	for (i = 0; i < 1000; i++)
		metrics_flow(m, "denied", i % 2 ? "web" : "api", "db",
			     "no-edge");
	metrics_flow(m, "allowed", "we\"ird\\na\nme", "world", "edge");
	a = metrics_pair(m, "web", "db");
	c = metrics_pair(m, "web", "db");
	ck_assert_uint_eq(a, c);
	ck_assert_uint_ne(a, metrics_pair(m, "db", "web"));
	metrics_bytes(m, a, 10, 20);
	metrics_bytes(m, c, 1, 2);
	metrics_bytes(m, 0, 5, 5);    /* no pair: nothing */
	metrics_bytes(m, 9999, 5, 5); /* nor a pair unheard of */
	metrics_render(m, &st, &b);
	ck_assert(has(&b, "bulkhead_flows_total{verdict=\"denied\",src_service="
			  "\"api\",dst_service=\"db\",reason=\"no-edge\"} "
			  "500\n"));
	ck_assert(has(&b, "bulkhead_flows_total{verdict=\"denied\",src_service="
			  "\"web\",dst_service=\"db\",reason=\"no-edge\"} "
			  "500\n"));
	ck_assert(has(&b, "src_service=\"we\\\"ird\\\\na\\nme\""));
	ck_assert(strstr(b.s, "verdict=\"allowed\"") <
		  strstr(b.s, "verdict=\"denied\""));
	ck_assert(has(&b, "bulkhead_flow_bytes_total{src_service=\"web\","
			  "dst_service=\"db\",direction=\"sent\"} 11\n"));
	ck_assert(has(&b, "bulkhead_flow_bytes_total{src_service=\"web\","
			  "dst_service=\"db\",direction=\"received\"} 22\n"));
	ck_assert(has(&b, "bulkhead_flow_bytes_total{src_service=\"db\","
			  "dst_service=\"web\",direction=\"sent\"} 0\n"));
	/* the deny counter unread: left out, not 0 */
	ck_assert(!has(&b, "bulkhead_denied_packets_total"));
	sb_free(&b);
	metrics_free(m);
}
END_TEST

/* Every family has its HELP and TYPE; gauges and the histogram as
 * given: buckets cumulative, then +Inf, sum and count. */
START_TEST(test_render)
{
	static const double le[] = {0.001, 0.01, 0.1};
	static const unsigned long buckets[] = {2, 5, 6};
	struct metrics_count svc[] = {{"web", 3}, {METRICS_UNMATCHED, 1}};
	struct metrics_count fq[] = {{"api.example.com", 1}};
	struct metrics_state st = {.version = "0.5.0+abc",
				   .docker_connected = true,
				   .containers = svc,
				   .ncontainers = 2,
				   .elements = 42,
				   .commits_delta = 7,
				   .commits_full = 1,
				   .denied_packets = 12,
				   .suppressed_denied = 4,
				   .le = le,
				   .buckets = buckets,
				   .nbuckets = 3,
				   .placements = 7,
				   .placement_sum_s = 0.25,
				   .fqdn = fq,
				   .nfqdn = 1};
	struct metrics *m = metrics_new();
	struct strbuf b = {0};
	const char *name[] = {"bulkhead_flows_total",
			      "bulkhead_flow_bytes_total",
			      "bulkhead_denied_packets_total",
			      "bulkhead_log_suppressed_total",
			      "bulkhead_containers",
			      "bulkhead_elements",
			      "bulkhead_kernel_commits_total",
			      "bulkhead_restores_total",
			      "bulkhead_docker_connected",
			      "bulkhead_placement_seconds",
			      "bulkhead_fqdn_up",
			      "bulkhead_build_info"};
	char want[128];
	size_t i;

	metrics_render(m, &st, &b);
	for (i = 0; i < sizeof(name) / sizeof(name[0]); i++) {
		snprintf(want, sizeof(want), "# HELP %s ", name[i]);
		ck_assert_msg(has(&b, want), "no HELP for %s", name[i]);
		snprintf(want, sizeof(want), "# TYPE %s ", name[i]);
		ck_assert_msg(has(&b, want), "no TYPE for %s", name[i]);
	}
	ck_assert(has(&b, "bulkhead_containers{service=\"web\"} 3\n"));
	ck_assert(has(&b, "bulkhead_containers{service=\"unmatched\"} 1\n"));
	ck_assert(has(&b, "\nbulkhead_elements 42\n"));
	ck_assert(has(&b, "bulkhead_kernel_commits_total{kind=\"delta\"} 7\n"));
	ck_assert(has(&b, "\nbulkhead_denied_packets_total 12\n"));
	ck_assert(has(&b, "bulkhead_log_suppressed_total{verdict=\"denied\"} "
			  "4\n"));
	ck_assert(has(&b, "\nbulkhead_docker_connected 1\n"));
	ck_assert(has(&b, "# TYPE bulkhead_placement_seconds histogram\n"
			  "bulkhead_placement_seconds_bucket{le=\"0.001\"} 2\n"
			  "bulkhead_placement_seconds_bucket{le=\"0.01\"} 5\n"
			  "bulkhead_placement_seconds_bucket{le=\"0.1\"} 6\n"
			  "bulkhead_placement_seconds_bucket{le=\"+Inf\"} 7\n"
			  "bulkhead_placement_seconds_sum 0.25\n"
			  "bulkhead_placement_seconds_count 7\n"));
	ck_assert(has(&b, "bulkhead_fqdn_up{name=\"api.example.com\"} 1\n"));
	ck_assert(has(&b, "bulkhead_build_info{version=\"0.5.0+abc\"} 1\n"));
	ck_assert_uint_eq(b.s[b.len - 1], '\n');
	sb_free(&b);
	metrics_free(m);
}
END_TEST

START_TEST(test_addr)
{
	const char *good[] = {"127.0.0.1:9464", "[::1]:9464", "0.0.0.0:1",
			      "[2001:db8::1]:65535", "unix:/run/bh.sock"};
	const char *bad[] = {
	    "localhost:9464",  "127.0.0.1", ":9464",	"127.0.0.1:0",
	    "127.0.0.1:65536", "[::1:9464", "::1:9464", "127.0.0.1:9x",
	    "unix:rel",	       "[]:80",	    ""};
	char err[200];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(!scrape_addr_check(good[i], err, sizeof(err)),
			      "%s: %s", good[i], err);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		ck_assert_msg(scrape_addr_check(bad[i], err, sizeof(err)) ==
				  -EINVAL,
			      "%s taken", bad[i]);
		ck_assert_msg(strstr(err, "--metrics") != NULL, "%s: %s",
			      bad[i], err);
	}
}
END_TEST

Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, test_series);
	tcase_add_test(tc, test_render);
	tcase_add_test(tc, test_addr);
	suite_add_tcase(s, tc);
	return s;
}
