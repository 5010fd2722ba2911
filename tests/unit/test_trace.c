/* Unit tests for src/trace.c (and ir_eval): every peer kind and port kind,
 * both directions, checked against the policy's intent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bulkhead/trace.h"
#include "unit.h"

struct tcase {
	int example; /* 0 three-tier, 1 all-kinds */
	const char *src, *dst, *port;
	int verdict;
	const char *why; /* substring of the report */
};

static const struct tcase cases[] = {
    /* service to service, on the port and off it */
    {0, "nginx", "backend", "8080/tcp", TRACE_ALLOWED, "three-tier.yaml:20:9"},
    {0, "nginx", "backend", "8081/tcp", TRACE_DENIED, "port-not-allowed"},
    /* what the bridge table binds the source to */
    {0, "nginx", "backend", "8080/tcp", TRACE_ALLOWED,
     "identity: nginx's frames enter by port p0-0, bound to "
     "02:42:ac:1c:05:02"},
    {0, "nginx", "backend", "8080/udp", TRACE_DENIED, "port-not-allowed"},
    {0, "nginx", "db", "5432/tcp", TRACE_DENIED, "reason: no-edge"},
    {0, "nginx", "redis", "6379/tcp", TRACE_DENIED, "no-edge"},
    {0, "nginx", "rabbitmq", "5672/tcp", TRACE_DENIED, "no-edge"},
    {0, "backend", "db", "5432/tcp", TRACE_ALLOWED,
     "egress of service backend"},
    {0, "db", "backend", "8080/tcp", TRACE_DENIED, "no-edge"},
    {0, "backend", "redis-1", "6379/tcp", TRACE_ALLOWED,
     "three-tier.yaml:28:9"},
    /* ingress form */
    {0, "backend", "rabbitmq", "15672/tcp", TRACE_ALLOWED,
     "ingress of service rabbitmq"},
    /* by IP, IPv6 */
    {0, "fd00:28:5::2", "fd00:28:5::3", "8080/tcp", TRACE_ALLOWED,
     "nginx_peer6"},
    {0, "fd00:28:5::2", "fd00:28:5::4", "5432/tcp", TRACE_DENIED, "no-edge"},
    /* cidr (v4, v6) and world */
    {0, "backend", "203.0.113.9", "443/tcp", TRACE_ALLOWED, "backend_out4"},
    {0, "backend", "2001:db8::1", "443/tcp", TRACE_ALLOWED, "backend_out6"},
    {0, "backend", "203.0.113.9", "80/tcp", TRACE_DENIED, "port-not-allowed"},
    {0, "backend", "198.51.100.1", "443/tcp", TRACE_DENIED, "no-edge"},
    {0, "nginx", "203.0.113.9", "443/tcp", TRACE_DENIED, "no-edge"},
    {0, "198.51.100.7", "nginx", "443/tcp", TRACE_ALLOWED, "in_nginx"},
    {0, "198.51.100.7", "backend", "8080/tcp", TRACE_DENIED, "no-edge"},
    /* host */
    {0, "backend", "host", "53/udp", TRACE_ALLOWED, "host_backend"},
    {0, "backend", "host", "22/tcp", TRACE_DENIED, "port-not-allowed"},
    {0, "nginx", "host", "53/udp", TRACE_DENIED, "no-edge"},
    /* unmatched container, deny mode */
    {0, "stray", "db", "5432/tcp", TRACE_DENIED, "unmatched-container"},
    {0, "backend", "stray", "80/tcp", TRACE_DENIED, "unmatched-container"},
    /* all-kinds: audit mode, unmatched allow, fqdn, icmp, any, self */
    {1, "web-1", "shop_api_1", "12345/udp", TRACE_ALLOWED,
     "ingress of service api"},
    {1, "shop_api_1", "shop_api_2", "7946/udp", TRACE_ALLOWED,
     "egress of service api"},
    {1, "shop_api_1", "pg", "5437/tcp", TRACE_ALLOWED, "5432-5440"},
    {1, "shop_api_1", "pg", "5441/tcp", TRACE_DENIED, "would-deny"},
    {1, "shop_api_1", "203.0.113.5", "443/tcp", TRACE_ALLOWED, "api_"},
    {1, "shop_api_1", "8.8.8.8", "icmp", TRACE_ALLOWED, "icmp"},
    {1, "shop_api_1", "2001:4860::1", "icmpv6", TRACE_ALLOWED, "ipv6-icmp"},
    {1, "shop_api_1", "203.0.113.53", "53/udp", TRACE_ALLOWED,
     "203.0.113.0/24"},
    {1, "shop_api_1", "toolbox", "443/tcp", TRACE_ALLOWED,
     "egress of service api"},
    {1, "toolbox", "pg", "5432/tcp", TRACE_DENIED, "would-deny"},
    {1, "toolbox", "web-1", "80/tcp", TRACE_DENIED, "would-deny"},
    {1, "toolbox", "shop_api_1", "80/tcp", TRACE_ALLOWED,
     "ingress of service api"},
    {1, "toolbox", "203.0.113.1", "25/tcp", TRACE_ALLOWED, "not filtered"},
    {1, "198.51.100.3", "shop_api_1", "22/tcp", TRACE_ALLOWED, "api_in4"},
    {1, "2001:db8:1::7", "shop_api_1", "22/tcp", TRACE_ALLOWED, "api_in6"},
    {1, "shop_api_1", "host", "53/udp", TRACE_ALLOWED, "api_host"},
    {1, "web", "pg", "5432/tcp", TRACE_DENIED, "would-deny"},
    {1, "elsewhere", "toolbox", "80/tcp", TRACE_ALLOWED, "not filtered"},
};

