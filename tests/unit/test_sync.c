/* sync.c without root or Docker: Docker's events and answers fed in as
 * recorded (inspect objects of the three-tier fixture), commits caught
 * by a recorder that can refuse. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "bulkhead/sync.h"
#include "unit.h"

struct rec {
	int applies, converges;
	size_t adds, dels; /* of the last delta */
	bool refuse;
	struct strbuf log;
	unsigned bind_ms;
};

static int r_apply(void *ctx, const struct ir_ruleset *rs,
		   const struct ir_delta *delta, char *err, size_t errlen)
{
	struct rec *r = ctx;
	size_t i;

	(void)rs;
	if (r->refuse) {
		snprintf(err, errlen,
			 "the kernel refused adding set x: "
			 "File exists");
		return -EEXIST;
	}
	r->applies++;
	r->adds = r->dels = 0;
	for (i = 0; i < delta->n; i++) {
		r->adds += delta->v[i].add;
		r->dels += !delta->v[i].add;
	}
	return 0;
}

static int r_converge(void *ctx, const struct ir_ruleset *rs,
		      struct kernel_sync *res, char *err, size_t errlen)
{
	struct rec *r = ctx;

	if (r->refuse) {
		snprintf(err, errlen, "refused");
		return -EEXIST;
	}
	r->converges++;
	res->replaced = true;
	res->nadd = ir_element_count(rs);
	res->ndel = 0;
	return 0;
}

static int r_refill(void *ctx, const struct ir_ruleset *rs, const size_t *sets,
		    size_t nsets, const struct ir_delta *adds, char *err,
		    size_t errlen)
{
	(void)ctx, (void)rs, (void)sets, (void)nsets, (void)adds, (void)err,
	    (void)errlen;
	return 0;
}

static void r_say(void *ctx, const char *line)
{
	struct rec *r = ctx;

	sb_printf(&r->log, "%s\n", line);
}

static void r_fail(void *ctx, const char *msg)
{
	struct rec *r = ctx;

	sb_printf(&r->log, "error: %s\n", msg);
}

static void r_bind_in(void *ctx, unsigned ms)
{
	((struct rec *)ctx)->bind_ms = ms;
}

struct fx {
	struct rec r;
	struct docker *dk;
	struct sync *s;
	json_t *inspect; /* the fixture's inspect objects */
};

static void fx_init(struct fx *f)
{
	struct compile_opts co = {.conflicts_deny = true};
	struct sync_ops ops = {.apply = r_apply,
			       .converge = r_converge,
			       .refill = r_refill,
			       .say = r_say,
			       .fail = r_fail,
			       .bind_in = r_bind_in};
	char err[256];

	memset(f, 0, sizeof(*f));
	ops.ctx = &f->r;
	f->dk = docker_new("/nonexistent", err, sizeof(err));
	ck_assert_ptr_nonnull(f->dk);
	f->inspect = json_load_file(FIXTURES "/three-tier.json", 0, NULL);
	ck_assert_ptr_nonnull(f->inspect);
	f->s = sync_new(load_policy_fixture("policies/three-tier.yaml"), &co,
			NULL, f->dk, &ops);
	/* the first converge: nothing runs yet */
	{
		struct kernel_sync res;

		ck_assert_int_eq(sync_converge(f->s, inventory_new(), &res), 0);
	}
	ck_assert_int_eq(f->r.converges, 1);
	f->r.log.len = 0;
}

static void fx_free(struct fx *f)
{
	sync_free(f->s);
	docker_free(f->dk);
	json_decref(f->inspect);
	sb_free(&f->r.log);
}

/* The fixture's inspect object of container i, its id in *id. */
static char *inspect_of(struct fx *f, size_t i, const char **id)
{
	json_t *c = json_array_get(f->inspect, i);

	*id = json_string_value(json_object_get(c, "Id"));
	return json_dumps(c, JSON_COMPACT);
}

