/* The Docker client's pure parts: events as a real dockerd sends them
 * (tests/fixtures/docker-events.jsonl was recorded from one), the line
 * splitter across arbitrary chunk boundaries, and the socket's path. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/docker.h"
#include "unit.h"

static const char *const want_kinds[] = {
    "network connect:connect",	   "container start:start",
    "container exec_create:other", "container exec_start:other",
    "container exec_die:other",	   "container kill:other",
    "container die:stop",	   "network disconnect:update",
    "container stop:stop",	   "container destroy:stop",
};

static const char *kind_name(enum docker_ev_kind k)
{
	switch (k) {
	case DEV_START:
		return "start";
	case DEV_STOP:
		return "stop";
	case DEV_CONNECT:
		return "connect";
	case DEV_UPDATE:
		return "update";
	case DEV_NETWORK_NEW:
		return "network-new";
	default:
		return "other";
	}
}

struct collected {
	struct docker_event ev[64];
	char kinds[64][64];
	size_t n;
	int bad;
};

static void collect(void *ctx, const char *line, size_t len)
{
	struct collected *c = ctx;
	json_t *j = json_loadb(line, len, 0, NULL);
	const char *act = json_string_value(json_object_get(j, "Action"));
	size_t alen = act ? strcspn(act, ":") : 0;

	ck_assert_uint_lt(c->n, 64);
	if (docker_event_parse(line, len, &c->ev[c->n]))
		c->bad++;
	snprintf(c->kinds[c->n], sizeof(c->kinds[0]), "%s %.*s:%s",
		 json_string_value(json_object_get(j, "Type")), (int)alen,
		 act ? act : "", kind_name(c->ev[c->n].kind));
	c->n++;
	json_decref(j);
}

/* The recorded stream, fed in chunks of every size from 1 to 97 bytes:
 * the same events, whatever the boundaries. */
START_TEST(test_recorded_events)
{
	size_t len, i, step, off;
	char *buf = read_text(FIXTURES "/docker-events.jsonl", &len);

	for (step = 1; step < 98; step += 6) {
		struct docker_lines l = {0};
		struct collected c = {0};

		for (off = 0; off < len; off += step)
			ck_assert_int_eq(docker_lines_feed(&l, buf + off,
							   off + step > len
							       ? len - off
							       : step,
							   collect, &c),
					 0);
		ck_assert_int_eq(c.bad, 0);
		ck_assert_uint_eq(c.n,
				  sizeof(want_kinds) / sizeof(want_kinds[0]));
		for (i = 0; i < c.n; i++)
			ck_assert_str_eq(c.kinds[i], want_kinds[i]);
		/* a network event names the container, and a connect the
		 * network too */
		ck_assert_uint_eq(strlen(c.ev[0].id), 64);
		ck_assert_str_eq(c.ev[0].id, c.ev[1].id);
		ck_assert_str_eq(c.ev[0].net,
				 "de180f5281bcd6aad38f48ff3eafa61c"
				 "af0298c4d7d497a3e5f55bc170e1fc04");
		docker_lines_free(&l);
	}
	free(buf);
}
END_TEST