static const char *const pol[] = {"policies/three-tier.yaml",
				  FIXTURES "/policy-all-kinds.yaml"};
static const char *const invs[] = {FIXTURES "/three-tier.json",
				   FIXTURES "/all-kinds.json"};

/* A compiled example: policy, inventory, compiler and ruleset. */
struct world {
	struct policy *p;
	struct inventory *inv;
	struct compiler *cc;
	struct ir_ruleset *rs;
	struct diags d;
	struct strbuf b;
};

static void world_up(struct world *w, int example)
{
	static const struct compile_fqdn fq[] = {
	    {"api.example.com", AF_INET, 0xcb007105, 0},
	};
	struct compile_opts o = {.fqdn = fq, .nfqdn = 1};

	memset(w, 0, sizeof(*w));
	w->p = load_policy_fixture(pol[example]);
	w->inv = load_inventory_fixture(invs[example]);
	w->cc = compile_new(w->p, &o);
	w->rs = compile_ruleset(w->cc, w->inv, "inv", &w->d);
	ck_assert_ptr_nonnull(w->rs);
}

static void world_down(struct world *w)
{
	sb_free(&w->b);
	diags_free(&w->d);
	ir_free(w->rs);
	compile_free(w->cc);
	inventory_free(w->inv);
	policy_free(w->p);
}

static int trace(struct world *w, const char *src, const char *dst,
		 const char *port)
{
	w->b.len = 0;
	return trace_run(w->cc, w->p, w->rs, w->inv, src, dst, port, &w->b,
			 &w->d);
}

START_TEST(test_trace)
{
	const struct tcase *t = &cases[_i];
	struct world w;
	int r;

	world_up(&w, t->example);
	r = trace(&w, t->src, t->dst, t->port);
	if (r != t->verdict || !w.b.s || !strstr(w.b.s, t->why)) {
		diags_print(&w.d, stderr);
		ck_abort_msg("case %d %s -> %s %s: got %d, report:\n%s", _i,
			     t->src, t->dst, t->port, r, w.b.s ? w.b.s : "");
	}
	world_down(&w);
}
END_TEST

START_TEST(test_trace_bad_args)
{
	struct world w;

	world_up(&w, 0);
	ck_assert_int_eq(trace(&w, "ghost", "db", "80/tcp"), -EINVAL);
	ck_assert_int_eq(trace(&w, "nginx", "db", "80"), -EINVAL);
	ck_assert_int_eq(trace(&w, "host", "db", "80/tcp"), -EINVAL);
	ck_assert_int_eq(trace(&w, "nginx", "db", "1-2/tcp"), -EINVAL);
	ck_assert_uint_eq(w.d.nerrors, 4);
	world_down(&w);
}
END_TEST

/* The index and trace_decide agree for every pair of addrs, to the host
 * and not, on a few ports. */