static void event(struct fx *f, const char *action, const char *id)
{
	char *line = xasprintf("{\"Type\":\"container\",\"Action\":\"%s\","
			       "\"id\":\"%s\",\"Actor\":{\"ID\":\"%s\","
			       "\"Attributes\":{}}}",
			       action, id, id);

	ck_assert_int_eq(sync_event(f->s, line, strlen(line)), 0);
	free(line);
}

/* Docker says container i started: its event, and inspect's answer. */
static void start(struct fx *f, size_t i, const char *body)
{
	const char *id, *path;
	char *own = inspect_of(f, i, &id), *want;

	event(f, "start", id);
	path = sync_next(f->s);
	want = xasprintf("/containers/%s/json", id);
	ck_assert_ptr_nonnull(path);
	ck_assert_str_eq(path, want);
	body = body ? body : own;
	sync_answer(f->s, 200, body, strlen(body), NULL);
	ck_assert_ptr_null(sync_next(f->s));
	free(want);
	free(own);
}

static const char *id_of(struct fx *f, size_t i)
{
	return json_string_value(
	    json_object_get(json_array_get(f->inspect, i), "Id"));
}

START_TEST(test_sync_start_stop)
{
	struct fx f;
	struct revoke_addr *gone;
	size_t n;
	bool all;

	fx_init(&f);
	start(&f, 1, NULL); /* backend */
	ck_assert_int_eq(f.r.applies, 1);
	ck_assert_uint_gt(f.r.adds, 0);
	ck_assert_uint_eq(f.r.dels, 0);
	ck_assert_uint_eq(sync_inventory(f.s)->n, 1);
	ck_assert_ptr_nonnull(strstr(f.r.log.s, "placed backend (backend)"));
	ck_assert_uint_eq(sync_stats(f.s)->start.n, 1);
	ck_assert_uint_eq(sync_stats(f.s)->events, 1);
	/* placing it again changes nothing: no batch, and the addresses
	 * it gave up and took again end nothing */
	start(&f, 1, NULL);
	ck_assert_int_eq(f.r.applies, 1);
	ck_assert(
	    sync_revocation(f.s, &gone, &n, &all)); /* the first converge */
	ck_assert(all);
	free(gone);
	start(&f, 1, NULL);
	ck_assert(!sync_revocation(f.s, &gone, &n, &all));
	ck_assert_ptr_null(gone);
	ck_assert_uint_eq(n, 0);

	/* it dies: no answer needed, its elements leave, its address is
	 * given up and its flows are judged */
	event(&f, "die", id_of(&f, 1));
	ck_assert_ptr_null(sync_next(f.s));
	ck_assert_int_eq(f.r.applies, 2);
	ck_assert_uint_eq(f.r.adds, 0);
	ck_assert_uint_gt(f.r.dels, 0);
	ck_assert_uint_eq(sync_inventory(f.s)->n, 0);
	ck_assert_uint_ge(sync_gone(f.s)->n, 1);
	/* the gone list's index names it by its address, a late record's
	 * end: built now, then kept as more leave */
	{
		const struct inv_net *net;
		long svc;
		const struct inv_container *c = trace_index_find(
		    sync_gone_index(f.s), AF_INET, 0xac1c0503, &net, &svc);

		ck_assert_ptr_nonnull(c);
		ck_assert_str_eq(c->name, "backend");
		ck_assert_str_eq(net->name, "appnet");
		ck_assert_int_eq(
		    svc, policy_service_index(sync_policy(f.s), "backend"));
		ck_assert_ptr_null(trace_index_find(
		    sync_gone_index(f.s), AF_INET, 0xac1c0509, &net, &svc));
	}
	ck_assert(sync_revocation(f.s, &gone, &n, &all));
	ck_assert(!all); /* only the flows of what it gave up are judged */
	ck_assert_uint_eq(n, 2); /* 172.28.5.3 and fd00:28:5::3 */
	ck_assert_int_eq(gone[0].family, AF_INET);
	ck_assert_int_eq(gone[1].family, AF_INET6);
	free(gone);
	ck_assert_ptr_nonnull(strstr(f.r.log.s, "removed backend"));
	/* one more leaves: the index, kept, names it too */
	start(&f, 0, NULL);
	event(&f, "die", id_of(&f, 0));
	ck_assert_ptr_null(sync_next(f.s));
	{
		const struct inv_net *net;
		long svc;
		const struct inv_container *c = trace_index_find(
		    sync_gone_index(f.s), AF_INET, 0xac1c0502, &net, &svc);

		ck_assert_ptr_nonnull(c);
		ck_assert_str_eq(c->name, "nginx");
	}
	/* past their time, they leave as the next one comes: by the
	 * index too */
	sync_keep_gone(f.s, 0);
	sleep(1);
	ck_assert_uint_ge(sync_gone(f.s)->n, 2);
	start(&f, 2, NULL);
	event(&f, "die", id_of(&f, 2));
	ck_assert_ptr_null(sync_next(f.s));
	ck_assert_uint_eq(sync_gone(f.s)->n, 1);
	ck_assert_str_eq(sync_gone(f.s)->c[0].name, "db");
	{
		const struct inv_net *net;
		long svc;

		ck_assert_ptr_null(trace_index_find(
		    sync_gone_index(f.s), AF_INET, 0xac1c0502, &net, &svc));
	}
	/* a die for what is not placed: nothing (nginx's and db's starts
	 * and dies made four batches more) */
	event(&f, "die", id_of(&f, 1));
	ck_assert_ptr_null(sync_next(f.s));
	ck_assert_int_eq(f.r.applies, 6);
	ck_assert(!sync_wants_resync(f.s));
	fx_free(&f);
}
END_TEST

