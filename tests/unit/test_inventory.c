/* Unit tests for src/inventory.c: real `docker inspect` fixtures, and
 * malformed or truncated JSON reported with its position, never a crash. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"

START_TEST(test_three_tier_fixture)
{
	struct inventory *inv =
	    load_inventory_fixture(FIXTURES "/three-tier.json");
	const struct inv_container *c;
	char a[64];

	ck_assert_uint_eq(inv->n, 6);
	c = inventory_find(inv, "backend");
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(inv_label(c, "app"), "backend");
	ck_assert_str_eq(c->image, "bulkhead-test/backend:1.0");
	ck_assert_uint_eq(c->nnets, 1);
	ck_assert_str_eq(c->nets[0].name, "appnet");
	ck_assert(c->nets[0].has4 && c->nets[0].has6);
	ck_assert_int_eq(strncmp(c->nets[0].bridge, "br-", 3), 0);
	ck_assert_uint_eq(strlen(c->nets[0].bridge), 15);
	addr_format(AF_INET, c->nets[0].ip4, a, sizeof(a));
	ck_assert_int_eq(strncmp(a, "172.28.5.", 9), 0);
	addr_format(AF_INET6, c->nets[0].ip6, a, sizeof(a));
	ck_assert_int_eq(strncmp(a, "fd00:28:5::", 11), 0);
	ck_assert_ptr_nonnull(inventory_find(inv, c->id));
	ck_assert_ptr_null(c->compose_service);
	/* identity: the endpoint's MAC and the container's namespace */
	ck_assert(c->nets[0].has_mac);
	ck_assert(c->nets[0].mac == 0x0242ac1c0503ull);
	ck_assert_str_eq(c->sandbox, "/var/run/docker/netns/8668e13d2bca");
	addr_format(AF_INET6, mac_link_local(c->nets[0].mac), a, sizeof(a));
	ck_assert_str_eq(a, "fe80::42:acff:fe1c:503");
	inventory_free(inv);
}
END_TEST

START_TEST(test_compose_fixture)
{
	struct inventory *inv = load_inventory_fixture(FIXTURES "/shop.json");
	size_t i;

	ck_assert_uint_eq(inv->n, 5);
	for (i = 0; i < inv->n; i++) {
		ck_assert_ptr_nonnull(inv->c[i].compose_service);
		ck_assert_str_eq(inv->c[i].compose_project, "shop");
	}
	ck_assert_uint_eq(inventory_find(inv, "shop_backend_1")->nnets, 2);
	inventory_free(inv);
}
END_TEST

struct badjson {
	const char *json;
	unsigned line, col;
	const char *msg;
};

static const struct badjson badjson[] = {
    {"", 1, 1, "empty input"},
    {"{}", 1, 1, "expected '['"},
    {"[", 1, 2, "truncated input"},
    {"[1]", 1, 2, "container #1 is not a JSON object"},
    {"[{\"Id\": \"x\", \"Name\": \"/a\"} {}]", 1, 28,
     "expected ',' or ']' after container #1"},
    {"[\n  {\"Id\": \"x\",\n   \"Name\": }\n]", 3, 12, "container #1"},
    {"[{\"Id\": \"abc\", \"Name\": \"/a\", \"NetworkSettings\": {\"Networks\": "
     "{\"n\": {\"IPAddress\": \"1.2.3\"}}}}]",
     1, 2, "'1.2.3' is not an IPv4 address"},
    {"[{\"Id\": 5, \"Name\": \"/a\"}]", 1, 2,
     "needs string fields Id and Name"},
    {"[{\"Id\": \"abc\", \"Name\": \"/a\", \"NetworkSettings\": {\"Networks\": "
     "{\"n\": {\"IPAddress\": \"1.2.3.4\", \"MacAddress\": \"02:42:zz\"}}}}]",
     1, 2, "MacAddress '02:42:zz' is not a MAC address"},
    {"[{\"Id\": \"a\", \"Name\": \"/a\", \"Config\": {\"Labels\": {\"x\": "
     "1}}}]",
     1, 2, "label 'x' is not a string"},
    {"[{\"Id\": \"a\", \"Name\": \"/a\"}] x", 1, 29,
     "unexpected data after the array"},
    {"[{\"Id\": \"a\", \"Name\": \"/a\", \"Config\": {\"Image\": \"x", 1, 49,
     "container #1"},
};