START_TEST(test_event_shapes)
{
	static const struct {
		const char *line;
		int ret;
		enum docker_ev_kind kind;
	} cases[] = {
	    {"{\"Type\":\"network\",\"Action\":\"create\",\"Actor\":{\"ID\":"
	     "\"abc123\",\"Attributes\":{\"name\":\"n\"}}}",
	     0, DEV_NETWORK_NEW},
	    {"{\"Type\":\"container\",\"Action\":\"rename\",\"Actor\":"
	     "{\"ID\":\"ff\"}}",
	     0, DEV_UPDATE},
	    {"{\"Type\":\"container\",\"Action\":\"pause\",\"Actor\":"
	     "{\"ID\":\"ff\"}}",
	     0, DEV_OTHER},
	    {"{\"Type\":\"image\",\"Action\":\"start\",\"Actor\":{}}", 0,
	     DEV_OTHER},
	    /* ids go into request paths: hex only */
	    {"{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":"
	     "{\"ID\":\"../../x\"}}",
	     -EINVAL, DEV_OTHER},
	    {"{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":"
	     "{\"ID\":\"\"}}",
	     -EINVAL, DEV_OTHER},
	    {"{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":"
	     "{\"ID\":\"ab\",\"Attributes\":{}}}",
	     -EINVAL, DEV_OTHER},
	    /* the network's id goes into a request path too */
	    {"{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":"
	     "{\"ID\":\"../x\",\"Attributes\":{\"container\":\"ab\"}}}",
	     -EINVAL, DEV_OTHER},
	    {"{\"Type\":\"network\",\"Action\":\"disconnect\",\"Actor\":"
	     "{\"ID\":\"cd\",\"Attributes\":{\"container\":\"ab\"}}}",
	     0, DEV_UPDATE},
	    {"{\"Type\":\"container\",\"Action\":\"start\"}", -EINVAL,
	     DEV_OTHER},
	    {"[1,2]", -EINVAL, DEV_OTHER},
	    {"{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\""
	     ":\"00000000000000000000000000000000000000000000000000000000000"
	     "000000\"}}",
	     -EINVAL, DEV_OTHER}, /* 65 digits */
	    {"\x01\xff garbage", -EINVAL, DEV_OTHER},
	};
	struct docker_event ev;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(docker_event_parse(cases[i].line,
						    strlen(cases[i].line), &ev),
				 cases[i].ret);
		ck_assert_int_eq(ev.kind, cases[i].kind);
	}
}
END_TEST

static void count_line(void *ctx, const char *line, size_t len)
{
	(void)line;
	(void)len;
	(*(int *)ctx)++;
}