/* backend's address goes to a new container while backend's die is
 * late: backend is taken out (its rights do not pass on), and its die,
 * when it comes, changes nothing. */
START_TEST(test_sync_address_reuse_late_die)
{
	struct fx f;
	json_t *c;
	char *body;

	fx_init(&f);
	start(&f, 1, NULL); /* backend at 172.28.5.3 */
	c = json_deep_copy(json_array_get(f.inspect, 2)); /* db */
	json_object_set_new(
	    json_object_get(
		json_object_get(json_object_get(c, "NetworkSettings"),
				"Networks"),
		"appnet"),
	    "IPAddress", json_string("172.28.5.3"));
	body = json_dumps(c, JSON_COMPACT);
	start(&f, 2, body);
	ck_assert_uint_eq(sync_inventory(f.s)->n, 1);
	ck_assert_str_eq(sync_inventory(f.s)->c[0].name, "db");
	ck_assert_ptr_nonnull(strstr(
	    f.r.log.s, "container db holds an address of backend, which is "
		       "gone: removing backend"));
	/* one batch: backend's elements out, db's in */
	ck_assert_int_eq(f.r.applies, 2);
	ck_assert_uint_gt(f.r.dels, 0);
	ck_assert_uint_gt(f.r.adds, 0);

	event(&f, "die", id_of(&f, 1)); /* the late die */
	ck_assert_ptr_null(sync_next(f.s));
	ck_assert_int_eq(f.r.applies, 2);
	ck_assert_uint_eq(sync_inventory(f.s)->n, 1);
	free(body);
	json_decref(c);
	fx_free(&f);
}
END_TEST

/* An event that does not parse, or a start never seen: a resync is
 * asked for, and the converge it brings places what was missed. */
START_TEST(test_sync_missed_event)
{
	struct fx f;
	struct inventory *inv = inventory_new();
	struct kernel_sync res;
	char err[256];
	char *body;
	const char *id;

	fx_init(&f);
	ck_assert_int_eq(sync_event(f.s, "{\"Type\":", 8), -EINVAL);
	ck_assert(sync_wants_resync(f.s));
	ck_assert_ptr_nonnull(strstr(f.r.log.s, "does not parse"));
	ck_assert_ptr_null(sync_next(f.s));
	/* the snapshot Docker gives: nginx and backend run */
	body = inspect_of(&f, 0, &id);
	ck_assert_int_eq(docker_parse_inspect(f.dk, body, strlen(body), inv,
					      err, sizeof(err)),
			 0);
	free(body);
	body = inspect_of(&f, 1, &id);
	ck_assert_int_eq(docker_parse_inspect(f.dk, body, strlen(body), inv,
					      err, sizeof(err)),
			 0);
	free(body);
	ck_assert_int_eq(sync_converge(f.s, inv, &res), 0);
	ck_assert(res.replaced);
	ck_assert(!sync_wants_resync(f.s));
	ck_assert_uint_eq(sync_inventory(f.s)->n, 2);
	ck_assert_uint_eq(sync_stats(f.s)->resyncs, 2);
	/* a delta against it: stopping backend takes its elements only */
	event(&f, "die", id_of(&f, 1));
	ck_assert_ptr_null(sync_next(f.s));
	ck_assert_uint_eq(sync_inventory(f.s)->n, 1);
	ck_assert_uint_gt(f.r.dels, 0);
	fx_free(&f);
}
END_TEST

