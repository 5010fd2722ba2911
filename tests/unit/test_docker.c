/* The Docker client's pure parts: events as a real dockerd sends them
 * (tests/fixtures/docker-events.jsonl was recorded from one), the line
 * splitter across arbitrary chunk boundaries, and the socket's path. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/docker.h"
#include "unit.h"

static const char *const want_kinds[] = {
    "network connect:update",	   "container start:start",
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
		/* a network event names the container, not the network */
		ck_assert_uint_eq(strlen(c.ev[0].id), 64);
		ck_assert_str_eq(c.ev[0].id, c.ev[1].id);
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

Suite *docker_suite(void)
{
	Suite *s = suite_create("docker");
	TCase *tc = tcase_create("docker");

	tcase_add_test(tc, test_recorded_events);
	tcase_add_test(tc, test_event_shapes);
	tcase_add_test(tc, test_lines);
	tcase_add_test(tc, test_sock_path);
	suite_add_tcase(s, tc);
	return s;
}