START_TEST(test_bad_json)
{
	const struct badjson *b = &badjson[_i];
	struct inventory *inv = inventory_new();
	struct diags d = {0};
	int fds[2];
	ssize_t w;

	ck_assert_int_eq(pipe(fds), 0);
	w = write(fds[1], b->json, strlen(b->json));
	ck_assert_int_eq(w, (ssize_t)strlen(b->json));
	close(fds[1]);
	ck_assert_int_eq(inventory_load_fd(inv, fds[0], "inv.json", &d),
			 -EINVAL);
	close(fds[0]);
	ck_assert_uint_ge(d.nerrors, 1);
	if (d.v[0].line != b->line || d.v[0].col != b->col ||
	    !strstr(d.v[0].msg, b->msg)) {
		diags_print(&d, stderr);
		ck_abort_msg("case %d: want %u:%u: %s", _i, b->line, b->col,
			     b->msg);
	}
	diags_free(&d);
	inventory_free(inv);
}
END_TEST

static void add_numbered(struct inventory *inv, unsigned i)
{
	struct diags d = {0};
	char id[80], name[32], ip[32];
	json_t *o;

	snprintf(id, sizeof(id), "%064x", i);
	snprintf(name, sizeof(name), "/c%u", i);
	snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16, (i >> 8) & 255,
		 i & 255);
	o = json_pack("{s:s, s:s, s:{s:b}, s:{s:s}, s:{s:{s:{s:s, s:i}}}}",
		      "Id", id, "Name", name, "State", "Running", 1, "Config",
		      "Image", "x", "NetworkSettings", "Networks", "n",
		      "IPAddress", ip, "IPPrefixLen", 8);
	ck_assert_int_eq(inventory_add_json(inv, o, "t", 1, 1, &d), 0);
	json_decref(o);
	diags_free(&d);
}

static long scan(const struct inventory *inv, const char *id)
{
	size_t i;

	for (i = 0; i < inv->n; i++)
		if (!strcmp(inv->c[i].id, id))
			return (long)i;
	return -1;
}

/* The id index: after thousands of additions, removals and moves
 * between two inventories, every lookup says what a scan says. */
START_TEST(test_ids)
{
	struct inventory *a = inventory_new(), *b = inventory_new();
	unsigned i, seed = 7;
	char id[80];

	for (i = 0; i < 5000; i++) {
		add_numbered(a, i);
		seed = seed * 1103515245u + 12345u;
		if (seed % 5 == 0 && a->n > 1)
			inventory_remove(a, (seed >> 8) % a->n);
		else if (seed % 5 == 1 && a->n > 1)
			inventory_move(b, a, (seed >> 8) % a->n);
		else if (seed % 5 == 2 && b->n > 1)
			inventory_move(a, b, (seed >> 8) % b->n);
	}
	ck_assert_uint_gt(a->n, 1000);
	ck_assert_uint_gt(b->n, 50);
	for (i = 0; i < 5100; i++) {
		snprintf(id, sizeof(id), "%064x", i);
		ck_assert_int_eq(inventory_index(a, id), scan(a, id));
		ck_assert_int_eq(inventory_index(b, id), scan(b, id));
	}
	inventory_free(a);
	inventory_free(b);
}
END_TEST

/* Every prefix of a real file is either a clean error or (the whole file)
 * a success: truncation never crashes or leaks. */