/* The kernel refuses a delta: the failure is said, a resync is asked
 * for; a refused converge keeps the inventory that was in force. */
START_TEST(test_sync_refused_batch)
{
	struct fx f;
	struct kernel_sync res;

	fx_init(&f);
	f.r.refuse = true;
	start(&f, 0, NULL);
	ck_assert_int_eq(f.r.applies, 0);
	ck_assert(sync_wants_resync(f.s));
	ck_assert_ptr_nonnull(strstr(f.r.log.s,
				     "error: kernel: the kernel refused adding "
				     "set x: File exists; resyncing"));
	ck_assert_uint_eq(sync_stats(f.s)->deltas, 0);
	ck_assert_int_eq(sync_converge(f.s, inventory_new(), &res), -1);
	ck_assert_uint_eq(sync_inventory(f.s)->n, 1); /* kept */
	f.r.refuse = false;
	ck_assert_int_eq(sync_converge(f.s, inventory_new(), &res), 0);
	ck_assert_uint_eq(sync_inventory(f.s)->n, 0);
	ck_assert(!sync_wants_resync(f.s));
	fx_free(&f);
}
END_TEST

/* Another process changed our table: what we hold goes back. */
START_TEST(test_sync_restore)
{
	struct fx f;
	struct kernel_sync res;

	fx_init(&f);
	start(&f, 0, NULL);
	ck_assert_int_eq(sync_restore(f.s, "table deleted", &res), 1);
	ck_assert_uint_eq(sync_stats(f.s)->restores, 1);
	ck_assert_str_eq(sync_stats(f.s)->last_restore_why, "table deleted");
	ck_assert_ptr_nonnull(strstr(f.r.log.s, "changed by another process "
						"(table deleted): restored"));
	f.r.refuse = true;
	ck_assert_int_eq(sync_restore(f.s, "rule deleted", &res), -1);
	ck_assert(sync_wants_resync(f.s));
	fx_free(&f);
}
END_TEST

#define CONN_NET                                                               \
	"4bf66c400c1ab81a36000dcc303a13b13b5afeddb1a94f496b461b480ec5b411"
#define CONN_A                                                                 \
	"104a7e5457a8e610600730bd0ffc3bf169a340b6d28e57be66910f92bfaf3539"
#define CONN_B                                                                 \
	"204a7e5457a8e610600730bd0ffc3bf169a340b6d28e57be66910f92bfaf3539"

static void connect_event(struct fx *f, const char *id)
{
	char *line =
	    xasprintf("{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{"
		      "\"ID\":\"%s\",\"Attributes\":{\"container\":\"%s\"}}}",
		      CONN_NET, id);

	ck_assert_int_eq(sync_event(f->s, line, strlen(line)), 0);
	free(line);
}

/* A burst of connects: one list request for them all, one network
 * object for every connect read before it was asked; a connect read
 * after that asks anew. */
