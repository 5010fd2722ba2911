/* control.c without a daemon: the status schema both ways and its text,
 * and one request over a real socket in a temporary directory. */
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bulkhead/control.h"
#include "unit.h"

static void fill(struct control_status *st)
{
	static const double v[] = {100, 300, 200}, own[] = {10, 30, 20};

	memset(st, 0, sizeof(*st));
	st->policy = xstrdup("policies/three-tier.yaml");
	st->docker_up = true;
	st->api = xstrdup("1.41");
	st->last_sync = xstrdup("2026-12-01T10:00:00Z");
	st->last_sync_age_s = 7;
	st->events = 12, st->deltas = 9, st->resyncs = 1, st->errors = 0;
	st->revoked_flows = 2, st->revocation_sweeps = 3,
	st->flows_tracked = 40;
	st->last_sweep_ms = 1.5;
	st->warnings = xcalloc(2, sizeof(char *));
	st->warnings[st->nwarnings++] = xstrdup("warning: stray matches no "
						"service");
	st->fqdn_refills = -1;
	st->restores = 0;
	st->rss_kb = 4000;
	st->services = xcalloc(3, sizeof(char *));
	st->services[st->nservices++] = xstrdup("nginx");
	st->services[st->nservices++] = xstrdup("db");
	st->containers = xcalloc(3, sizeof(*st->containers));
	st->containers[0] = (struct control_container){
	    .name = xstrdup("bh-nginx"),
	    .id = xstrdup("0ba474001792"),
	    .service = xstrdup("nginx"),
	    .addrs = xcalloc(1, sizeof(struct control_addr)),
	    .naddrs = 1};
	st->containers[0].addrs[0].network = xstrdup("appnet");
	st->containers[0].addrs[0].ipv4 = xstrdup("172.28.5.2");
	st->containers[1] = (struct control_container){
	    .name = xstrdup("stray"),
	    .id = xstrdup("60bf64a34561"),
	    .why = xstrdup("matches no service"),
	    .addrs = xcalloc(1, sizeof(struct control_addr))};
	st->ncontainers = 2;
	st->kernel_sets = 30, st->kernel_elements = 57;
	st->sets = xcalloc(1, sizeof(*st->sets));
	st->sets[st->nsets++] = (struct control_set){xstrdup("self4"), 6};
	control_lat_fill(&st->start, v, own, 3);
	st->placed_before_start = 0;
	control_lat_fill(&st->connect, v, own, 0);
	control_lat_fill(&st->bound, v, own, 0);
	st->has_log = true;
	st->log = xstrdup("/var/log/bulkhead/denied.jsonl");
	st->records = 5, st->suppressed = 1;
}

static char *text_of(const struct control_status *st)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	control_status_print(st, f);
	fclose(f);
	return buf;
}

START_TEST(test_status_round_trip)
{
	struct control_status st, back;
	json_t *j;
	char *a, *b;

	fill(&st);
	ck_assert_double_eq(st.start.median_us, 200);
	ck_assert_double_eq(st.start.own_p99_us, 30);
	j = control_status_json(&st);
	/* the keys the scripts and tests read */
	ck_assert_str_eq(json_string_value(json_object_get(j, "mode")),
			 "enforce");
	ck_assert_str_eq(
	    json_string_value(json_object_get(
		json_array_get(
		    json_object_get(json_object_get(j, "services"), "nginx"),
		    0),
		"name")),
	    "bh-nginx");
	ck_assert_int_eq(json_array_size(json_object_get(
			     json_object_get(j, "services"), "db")),
			 0);
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(j, "elements"), "self4")),
			 6);
	ck_assert_ptr_null(json_object_get(j, "fqdn"));
	ck_assert_ptr_null(json_object_get(j, "last_restore"));
	ck_assert_int_eq(control_status_parse(j, &back), 0);
	a = text_of(&st);
	b = text_of(&back);
	ck_assert_str_eq(a, b);
	ck_assert_ptr_nonnull(strstr(
	    a, "container start to committed: median 200 us, p99 300 us"));
	ck_assert_ptr_nonnull(strstr(a, "  nginx: 1 container\n    bh-nginx"));
	ck_assert_ptr_nonnull(strstr(a, "  db: 0 containers\n"));
	ck_assert_ptr_nonnull(strstr(a, "unplaced (denied unless"));
	ck_assert_ptr_null(strstr(a, "network connect to committed"));
	free(a);
	free(b);
	json_decref(j);
	control_status_free(&back);
	j = json_object(); /* not a status answer */
	ck_assert_int_eq(control_status_parse(j, &back), -1);
	json_decref(j);
	control_status_free(&back);
	control_status_free(&st);
}
END_TEST