START_TEST(test_truncations)
{
	size_t len, cut;
	char *text = read_text(FIXTURES "/three-tier.json", &len);

	for (cut = 0; cut < len; cut += 97) {
		struct inventory *inv = inventory_new();
		struct diags d = {0};
		int fds[2];

		ck_assert_int_eq(pipe(fds), 0);
		if (fork() == 0) {
			close(fds[0]);
			if (write(fds[1], text, cut) < 0)
				_exit(1);
			_exit(0);
		}
		close(fds[1]);
		ck_assert_int_eq(inventory_load_fd(inv, fds[0], "t", &d),
				 -EINVAL);
		close(fds[0]);
		ck_assert_uint_ge(d.nerrors, 1);
		diags_free(&d);
		inventory_free(inv);
	}
	free(text);
}
END_TEST

START_TEST(test_skips_stopped)
{
	const char *j =
	    "[{\"Id\": \"a1\", \"Name\": \"/a\", \"State\": "
	    "{\"Running\": false}, \"NetworkSettings\": "
	    "{\"Networks\": {\"n\": {\"IPAddress\": \"10.0.0.2\"}}}},"
	    "{\"Id\": \"b1\", \"Name\": \"/b\", \"NetworkSettings\": "
	    "{\"Networks\": {\"host\": {\"IPAddress\": \"\"}}}}]";
	struct inventory *inv = inventory_new();
	struct diags d = {0};
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], j, strlen(j)), (ssize_t)strlen(j));
	close(fds[1]);
	ck_assert_int_eq(inventory_load_fd(inv, fds[0], "t", &d), 0);
	close(fds[0]);
	ck_assert_uint_eq(inv->n, 0);
	inventory_free(inv);
}
END_TEST

/* A container that joins one more network keeps the others it holds,
 * and the joining network's entry is the new one. */
START_TEST(test_merge_nets)
{
	const char *j =
	    "[{\"Id\": \"a1\", \"Name\": \"/a\", \"NetworkSettings\": "
	    "{\"Networks\": {\"n1\": {\"NetworkID\": \"11\", \"IPAddress\": "
	    "\"10.0.1.2\"}, \"n2\": {\"NetworkID\": \"22\", \"IPAddress\": "
	    "\"10.0.2.2\"}}}},"
	    "{\"Id\": \"a1\", \"Name\": \"/a\", \"NetworkSettings\": "
	    "{\"Networks\": {\"n2\": {\"NetworkID\": \"22\", \"IPAddress\": "
	    "\"10.0.2.9\"}}}}]";
	struct inventory *inv = inventory_new();
	struct diags d = {0};
	const struct inv_container *c;
	char a[64];

	ck_assert_int_eq(inventory_load_mem(inv, j, strlen(j), "t", &d), 0);
	ck_assert_uint_eq(inv->n, 2);
	inventory_merge_nets(&inv->c[1], &inv->c[0]);
	inventory_remove(inv, 0);
	c = &inv->c[0];
	ck_assert_uint_eq(c->nnets, 2);
	ck_assert_str_eq(c->nets[0].name, "n2");
	addr_format(AF_INET, c->nets[0].ip4, a, sizeof(a));
	ck_assert_str_eq(a, "10.0.2.9");
	ck_assert_str_eq(c->nets[1].name, "n1");
	ck_assert_str_eq(c->nets[1].bridge, "br-11");
	addr_format(AF_INET, c->nets[1].ip4, a, sizeof(a));
	ck_assert_str_eq(a, "10.0.1.2");
	inventory_free(inv);
}
END_TEST

Suite *inventory_suite(void)
{
	Suite *s = suite_create("inventory");
	TCase *tc = tcase_create("inventory");

	/* the truncation case forks a writer per cut: seconds, on a busy
	 * machine under the sanitizers */
	tcase_set_timeout(tc, 30);

	tcase_add_test(tc, test_three_tier_fixture);
	tcase_add_test(tc, test_compose_fixture);
	tcase_add_loop_test(tc, test_bad_json, 0,
			    (int)(sizeof(badjson) / sizeof(badjson[0])));
	tcase_add_test(tc, test_truncations);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_skips_stopped);
	tcase_add_test(tc, test_merge_nets);
	suite_add_tcase(s, tc);
	return s;
}