START_TEST(test_sync_connect_burst)
{
	struct fx f;
	size_t nl, nn;
	char *list = read_text(FIXTURES "/docker-connect-list.json", &nl);
	char *net = read_text(FIXTURES "/docker-connect-network.json", &nn);
	const char *path;

	fx_init(&f);
	connect_event(&f, CONN_A);
	connect_event(&f, CONN_B);
	path = sync_next(f.s);
	ck_assert_ptr_nonnull(path);
	ck_assert_ptr_nonnull(strstr(path, "/containers/json?all=1&filters="));
	ck_assert_ptr_nonnull(strstr(path, "%22" CONN_A "%22%2C%22" CONN_B));
	sync_answer(f.s, 200, list, nl, NULL); /* B's entry: none, gone */
	path = sync_next(f.s);
	ck_assert_str_eq(path, "/networks/" CONN_NET);
	sync_answer(f.s, 200, net, nn, NULL);
	/* B needs no request of its own */
	ck_assert_ptr_null(sync_next(f.s));
	ck_assert_uint_eq(sync_stats(f.s)->net_reused, 1);
	ck_assert_uint_eq(sync_stats(f.s)->events, 2);
	ck_assert_ptr_nonnull(strstr(f.r.log.s, "placed "));
	/* later: the object kept is older than the event */
	connect_event(&f, CONN_A);
	path = sync_next(f.s);
	ck_assert_ptr_nonnull(strstr(path, "%22" CONN_A "%22%5D"));
	sync_answer(f.s, 200, list, nl, NULL);
	path = sync_next(f.s);
	ck_assert_str_eq(path, "/networks/" CONN_NET);
	sync_answer(f.s, 200, net, nn, NULL);
	ck_assert_ptr_null(sync_next(f.s));
	ck_assert_uint_eq(sync_stats(f.s)->net_reused, 1);
	free(list);
	free(net);
	fx_free(&f);
}
END_TEST

/* A container removed at once after its start (docker run, then rm -f):
 * its inspect answers 404, yet it was placed at its connect before the
 * start was read, and the start counts so; never as a latency of its
 * own. */
START_TEST(test_sync_start_gone)
{
	struct fx f;
	size_t nl, nn;
	char *list = read_text(FIXTURES "/docker-connect-list.json", &nl);
	char *net = read_text(FIXTURES "/docker-connect-network.json", &nn);
	const char *path;

	/* on the policy's network, in its backend service */
	text_edit(&net, "\"Name\":\"bhfix\"", "\"Name\":\"appnet\"");
	text_edit(&list, "\"app\":\"web\"", "\"app\":\"backend\"");
	nl = strlen(list);
	nn = strlen(net);
	fx_init(&f);
	connect_event(&f, CONN_A);
	ck_assert_ptr_nonnull(sync_next(f.s));
	sync_answer(f.s, 200, list, nl, NULL);
	ck_assert_ptr_nonnull(sync_next(f.s));
	sync_answer(f.s, 200, net, nn, NULL);
	ck_assert_uint_eq(sync_inventory(f.s)->n, 1);
	ck_assert_uint_eq(sync_stats(f.s)->connect.n, 1);
	event(&f, "start", CONN_A);
	path = sync_next(f.s);
	ck_assert_str_eq(path, "/containers/" CONN_A "/json");
	sync_answer(f.s, 404, "{\"message\":\"No such container\"}", 32, NULL);
	ck_assert_uint_eq(sync_inventory(f.s)->n, 0);
	ck_assert_uint_eq(sync_stats(f.s)->start.n, 1);
	ck_assert_uint_eq(sync_stats(f.s)->before_start, 1);
	/* a start of a container never placed, gone by its inspect: not
	 * counted */
	event(&f, "start", CONN_B);
	ck_assert_ptr_nonnull(sync_next(f.s));
	sync_answer(f.s, 404, "{}", 2, NULL);
	ck_assert_uint_eq(sync_stats(f.s)->start.n, 1);
	free(list);
	free(net);
	fx_free(&f);
}
END_TEST

Suite *sync_suite(void)
{
	Suite *s = suite_create("sync");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_sync_start_stop);
	tcase_add_test(tc, test_sync_address_reuse_late_die);
	tcase_add_test(tc, test_sync_missed_event);
	tcase_add_test(tc, test_sync_refused_batch);
	tcase_add_test(tc, test_sync_restore);
	tcase_add_test(tc, test_sync_connect_burst);
	tcase_add_test(tc, test_sync_start_gone);
	suite_add_tcase(s, tc);
	return s;
}