/* Every start placed at its connect: a median of 0 us measures nothing
 * and says so. */
START_TEST(test_status_nothing_measured)
{
	static const double zero[] = {0, 0};
	struct control_status st;
	char *t;

	fill(&st);
	control_lat_fill(&st.start, zero, zero, 2);
	st.placed_before_start = 2;
	t = text_of(&st);
	ck_assert_ptr_nonnull(
	    strstr(t, "container start to committed: nothing measured (all 2 "
		      "placed at their network connect"));
	ck_assert_ptr_null(strstr(t, "median 0 us"));
	free(t);
	control_status_free(&st);
}
END_TEST

static json_t *echo(void *ctx, const struct control_peer *peer, json_t *req)
{
	ck_assert(peer->full); /* our own user */
	(*(int *)ctx)++;
	return json_pack("{s:b, s:O}", "ok", 1, "cmd",
			 json_object_get(req, "cmd"));
}

START_TEST(test_control_socket)
{
	char dir[] = "/tmp/bh-control-XXXXXX", path[64], err[256], *reply;
	struct control_client *c;
	int lfd, status, answered = 0;
	pid_t pid;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ctl", dir);
	lfd = control_listen(path, NULL, err, sizeof(err));
	ck_assert_int_ge(lfd, 0);
	/* a second daemon does not take a live one's socket */
	ck_assert_int_eq(control_listen(path, NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "another bulkhead daemon"));
	pid = fork();
	if (!pid) {
		int r = control_request(path, "{\"cmd\":\"status\"}", &reply,
					err, sizeof(err));

		_exit(r || !strstr(reply, "\"cmd\":\"status\"") ? 1 : 0);
	}
	/* the second listen's probe comes first: closed unanswered */
	while (!answered) {
		struct pollfd p = {lfd, POLLIN, 0};

		ck_assert_int_eq(poll(&p, 1, 5000), 1);
		c = control_accept(lfd, NULL, NULL, 0, err, sizeof(err));
		ck_assert_ptr_nonnull(c);
		while (!control_client_read(c, echo, &answered)) {
			struct pollfd q = {control_client_fd(c), POLLIN, 0};

			ck_assert_int_eq(poll(&q, 1, 5000), 1);
		}
		control_client_free(c);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(answered, 1);
	close(lfd);
	/* nobody there: the client says so */
	ck_assert_int_lt(control_request(path, "{}", &reply, err, sizeof(err)),
			 0);
	ck_assert_ptr_nonnull(strstr(err, "cannot reach the daemon"));
	unlink(path);
	rmdir(dir);
}
END_TEST

/* What a scope's owners see: their services and containers, nothing
 * that names another team's. */
START_TEST(test_status_limit)
{
	struct control_status st = {0};
	char *scopes[] = {"shop"};
	const char *svcs[] = {"shop/backend", "billing/api", "shopping/x",
			      "monitor"};
	size_t i;

	st.policy = xstrdup("policy.d");
	st.services = xcalloc(4, sizeof(char *));
	for (i = 0; i < 4; i++)
		st.services[st.nservices++] = xstrdup(svcs[i]);
	st.containers = xcalloc(3, sizeof(*st.containers));
	st.containers[0].name = xstrdup("shop-backend-1");
	st.containers[0].service = xstrdup("shop/backend");
	st.containers[1].name = xstrdup("billing-api-1");
	st.containers[1].service = xstrdup("billing/api");
	st.containers[2].name = xstrdup("stray");
	st.containers[2].why = xstrdup("matches no service");
	st.ncontainers = 3;
	st.warnings = xcalloc(1, sizeof(char *));
	st.warnings[st.nwarnings++] = xstrdup("billing-api-1 publishes 443");
	st.sets = xcalloc(1, sizeof(*st.sets));
	st.sets[0].name = xstrdup("billing/api_peer4");
	st.nsets = 1;
	st.last_error = xstrdup("billing-api-1: gone");
	control_status_limit(&st, scopes, 1);
	ck_assert_uint_eq(st.nservices, 1);
	ck_assert_str_eq(st.services[0], "shop/backend");
	ck_assert_uint_eq(st.ncontainers, 1);
	ck_assert_str_eq(st.containers[0].name, "shop-backend-1");
	ck_assert_uint_eq(st.nwarnings + st.nsets, 0);
	ck_assert_ptr_null(st.last_error);
	ck_assert_str_eq(st.view, "scope shop");
	control_status_free(&st);
}
END_TEST

Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_status_round_trip);
	tcase_add_test(tc, test_status_nothing_measured);
	tcase_add_test(tc, test_control_socket);
	tcase_add_test(tc, test_status_limit);
	suite_add_tcase(s, tc);
	return s;
}
