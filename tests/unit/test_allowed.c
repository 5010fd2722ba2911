/* Unit tests for src/allowed.c: which openings get records, what the
 * open and close records say, the rate limit and the reuse of tags. */
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bulkhead/allowed.h"
#include "bulkhead/inventory.h"
#include "bulkhead/metrics.h"
#include "bulkhead/policy.h"
#include "unit.h"

#define NGINX 0xac1c0502u   /* 172.28.5.2 */
#define BACKEND 0xac1c0503u /* 172.28.5.3 */
#define DB 0xac1c0504u	    /* 172.28.5.4 */

struct fx {
	struct policy *p;
	struct inventory *inv;
	struct compiler *cc;
	struct trace_index *ix;
	struct allowed_judge j;
	struct allowed *a;
	struct strbuf out;
};

static void fx_init(struct fx *f, bool log_allowed)
{
	f->p = load_policy_fixture("policies/three-tier.yaml");
	f->p->log_allowed = log_allowed;
	f->inv = load_inventory_fixture(FIXTURES "/three-tier.json");
	f->cc = compile_new(f->p, NULL);
	f->ix = trace_index_new(f->cc, f->p, f->inv);
	f->j = (struct allowed_judge){f->cc, f->p, f->ix, NULL, NULL, 0, NULL};
	f->a = allowed_new();
	memset(&f->out, 0, sizeof(f->out));
}

static void fx_free(struct fx *f)
{
	allowed_free(f->a);
	trace_index_free(f->ix);
	compile_free(f->cc);
	inventory_free(f->inv);
	policy_free(f->p);
	sb_free(&f->out);
}

static struct revoke_flow tcp(u128 s, u128 d, uint16_t port)
{
	return (struct revoke_flow){AF_INET, s, d, IPPROTO_TCP, 40000, port};
}

/* The record f->out holds, parsed (and f->out emptied). */
static json_t *record(struct fx *f)
{
	json_t *r = json_loadb(f->out.s, f->out.len, 0, NULL);

	ck_assert_msg(r != NULL, "not JSON: %s", f->out.s ? f->out.s : "");
	f->out.len = 0;
	return r;
}

static const char *str(json_t *o, const char *path1, const char *path2)
{
	json_t *v = json_object_get(o, path1);

	if (path2)
		v = json_object_get(v, path2);
	return json_string_value(v);
}

/* An allowed connection gets an open record naming both ends and the
 * edge, and a close record repeating them with its counts. */
START_TEST(test_open_close)
{
	struct revoke_flow fl = tcp(BACKEND, DB, 5432);
	struct revoke_event ev = {.f = &fl};
	struct fx f;
	uint32_t tag;
	json_t *r;

	fx_init(&f, true);
	tag = allowed_open(f.a, &f.j, &fl, "2026-12-02T05:00:00.000000Z", 1000,
			   &f.out);
	ck_assert_uint_gt(tag, 0);
	r = record(&f);
	ck_assert_str_eq(str(r, "verdict", NULL), "allowed");
	ck_assert_str_eq(str(r, "event", NULL), "open");
	ck_assert_str_eq(str(r, "proto", NULL), "tcp");
	ck_assert_str_eq(str(r, "src", "container"), "backend");
	ck_assert_str_eq(str(r, "src", "service"), "backend");
	ck_assert_str_eq(str(r, "dst", "container"), "db");
	ck_assert_str_eq(str(r, "dst", "service"), "db");
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(r, "dst"), "port")),
			 5432);
	/* backend's first egress edge, to db */
	ck_assert_str_eq(str(r, "edge", NULL), "policies/three-tier.yaml:26:9");
	json_decref(r);
	ck_assert_uint_eq(allowed_stats(f.a)->open, 1);

	ev.tag = tag;
	ev.counted = true;
	ev.packets[0] = 10;
	ev.packets[1] = 8;
	ev.bytes[0] = 1500;
	ev.bytes[1] = 900;
	ev.end = REVOKE_END_CLOSED;
	allowed_close(f.a, NULL, &ev, "2026-12-02T05:00:02.500000Z", 3500,
		      &f.out);
	r = record(&f);
	ck_assert_str_eq(str(r, "event", NULL), "close");
	ck_assert_str_eq(str(r, "src", "container"), "backend");
	ck_assert_str_eq(str(r, "edge", NULL), "policies/three-tier.yaml:26:9");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "duration_ms")),
			 2500);
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(r, "bytes"), "sent")),
			 1500);
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(r, "packets"), "received")),
			 8);
	ck_assert_str_eq(str(r, "end", NULL), "closed");
	json_decref(r);
	ck_assert_uint_eq(allowed_stats(f.a)->open, 0);
	ck_assert_uint_eq(allowed_stats(f.a)->closed, 1);
	/* told twice: nothing the second time */
	allowed_close(f.a, NULL, &ev, "x", 4000, &f.out);
	ck_assert_uint_eq(f.out.len, 0);

	/* no counts (accounting off), and revoked: said so */
	tag = allowed_open(f.a, &f.j, &fl, "t", 5000, &f.out);
	ck_assert_uint_eq(tag, ev.tag); /* the tag is reused */
	f.out.len = 0;
	ev = (struct revoke_event){
	    .f = &fl, .tag = tag, .end = REVOKE_END_REVOKED};
	allowed_close(f.a, NULL, &ev, "t", 5001, &f.out);
	r = record(&f);
	ck_assert(json_is_null(json_object_get(r, "bytes")));
	ck_assert_str_eq(str(r, "end", NULL), "revoked");
	json_decref(r);
	fx_free(&f);
}
END_TEST