START_TEST(test_lines)
{
	struct docker_lines l = {0};
	char *big = malloc(DOCKER_LINE_MAX + 2);
	int n = 0;

	/* CRLF, empty lines and a line split across feeds */
	ck_assert_int_eq(docker_lines_feed(&l, "a\r\n\n\nb", 6, count_line, &n),
			 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(docker_lines_feed(&l, "c\n", 2, count_line, &n), 0);
	ck_assert_int_eq(n, 2);
	/* one line that never ends is a broken stream, not a memory hog */
	memset(big, 'x', DOCKER_LINE_MAX + 1);
	ck_assert_int_eq(
	    docker_lines_feed(&l, big, DOCKER_LINE_MAX + 1, count_line, &n),
	    -E2BIG);
	docker_lines_free(&l);
	free(big);
}
END_TEST

START_TEST(test_sock_path)
{
	char err[256];

	unsetenv("DOCKER_HOST");
	ck_assert_str_eq(docker_sock_path(NULL, err, sizeof(err)), DOCKER_SOCK);
	ck_assert_str_eq(docker_sock_path("/x.sock", err, sizeof(err)),
			 "/x.sock");
	setenv("DOCKER_HOST", "unix:///run/d.sock", 1);
	ck_assert_str_eq(docker_sock_path(NULL, err, sizeof(err)),
			 "/run/d.sock");
	/* the flag wins over the environment */
	ck_assert_str_eq(docker_sock_path("/x.sock", err, sizeof(err)),
			 "/x.sock");
	setenv("DOCKER_HOST", "tcp://10.0.0.1:2375", 1);
	ck_assert_ptr_null(docker_sock_path(NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "tcp://10.0.0.1:2375"));
	unsetenv("DOCKER_HOST");
}
END_TEST

#define CONNECT_ID                                                             \
	"104a7e5457a8e610600730bd0ffc3bf169a340b6d28e57be66910f92bfaf3539"

static int connect_parse(const char *list, const char *net,
			 struct inventory *inv, char *err, size_t errlen)
{
	struct docker *d = docker_new("/nonexistent", err, errlen);
	int r;

	ck_assert_ptr_nonnull(d);
	r = docker_parse_connect(d, list, strlen(list), net, strlen(net),
				 CONNECT_ID, inv, err, errlen);
	docker_free(d);
	return r;
}

/* Answers recorded from dockerd the moment its connect event came, before
 * the start: the list entry has no address yet, the network object has. */
START_TEST(test_connect_recorded)
{
	size_t n;
	char *list = read_text(FIXTURES "/docker-connect-list.json", &n);
	char *net = read_text(FIXTURES "/docker-connect-network.json", &n);
	struct inventory *inv = inventory_new();
	const struct inv_container *c;
	char err[256], a[64];

	ck_assert_int_eq(connect_parse(list, net, inv, err, sizeof(err)), 0);
	ck_assert_uint_eq(inv->n, 1);
	c = &inv->c[0];
	ck_assert_str_eq(c->id, CONNECT_ID);
	ck_assert_str_eq(c->name, "bh-fix-web");
	ck_assert_str_eq(c->image, "bulkhead-test/nginx:1.25");
	ck_assert_str_eq(inv_label(c, "app"), "web");
	ck_assert_str_eq(c->compose_service, "web");
	ck_assert_uint_eq(c->nnets, 1);
	ck_assert_str_eq(c->nets[0].name, "bhfix");
	ck_assert_str_eq(c->nets[0].bridge, "bhfix0"); /* from Options */
	ck_assert(c->nets[0].has4 && !c->nets[0].has6);
	addr_format(AF_INET, c->nets[0].ip4, a, sizeof(a));
	ck_assert_str_eq(a, "10.77.0.2");
	ck_assert_int_eq(c->nets[0].plen4, 24);

	/* dual stack */
	text_edit(&net, "\"IPv6Address\":\"\"",
		  "\"IPv6Address\":\"fd00:77::2/64\"");
	ck_assert_int_eq(connect_parse(list, net, inv, err, sizeof(err)), 0);
	ck_assert_uint_eq(inv->n, 2);
	ck_assert(inv->c[1].nets[0].has6);
	addr_format(AF_INET6, inv->c[1].nets[0].ip6, a, sizeof(a));
	ck_assert_str_eq(a, "fd00:77::2");
	ck_assert_int_eq(inv->c[1].nets[0].plen6, 64);
	inventory_free(inv);
	free(list);
	free(net);
}
END_TEST

/* Nothing to place, or a clear refusal: never a guess. */
START_TEST(test_connect_cases)
{
	size_t n;
	char *list0 = read_text(FIXTURES "/docker-connect-list.json", &n);
	char *net0 = read_text(FIXTURES "/docker-connect-network.json", &n);
	static const struct {
		bool in_net; /* else in list */
		const char *from, *to;
		int ret;
		size_t placed;
		const char *err;
	} cases[] = {
	    /* exited in between: nothing */
	    {false, "\"created\"", "\"exited\"", 0, 0, NULL},
	    {false, "\"created\"", "\"running\"", 0, 1, NULL},
	    /* another container whose id has ours as prefix is not ours */
	    {false, CONNECT_ID, CONNECT_ID "0", 0, 0, NULL},
	    /* left the network again */
	    {true, CONNECT_ID, "ff", 0, 0, NULL},
	    {true, "10.77.0.2/24", "10.77.0.2/240", -EINVAL, 0,
	     "bad endpoint address"},
	    {true, "10.77.0.2/24", "10.77.0.2/x", -EINVAL, 0,
	     "bad endpoint address"},
	    {true, "10.77.0.2/24", "banana/24", -EINVAL, 0, "not an IPv4"},
	    {true, "\"Name\":\"bhfix\"", "\"Name\":7", -EINVAL, 0,
	     "not a network object"},
	    {false, "[", "{", -EINVAL, 0, "not an array"},
	    {false, "\"Labels\":{", "\"Labels\":7,\"L\":{", -EINVAL, 0,
	     "Labels"},
	    {false, "\"/bh-fix-web\"", "7", -EINVAL, 0, "Id and Name"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *list = xstrdup(list0), *net = xstrdup(net0),
		     err[256] = "";
		struct inventory *inv = inventory_new();

		text_edit(cases[i].in_net ? &net : &list, cases[i].from,
			  cases[i].to);
		ck_assert_msg(connect_parse(list, net, inv, err, sizeof(err)) ==
				  cases[i].ret,
			      "case %zu: %s", i, err);
		ck_assert_uint_eq(inv->n, cases[i].placed);
		if (cases[i].err)
			ck_assert_msg(strstr(err, cases[i].err), "case %zu: %s",
				      i, err);
		inventory_free(inv);
		free(list);
		free(net);
	}
	free(list0);
	free(net0);
}
END_TEST

static char *addr_of(const struct inventory *inv)
{
	char a[64];

	ck_assert_uint_eq(inv->n, 1);
	ck_assert_uint_eq(inv->c[0].nnets, 1);
	addr_format(AF_INET, inv->c[0].nets[0].ip4, a, sizeof(a));
	return xstrdup(a);
}

/* The network object is read in slices (only our container's entry is
 * parsed): however it is laid out, the answer is the same as parsing it
 * whole, and strings that look like our entry are not taken for it. */
START_TEST(test_connect_network_shapes)
{
	size_t n, i;
	char *list = read_text(FIXTURES "/docker-connect-list.json", &n);
	char *net = read_text(FIXTURES "/docker-connect-network.json", &n);
	json_t *j = json_loads(net, 0, NULL), *cs, *ours;
	char err[256], *text, *a;
	struct inventory *inv;

	ck_assert_ptr_nonnull(j);
	/* pretty-printed, and keys in another order */
	text = json_dumps(j, JSON_INDENT(3) | JSON_SORT_KEYS);
	inv = inventory_new();
	ck_assert_int_eq(connect_parse(list, text, inv, err, sizeof(err)), 0);
	a = addr_of(inv);
	ck_assert_str_eq(a, "10.77.0.2");
	ck_assert_str_eq(inv->c[0].nets[0].bridge, "bhfix0");
	free(a);
	free(text);
	inventory_free(inv);

	/* a crowded network, ours last, and a decoy in a string before */
	cs = json_object_get(j, "Containers");
	ours = json_incref(json_object_get(cs, CONNECT_ID));
	json_object_del(cs, CONNECT_ID);
	for (i = 0; i < 2000; i++) {
		char key[80];

		snprintf(key, sizeof(key), "%064zx", i);
		json_object_set_new(cs, key,
				    json_pack("{s:s, s:s}", "Name", "other",
					      "IPv4Address", "10.77.1.1/24"));
	}
	json_object_set_new(cs, CONNECT_ID, ours);
	json_object_set_new(j, "Labels",
			    json_pack("{s:s}", "decoy",
				      "\"" CONNECT_ID
				      "\":{\"IPv4Address\":\"10.9.9.9/24\"}"));
	text = json_dumps(j, JSON_COMPACT);
	text_edit(&text, "\"Labels\"",
		  "\"Containers\":{\"" CONNECT_ID "x\":{},"
		  "\"\\\"" CONNECT_ID "\":{}},\"Labels\"");
	inv = inventory_new();
	ck_assert_int_eq(connect_parse(list, text, inv, err, sizeof(err)), 0);
	a = addr_of(inv);
	ck_assert_str_eq(a, "10.77.0.2");
	free(a);
	free(text);
	inventory_free(inv);

	/* Go writes the keys sorted, and ours is looked for by halves; in
	 * any other order the one search through finds it all the same */
	for (i = 0; i < 4; i++) {
		json_t *c2 = json_object(), *big = json_deep_copy(j);
		size_t k, m = i < 2 ? 3000 : 1;

		for (k = 0; k < m; k++) {
			char key[80];

			/* ids below and above ours, letters and digits */
			snprintf(
			    key, sizeof(key), "%016zx%048zx",
			    (k * 0x9e3779b97f4a7c15u) ^ 0x1040000000000000u, k);
			json_object_set_new(c2, key,
					    json_pack("{s:s, s:s}", "Name",
						      "other", "IPv4Address",
						      "10.77.1.1/24"));
		}
		json_object_set(c2, CONNECT_ID, ours);
		json_object_set_new(big, "Containers", c2);
		json_object_del(big, "Labels");
		text = json_dumps(big,
				  JSON_COMPACT | (i % 2 ? JSON_SORT_KEYS : 0));
		inv = inventory_new();
		ck_assert_int_eq(
		    connect_parse(list, text, inv, err, sizeof(err)), 0);
		a = addr_of(inv);
		ck_assert_msg(a && !strcmp(a, "10.77.0.2"), "case %zu: %s", i,
			      a ? a : "(none)");
		free(a);
		free(text);
		inventory_free(inv);
		json_decref(big);
	}

	/* no container attached: Docker writes null */
	json_object_set_new(j, "Containers", json_null());
	text = json_dumps(j, JSON_COMPACT);
	inv = inventory_new();
	ck_assert_int_eq(connect_parse(list, text, inv, err, sizeof(err)), 0);
	ck_assert_uint_eq(inv->n, 0);
	free(text);
	inventory_free(inv);

	/* cut anywhere: an error or nothing, never a wrong address */
	n = strlen(net);
	for (i = 0; i < n; i++) {
		char *cut = xasprintf("%.*s", (int)i, net);

		inv = inventory_new();
		if (!connect_parse(list, cut, inv, err, sizeof(err)) &&
		    inv->n) {
			a = addr_of(inv);
			ck_assert_str_eq(a, "10.77.0.2");
			free(a);
		}
		inventory_free(inv);
		free(cut);
	}
	json_decref(j);
	free(list);
	free(net);
}
END_TEST

/* --- each Docker version's answers (scripts/capture-docker.sh) -------- */

struct version_set {
	char *inspect, *list, *network, *events, *early;
	size_t ninspect, nlist, nnetwork, nevents, nearly;
	char id[DOCKER_ID_MAX + 1], net[DOCKER_ID_MAX + 1];
};

static void version_load(struct version_set *v, const char *dir)
{
	char *p;
	json_t *j;

#define LOAD(field, file)                                                      \
	p = xasprintf("%s/" file, dir);                                        \
	v->field = read_text(p, &v->n##field);                                 \
	free(p)
	LOAD(inspect, "inspect.json");
	LOAD(list, "list.json");
	LOAD(network, "network.json");
	LOAD(events, "events.jsonl");
	LOAD(early, "connect-list.json");
#undef LOAD
	j = json_loads(v->inspect, 0, NULL);
	snprintf(v->id, sizeof(v->id), "%s",
		 json_string_value(json_object_get(j, "Id")));
	json_decref(j);
	j = json_loads(v->network, 0, NULL);
	snprintf(v->net, sizeof(v->net), "%s",
		 json_string_value(json_object_get(j, "Id")));
	json_decref(j);
	ck_assert_uint_eq(strlen(v->id), 64);
	ck_assert_uint_eq(strlen(v->net), 64);
}

static void version_free(struct version_set *v)
{
	free(v->inspect);
	free(v->list);
	free(v->network);
	free(v->events);
	free(v->early);
}

struct version_events {
	const char *id;
	size_t n, bad, connects, starts, stops, others_start;
	enum docker_ev_kind last;
	char net[DOCKER_ID_MAX + 1];
};

static void version_event(void *ctx, const char *line, size_t len)
{
	struct version_events *e = ctx;
	struct docker_event ev;

	e->n++;
	if (docker_event_parse(line, len, &ev)) {
		e->bad++;
		return;
	}
	if (strcmp(ev.id, e->id)) {
		/* the container whose start failed: never started */
		e->others_start += ev.kind == DEV_START;
		return;
	}
	e->connects += ev.kind == DEV_CONNECT;
	e->starts += ev.kind == DEV_START;
	e->stops += ev.kind == DEV_STOP;
	if (ev.kind == DEV_CONNECT)
		snprintf(e->net, sizeof(e->net), "%s", ev.net);
	e->last = ev.kind;
}

/* Every version's container reads the same by inspect and at its
 * connect (list entry and network object): name, compose service,
 * network, bridge, address and MAC (random since Docker 28, never
 * derived); its events parse, in whatever order the version sends them,
 * into one connect on its network, one start, and stops ending with the
 * removal; the container whose start failed never starts. */
START_TEST(test_versions)
{
	DIR *dir = opendir(FIXTURES "/docker");
	struct dirent *de;
	size_t nversions = 0;

	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir))) {
		struct version_set v = {0};
		struct version_events e = {0};
		struct inventory *a, *b;
		struct docker_lines l = {0};
		struct docker *d;
		char err[256], path[512];
		const struct inv_net *na, *nb;

		if (de->d_name[0] == '.')
			continue;
		a = inventory_new();
		b = inventory_new();
		snprintf(path, sizeof(path), FIXTURES "/docker/%s", de->d_name);
		version_load(&v, path);
		d = docker_new("/nonexistent", err, sizeof(err));
		ck_assert_ptr_nonnull(d);
		docker_learn_network(d, v.network, v.nnetwork);
		ck_assert_msg(!docker_parse_inspect(d, v.inspect, v.ninspect, a,
						    err, sizeof(err)),
			      "%s: inspect: %s", de->d_name, err);
		ck_assert_msg(!docker_parse_connect(d, v.list, v.nlist,
						    v.network, v.nnetwork, v.id,
						    b, err, sizeof(err)),
			      "%s: connect: %s", de->d_name, err);
		ck_assert_uint_eq(a->n, 1);
		ck_assert_uint_eq(b->n, 1);
		ck_assert_str_eq(a->c[0].name, "bh-fix-web");
		ck_assert_str_eq(b->c[0].name, "bh-fix-web");
		ck_assert_str_eq(a->c[0].compose_service, "web");
		ck_assert_str_eq(b->c[0].compose_service, "web");
		ck_assert_uint_eq(a->c[0].nnets, 1);
		ck_assert_uint_eq(b->c[0].nnets, 1);
		na = &a->c[0].nets[0];
		nb = &b->c[0].nets[0];
		ck_assert_str_eq(na->name, "bhfix");
		ck_assert_str_eq(nb->name, "bhfix");
		ck_assert_str_eq(na->bridge, "bhfix0");
		ck_assert_str_eq(nb->bridge, "bhfix0");
		ck_assert(na->has4 && nb->has4 && na->ip4 == nb->ip4);
		ck_assert_msg(na->has_mac && nb->has_mac && na->mac == nb->mac,
			      "%s: the MAC differs", de->d_name);
		ck_assert_ptr_nonnull(a->c[0].sandbox);

		/* at its connect, the list entry holds no address yet (on
		 * every version): the network object gives it */
		{
			json_t *j = json_loadb(v.early, v.nearly, 0, NULL);
			const char *ip = json_string_value(json_object_get(
			    json_object_get(
				json_object_get(
				    json_object_get(json_array_get(j, 0),
						    "NetworkSettings"),
				    "Networks"),
				"bhfix"),
			    "IPAddress"));

			ck_assert_msg(ip && !*ip, "%s: an address at connect",
				      de->d_name);
			json_decref(j);
		}
		inventory_free(b);
		b = inventory_new();
		ck_assert_msg(!docker_parse_connect(d, v.early, v.nearly,
						    v.network, v.nnetwork, v.id,
						    b, err, sizeof(err)),
			      "%s: connect: %s", de->d_name, err);
		ck_assert_uint_eq(b->n, 1);
		ck_assert(b->c[0].nets[0].ip4 == na->ip4);

		e.id = v.id;
		ck_assert_int_eq(docker_lines_feed(&l, v.events, v.nevents,
						   version_event, &e),
				 0);
		ck_assert_msg(e.bad == 0, "%s: %zu of %zu events do not parse",
			      de->d_name, e.bad, e.n);
		ck_assert_uint_eq(e.connects, 1);
		ck_assert_str_eq(e.net, v.net);
		ck_assert_uint_eq(e.starts, 1);
		ck_assert_uint_ge(e.stops, 1);
		ck_assert_int_eq(e.last, DEV_STOP);
		ck_assert_uint_eq(e.others_start, 0);

		docker_lines_free(&l);
		docker_free(d);
		inventory_free(a);
		inventory_free(b);
		version_free(&v);
		nversions++;
	}
	closedir(dir);
	/* Docker 20.10, 26 and 28 at least */
	ck_assert_uint_ge(nversions, 3);
}
END_TEST

Suite *docker_suite(void)
{
	Suite *s = suite_create("docker");
	TCase *tc = tcase_create("docker");

	tcase_add_test(tc, test_recorded_events);
	tcase_add_test(tc, test_event_shapes);
	tcase_add_test(tc, test_lines);
	tcase_add_test(tc, test_connect_recorded);
	tcase_add_test(tc, test_connect_cases);
	tcase_add_test(tc, test_connect_network_shapes);
	tcase_add_test(tc, test_sock_path);
	tcase_add_test(tc, test_versions);
	suite_add_tcase(s, tc);
	return s;
}