static void agree(const struct compiler *cc, const struct policy *p,
		  const struct inventory *inv, const struct trace_index *ix,
		  const u128 *addrs, size_t n)
{
	static const uint16_t ports[] = {5432, 8080, 443, 53, 9999};
	size_t i, j, k, pi;

	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			for (k = 0; k < 2; k++)
				for (pi = 0; pi < 5; pi++) {
					struct trace_decision a, b;
					uint8_t pr = pi == 3 ? 17 : 6;

					trace_decide(cc, p, inv, AF_INET,
						     addrs[i], addrs[j], k, pr,
						     ports[pi], &a);
					trace_decide_ix(cc, p, ix, AF_INET,
							addrs[i], addrs[j], k,
							pr, ports[pi], &b);
					ck_assert_int_eq(a.allowed, b.allowed);
					ck_assert_int_eq(a.edge, b.edge);
					ck_assert_ptr_eq(a.src, b.src);
					ck_assert_ptr_eq(a.dst, b.dst);
					ck_assert_int_eq(a.src_svc, b.src_svc);
					ck_assert(a.reason == b.reason ||
						  !strcmp(a.reason, b.reason));
				}
}

static const char *const examples[][2] = {
    {"policies/three-tier.yaml", FIXTURES "/three-tier.json"},
    {"policies/shop.yaml", FIXTURES "/shop.json"},
    {FIXTURES "/policy-all-kinds.yaml", FIXTURES "/all-kinds.json"},
};

static size_t addrs_of(const struct inventory *inv, u128 *addrs, size_t cap)
{
	size_t i, j, n = 0;

	for (i = 0; i < inv->n; i++)
		for (j = 0; j < inv->c[i].nnets && n + 1 < cap; j++)
			if (inv->c[i].nets[j].has4)
				addrs[n++] = inv->c[i].nets[j].ip4;
	addrs[n++] = 0xcb007109; /* 203.0.113.9 */
	return n;
}

/* The index answers as trace_decide does, for every pair of addresses of
 * every example (and the world and the host), on a few ports. */
START_TEST(test_index_agrees)
{
	size_t e;

	for (e = 0; e < sizeof(examples) / sizeof(examples[0]); e++) {
		struct policy *p = load_policy_fixture(examples[e][0]);
		struct inventory *inv = load_inventory_fixture(examples[e][1]);
		struct compiler *cc = compile_new(p, NULL);
		struct trace_index *ix = trace_index_new(cc, p, inv);
		u128 addrs[256];

		agree(cc, p, inv, ix, addrs, addrs_of(inv, addrs, 256));
		trace_index_free(ix);
		compile_free(cc);
		inventory_free(inv);
		policy_free(p);
	}
}
END_TEST

/* Containers taken out and put back one at a time, as the daemon does
 * (their entries moving in the inventory): the index, kept rather than
 * built anew, still answers as trace_decide does after each step. */
START_TEST(test_index_follows)
{
	size_t e, i;

	for (e = 0; e < sizeof(examples) / sizeof(examples[0]); e++) {
		struct policy *p = load_policy_fixture(examples[e][0]);
		struct inventory *inv = load_inventory_fixture(examples[e][1]);
		struct inventory *gone = inventory_new();
		struct compiler *cc = compile_new(p, NULL);
		struct trace_index *ix = trace_index_new(cc, p, inv);
		u128 addrs[256];
		size_t n = addrs_of(inv, addrs, 256);

		/* out, from the front (the last entry moves into its place) */
		while (inv->n > 1) {
			trace_index_del(ix, &inv->c[0]);
			inventory_move(gone, inv, 0);
			agree(cc, p, inv, ix, addrs, n);
		}
		/* back, in another order */
		for (i = gone->n; i-- > 0;) {
			inventory_move(inv, gone, i);
			ck_assert(trace_index_add(ix, &inv->c[inv->n - 1]));
			agree(cc, p, inv, ix, addrs, n);
		}
		trace_index_free(ix);
		compile_free(cc);
		inventory_free(gone);
		inventory_free(inv);
		policy_free(p);
	}
}
END_TEST

/* A container's IPv6 link-local address (what its router and neighbour
 * solicitations come from) names it, with and without the index; the
 * index follows the address as binding learns it. */