/* What is not an edge's (denied, unmanaged, off) gets nothing. */
START_TEST(test_not_logged)
{
	struct revoke_flow denied = tcp(NGINX, DB, 5432);
	struct revoke_flow world = tcp(0xc6336401u, 0xcb007109u, 443);
	struct revoke_flow allowed = tcp(BACKEND, DB, 5432);
	struct fx f;
	size_t i;

	fx_init(&f, true);
	ck_assert_uint_eq(allowed_open(f.a, &f.j, &denied, "t", 1, &f.out), 0);
	ck_assert_uint_eq(allowed_open(f.a, &f.j, &world, "t", 1, &f.out), 0);
	ck_assert_uint_eq(f.out.len, 0);
	/* settings off, and the edge says nothing: nothing */
	f.p->log_allowed = false;
	ck_assert_uint_eq(allowed_open(f.a, &f.j, &allowed, "t", 1, &f.out), 0);
	/* the edge on by itself: nginx -> backend */
	for (i = 0; i < f.p->nedges; i++)
		if (f.p->edges[i].src.kind == PEER_SERVICE &&
		    f.p->edges[i].dst.kind == PEER_SERVICE &&
		    f.p->edges[i].src.service == 0)
			f.p->edges[i].log = 1;
	allowed = tcp(BACKEND, DB, 5432);
	ck_assert_uint_eq(allowed_open(f.a, &f.j, &allowed, "t", 1, &f.out), 0);
	allowed = tcp(NGINX, BACKEND, 8080);
	ck_assert_uint_gt(allowed_open(f.a, &f.j, &allowed, "t", 1, &f.out), 0);
	ck_assert_uint_gt(f.out.len, 0);
	fx_free(&f);
}
END_TEST

/* Over settings.log_rate the openings are counted, not written; the
 * rate comes back with time. */
START_TEST(test_rate)
{
	struct revoke_flow fl = tcp(BACKEND, DB, 5432);
	struct fx f;
	size_t i, written = 0;

	fx_init(&f, true);
	ck_assert_uint_eq(f.p->log_rate, 20); /* a second */
	for (i = 0; i < 50; i++) {
		written += allowed_open(f.a, &f.j, &fl, "t", 1000, &f.out) > 0;
		f.out.len = 0;
	}
	ck_assert_uint_eq(written, 20);
	ck_assert_uint_eq(allowed_stats(f.a)->suppressed, 30);
	/* half a second later: ten more */
	for (i = 0; i < 50; i++) {
		written += allowed_open(f.a, &f.j, &fl, "t", 1500, &f.out) > 0;
		f.out.len = 0;
	}
	ck_assert_uint_eq(written, 30);
	fx_free(&f);
}
END_TEST

/* With metrics, every flow an edge allows is counted and tagged, logged
 * or not (the rate limit keeps records out, not counts), its bytes at
 * its end; what no edge allows is not counted here (denials are the
 * deny path's). */
START_TEST(test_metrics)
{
	struct revoke_flow fl = tcp(BACKEND, DB, 5432);
	struct revoke_flow denied = tcp(NGINX, DB, 5432);
	struct revoke_flow api = tcp(BACKEND, 0xcb007109u, 443);
	struct revoke_event ev = {.f = &fl, .counted = true};
	struct strbuf txt = {0};
	struct metrics_state st = {0};
	struct fx f;
	uint32_t tag, tags[30];
	size_t i;

	fx_init(&f, false);
	f.j.m = metrics_new();
	tag = allowed_open(f.a, &f.j, &fl, "t", 1000, &f.out);
	ck_assert_uint_gt(tag, 0);
	ck_assert_uint_eq(f.out.len, 0); /* counted, not logged */
	ck_assert_uint_eq(allowed_open(f.a, &f.j, &denied, "t", 1000, &f.out),
			  0);
	ck_assert_uint_gt(allowed_open(f.a, &f.j, &api, "t", 1000, &f.out), 0);
	ev.tag = tag;
	ev.bytes[0] = 1500;
	ev.bytes[1] = 900;
	allowed_close(f.a, f.j.m, &ev, "t", 2000, &f.out);
	ck_assert_uint_eq(f.out.len, 0);
	allowed_close(f.a, f.j.m, &ev, "t", 2000, &f.out); /* once only */
	/* logged, over the rate: 20 records of 30, 30 counted */
	f.p->log_allowed = true;
	for (i = 0; i < 30; i++) {
		tags[i] = allowed_open(f.a, &f.j, &fl, "t", 5000, &f.out);
		ck_assert_uint_gt(tags[i], 0);
	}
	ck_assert_uint_eq(allowed_stats(f.a)->opened, 20);
	ck_assert_uint_eq(allowed_stats(f.a)->suppressed, 10);
	for (i = 0; i < 30; i++) {
		ev.tag = tags[i];
		f.out.len = 0;
		allowed_close(f.a, f.j.m, &ev, "t", 6000, &f.out);
		ck_assert_uint_eq(f.out.len > 0, i < 20);
	}
	metrics_render(f.j.m, &st, &txt);
	ck_assert_ptr_nonnull(strstr(
	    txt.s, "bulkhead_flows_total{verdict=\"allowed\",src_service="
		   "\"backend\",dst_service=\"db\",reason=\"edge\"} 31\n"));
	ck_assert_ptr_nonnull(strstr(
	    txt.s, "bulkhead_flows_total{verdict=\"allowed\",src_service="
		   "\"backend\",dst_service=\"cidr\",reason=\"edge\"} 1\n"));
	ck_assert_ptr_null(strstr(txt.s, "src_service=\"nginx\""));
	ck_assert_ptr_nonnull(
	    strstr(txt.s, "bulkhead_flow_bytes_total{src_service=\"backend\","
			  "dst_service=\"db\",direction=\"sent\"} 46500\n"));
	ck_assert_ptr_nonnull(strstr(
	    txt.s, "bulkhead_flow_bytes_total{src_service=\"backend\","
		   "dst_service=\"db\",direction=\"received\"} 27900\n"));
	ck_assert_uint_eq(allowed_stats(f.a)->open, 1); /* the api flow */
	sb_free(&txt);
	metrics_free(f.j.m);
	fx_free(&f);
}
END_TEST

Suite *allowed_suite(void)
{
	Suite *s = suite_create("allowed");
	TCase *tc = tcase_create("allowed");

	tcase_add_test(tc, test_open_close);
	tcase_add_test(tc, test_not_logged);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_metrics);
	suite_add_tcase(s, tc);
	return s;
}