START_TEST(test_link_local)
{
	struct policy *p = load_policy_fixture("policies/three-tier.yaml");
	struct inventory *inv =
	    load_inventory_fixture(FIXTURES "/three-tier.json");
	struct compiler *cc = compile_new(p, NULL);
	struct trace_index *ix = trace_index_new(cc, p, inv);
	struct inv_container *c =
	    (struct inv_container *)inventory_find(inv, "nginx");
	struct trace_decision a, b;
	u128 ll, allr;
	int fam;

	ck_assert_ptr_nonnull(c);
	ck_assert(c->nets[0].has_ll6); /* bound, as the fixtures are */
	ll = c->nets[0].ll6;
	ck_assert_int_eq(addr_parse("ff02::2", &fam, &allr), 0);
	trace_decide(cc, p, inv, AF_INET6, ll, allr, true, 58, 0, &a);
	trace_decide_ix(cc, p, ix, AF_INET6, ll, allr, true, 58, 0, &b);
	ck_assert_ptr_eq(a.src, c);
	ck_assert_ptr_eq(b.src, c);
	ck_assert_int_eq(b.src_svc, policy_service_index(p, "nginx"));
	/* whatever the policy says: the kernel knows it by its address */
	ck_assert(!a.allowed);
	ck_assert(!b.allowed);
	ck_assert_str_eq(a.reason, "link-local");
	ck_assert_str_eq(b.reason, "link-local");
	trace_decide_ix(cc, p, ix, AF_INET6, ll, allr, false, 58, 0, &b);
	ck_assert_str_eq(b.reason, "link-local");
	/* not bound (yet): nobody's */
	trace_index_del(ix, c);
	c->nets[0].has_ll6 = false;
	ck_assert(trace_index_add(ix, c));
	trace_decide(cc, p, inv, AF_INET6, ll, allr, true, 58, 0, &a);
	trace_decide_ix(cc, p, ix, AF_INET6, ll, allr, true, 58, 0, &b);
	ck_assert_ptr_null(a.src);
	ck_assert_ptr_null(b.src);
	/* bound: its again */
	trace_index_del(ix, c);
	c->nets[0].has_ll6 = true;
	ck_assert(trace_index_add(ix, c));
	trace_decide_ix(cc, p, ix, AF_INET6, ll, allr, true, 58, 0, &b);
	ck_assert_ptr_eq(b.src, c);
	trace_index_free(ix);
	compile_free(cc);
	inventory_free(inv);
	policy_free(p);
}
END_TEST

/* Many addresses in one table (their runs colliding), taken out in a
 * scattered order: each still found, or not, as the inventory says. */
START_TEST(test_index_many)
{
	struct policy *p = load_policy_fixture("policies/three-tier.yaml");
	struct inventory *inv = inventory_new(), *gone = inventory_new();
	struct compiler *cc = compile_new(p, NULL);
	struct trace_index *ix;
	u128 addrs[601];
	size_t i, k, n = 0;
	unsigned seed = 3;

	for (i = 0; i < 600; i++) {
		struct diags d = {0};
		char id[80], name[32], ip[32];
		json_t *o;

		snprintf(id, sizeof(id), "%064zx", i + 1);
		snprintf(name, sizeof(name), "/%s%zu", i % 2 ? "nginx" : "x",
			 i);
		snprintf(ip, sizeof(ip), "10.9.%zu.%zu", i >> 8, i & 255);
		o = json_pack("{s:s, s:s, s:{s:b}, s:{s:s}, "
			      "s:{s:{s:{s:s, s:i}}}}",
			      "Id", id, "Name", name, "State", "Running", 1,
			      "Config", "Image", "x", "NetworkSettings",
			      "Networks", "appnet", "IPAddress", ip,
			      "IPPrefixLen", 16);
		ck_assert_int_eq(inventory_add_json(inv, o, "t", 1, 1, &d), 0);
		json_decref(o);
		diags_free(&d);
		addrs[n++] = inv->c[i].nets[0].ip4;
	}
	ix = trace_index_new(cc, p, inv);
	for (k = 0; k < 20; k++) {
		for (i = 0; i < 25 && inv->n; i++) {
			size_t at;

			seed = seed * 1103515245u + 12345u;
			at = (seed >> 8) % inv->n;
			trace_index_del(ix, &inv->c[at]);
			inventory_move(gone, inv, at);
		}
		for (i = 0; i < n; i++) {
			struct trace_decision a, b;

			trace_decide(cc, p, inv, AF_INET, addrs[i], 0xcb007109,
				     false, 6, 443, &a);
			trace_decide_ix(cc, p, ix, AF_INET, addrs[i],
					0xcb007109, false, 6, 443, &b);
			ck_assert_ptr_eq(a.src, b.src);
			ck_assert_int_eq(a.allowed, b.allowed);
		}
	}
	trace_index_free(ix);
	compile_free(cc);
	inventory_free(gone);
	inventory_free(inv);
	policy_free(p);
}
END_TEST

Suite *trace_suite(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("trace");

	tcase_add_loop_test(tc, test_trace, 0,
			    (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_trace_bad_args);
	tcase_add_test(tc, test_index_agrees);
	tcase_add_test(tc, test_index_follows);
	tcase_add_test(tc, test_index_many);
	tcase_add_test(tc, test_link_local);
	suite_add_tcase(s, tc);
	return s;
}
