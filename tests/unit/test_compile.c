/* Unit tests for src/compile.c and src/render.c: golden plans for the
 * examples, determinism, disjoint interval elements, and deltas that
 * equal the difference of two full compiles. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bulkhead/render.h"
#include "unit.h"

static const struct compile_fqdn fq[] = {
    {"api.example.com", AF_INET, 0xcb007105, 0}, /* 203.0.113.5 */
};

struct example {
	const char *policy, *inventory, *golden;
};

static const struct example examples[] = {
    {"policies/three-tier.yaml", FIXTURES "/three-tier.json",
     FIXTURES "/golden/three-tier.nft"},
    {"policies/shop.yaml", FIXTURES "/shop.json", FIXTURES "/golden/shop.nft"},
    {FIXTURES "/policy-all-kinds.yaml", FIXTURES "/all-kinds.json",
     FIXTURES "/golden/all-kinds.nft"},
};

static struct ir_ruleset *compile(const struct policy *p,
				  const struct inventory *inv,
				  struct compiler **ccp)
{
	struct compile_opts o = {.fqdn = fq, .nfqdn = 1};
	struct compiler *cc = compile_new(p, &o);
	struct diags d = {0};
	struct ir_ruleset *rs = compile_ruleset(cc, inv, "inv", &d);

	diags_free(&d);
	if (ccp)
		*ccp = cc;
	else
		compile_free(cc);
	return rs;
}

static char *plan_text(const struct example *ex)
{
	struct policy *p = load_policy_fixture(ex->policy);
	struct inventory *inv = load_inventory_fixture(ex->inventory);
	struct ir_ruleset *rs = compile(p, inv, NULL);
	struct strbuf b = {0};

	ck_assert_ptr_nonnull(rs);
	render_nft(rs, NULL, &b);
	ir_free(rs);
	inventory_free(inv);
	policy_free(p);
	return b.s;
}

START_TEST(test_golden)
{
	const struct example *ex = &examples[_i];
	char *got = plan_text(ex), *want;
	FILE *f;

	if (getenv("UPDATE_GOLDEN")) {
		f = fopen(ex->golden, "w");
		ck_assert_ptr_nonnull(f);
		fputs(got, f);
		fclose(f);
	}
	want = read_text(ex->golden, NULL);
	ck_assert_msg(!strcmp(got, want),
		      "%s differs from %s (UPDATE_GOLDEN=1 rewrites it)",
		      ex->policy, ex->golden);
	free(got);
	free(want);
}
END_TEST

START_TEST(test_deterministic)
{
	char *a = plan_text(&examples[_i]), *b = plan_text(&examples[_i]);

	ck_assert_str_eq(a, b);
	free(a);
	free(b);
}
END_TEST

/* No two elements of an interval set may overlap: the kernel rejects
 * some overlaps and silently shadows others. */
static void assert_disjoint(const struct ir_ruleset *rs)
{
	size_t s, i, j;
	int k;

	for (s = 0; s < rs->nsets; s++) {
		const struct ir_set *st = &rs->sets[s];

		for (i = 0; i < st->n; i++)
			for (j = i + 1; j < st->n; j++) {
				for (k = 0; k < st->nkey; k++)
					if (st->e[i].hi[k] < st->e[j].lo[k] ||
					    st->e[j].hi[k] < st->e[i].lo[k])
						break;
				ck_assert_msg(k < st->nkey,
					      "set %s: elements %zu and %zu "
					      "overlap",
					      st->name, i, j);
			}
	}
}

START_TEST(test_disjoint)
{
	const struct example *ex = &examples[_i];
	struct policy *p = load_policy_fixture(ex->policy);
	struct inventory *inv = load_inventory_fixture(ex->inventory);
	struct ir_ruleset *rs = compile(p, inv, NULL);

	assert_disjoint(rs);
	ir_free(rs);
	inventory_free(inv);
	policy_free(p);
}
END_TEST

static const struct ir_set *set_named(const struct ir_ruleset *rs,
				      const char *name)
{
	const struct ir_set *s = ir_set_find(rs, name);

	ck_assert_msg(s != NULL, "no set %s", name);
	return s;
}

static void assert_elems(const struct ir_ruleset *rs, const char *set,
			 const char *const *want, size_t n)
{
	const struct ir_set *s = set_named(rs, set);
	struct strbuf b = {0};
	size_t i;

	ck_assert_msg(s->n == n, "set %s has %zu elements, want %zu", set, s->n,
		      n);
	for (i = 0; i < n; i++) {
		b.len = 0;
		render_elem(s, &s->e[i], &b);
		ck_assert_str_eq(b.s, want[i]);
	}
	sb_free(&b);
}

/* DNS answers carry their timeouts into the elements (adjacent
 * addresses merged keep the longest), and compile_fqdn_sets gives the
 * whole content of the sets one name fills, for the daemon's refill. */
START_TEST(test_fqdn_sets)
{
	static const struct compile_fqdn ans[] = {
	    {"api.example.com", AF_INET, 0xcb00710a, 40000},
	    {"api.example.com", AF_INET, 0xcb00710b, 40000},
	    {"API.EXAMPLE.COM", AF_INET6, 1, 75000},
	    {"other.example.com", AF_INET, 0x0a000001, 1000},
	};
	static const char *const v4[] = {
	    "203.0.113.10/31 . tcp . 443 timeout 40s"};
	static const char *const v6[] = {"::1 . tcp . 443 timeout 75s"};
	struct policy *p = load_policy_fixture(examples[2].policy);
	struct inventory *inv = load_inventory_fixture(examples[2].inventory);
	struct compile_opts o = {.fqdn = ans, .nfqdn = 4};
	struct compiler *cc = compile_new(p, &o);
	struct diags d = {0};
	struct ir_ruleset *rs = compile_ruleset(cc, inv, "inv", &d);
	struct ir_delta delta = {0};
	struct strbuf b = {0};
	size_t *sets, n, i;

	assert_elems(rs, "api_fqdn4", v4, 1);
	assert_elems(rs, "api_fqdn6", v6, 1);
	ck_assert(set_named(rs, "api_fqdn4")->flags & IRS_TIMEOUT);
	n = compile_fqdn_sets(cc, "Api.Example.Com", &delta, &sets);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(rs->sets[sets[0]].name, "api_fqdn4");
	ck_assert_str_eq(rs->sets[sets[1]].name, "api_fqdn6");
	ck_assert_uint_eq(delta.n, 2);
	for (i = 0; i < delta.n; i++) {
		ck_assert(delta.v[i].add);
		b.len = 0;
		render_elem(&rs->sets[delta.v[i].set], &delta.v[i].e, &b);
		ck_assert_str_eq(b.s, i ? v6[0] : v4[0]);
	}
	free(sets);
	ir_delta_free(&delta);
	/* a name no edge reaches fills nothing */
	ck_assert_uint_eq(
	    compile_fqdn_sets(cc, "other.example.com", &delta, &sets), 0);
	free(sets);
	sb_free(&b);
	diags_free(&d);
	ir_free(rs);
	compile_free(cc);
	inventory_free(inv);
	policy_free(p);
}
END_TEST

/* Port lists merge, protocols split per family, CIDRs and world, FQDN
 * answers, host ports, ingress sources, and unmatched containers. */
START_TEST(test_all_kinds_elements)
{
	struct policy *p = load_policy_fixture(examples[2].policy);
	struct inventory *inv = load_inventory_fixture(examples[2].inventory);
	struct ir_ruleset *rs = compile(p, inv, NULL);
	/* api's destinations: itself (7946, both protocols), db with
	 * three port entries and an ingress merged into one range, and the
	 * unmanaged toolbox as "world" (443/tcp and icmp, not icmpv6);
	 * exact tuples in the hash set; ranges to the toolbox in the
	 * interval set, ranges to db as a rule over db's members */
	static const char *const api_peer4[] = {
	    "\"br-aaaaaaaaaaaa\" . 10.1.0.2 . tcp . 7946",
	    "\"br-aaaaaaaaaaaa\" . 10.1.0.2 . udp . 7946",
	    "\"br-aaaaaaaaaaaa\" . 10.1.0.3 . tcp . 7946",
	    "\"br-aaaaaaaaaaaa\" . 10.1.0.3 . udp . 7946",
	    "\"br-aaaaaaaaaaaa\" . 10.1.0.9 . tcp . 443",
	    "\"br-bbbbbbbbbbbb\" . 10.2.0.2 . tcp . 7946",
	    "\"br-bbbbbbbbbbbb\" . 10.2.0.2 . udp . 7946",
	};
	static const char *const api_peer4_ranges[] = {
	    "\"br-aaaaaaaaaaaa\" . 10.1.0.9 . icmp . 0-65535",
	};
	static const char *const db_members4[] = {
	    "\"br-bbbbbbbbbbbb\" . 10.2.0.3",
	};
	/* web may reach api on anything (ingress without ports): a rule
	 * over api's members */
	static const char *const api_members4[] = {
	    "\"br-aaaaaaaaaaaa\" . 10.1.0.2",
	    "\"br-aaaaaaaaaaaa\" . 10.1.0.3",
	    "\"br-bbbbbbbbbbbb\" . 10.2.0.2",
	};
	static const char *const api_out4[] = {
	    "0.0.0.0/0 . icmp . 0-65535",
	    "0.0.0.0/0 . tcp . 443",
	    "203.0.113.0/24 . udp . 53",
	};
	static const char *const api_out6[] = {
	    "::/0 . tcp . 443",
	    "::/0 . ipv6-icmp . 0-65535",
	};
	static const char *const api_fqdn4[] = {"203.0.113.5 . tcp . 443"};
	static const char *const api_host[] = {"udp . 53"};
	static const char *const api_in4[] = {
	    "0.0.0.0/0 . tcp . 80",
	    "0.0.0.0/0 . tcp . 8000-8100",
	    "198.51.100.0/24 . tcp . 22",
	};
	/* the dispatch: members sets, no verdict maps */
	static const char *const web_members4[] = {
	    "\"br-aaaaaaaaaaaa\" . 10.1.0.4"};
	static const char *const unmanaged4[] = {
	    "\"br-aaaaaaaaaaaa\" . 10.1.0.9"};
	const struct ir_chain *from;
	struct strbuf b = {0};
	size_t i;
	static const char *const bridges[] = {"\"br-aaaaaaaaaaaa\"",
					      "\"br-bbbbbbbbbbbb\""};

	ck_assert_ptr_nonnull(rs);
	/* sets the policy can never fill do not exist */
	ck_assert_ptr_null(ir_set_find(rs, "db_peer4"));
	ck_assert_ptr_null(ir_set_find(rs, "db_peer4_ranges"));
	ck_assert_ptr_null(ir_set_find(rs, "web_peer4"));
	ck_assert_ptr_null(ir_set_find(rs, "db_host"));
	assert_elems(rs, "api_peer4", api_peer4, 7);
	assert_elems(rs, "api_peer4_ranges", api_peer4_ranges, 1);
	assert_elems(rs, "db_members4", db_members4, 1);
	assert_elems(rs, "api_members4", api_members4, 3);
	ck_assert_ptr_null(ir_set_find(rs, "web_peer4_ranges"));
	assert_elems(rs, "api_out4", api_out4, 3);
	assert_elems(rs, "api_out6", api_out6, 2);
	assert_elems(rs, "api_fqdn4", api_fqdn4, 1);
	assert_elems(rs, "api_host", api_host, 1);
	assert_elems(rs, "api_in4", api_in4, 3);
	assert_elems(rs, "web_members4", web_members4, 1);
	assert_elems(rs, "unmanaged4", unmanaged4, 1);
	assert_elems(rs, "bridges", bridges, 2);
	for (i = 0; i < rs->nsets; i++)
		ck_assert_msg(!(rs->sets[i].flags & IRS_MAP), "map %s",
			      rs->sets[i].name);
	/* db has no egress: no dispatch rule, its traffic falls through
	 * to deny */
	from = ir_chain_find(rs, "from_container");
	ck_assert_ptr_nonnull(from);
	for (i = 0; i < from->n; i++) {
		render_rule(&from->r[i], &b);
		sb_putc(&b, '\n');
	}
	ck_assert_str_eq(b.s, "iifname . ip saddr @api_members4 jump svc_api\n"
			      "iifname . ip saddr @web_members4 jump svc_web\n"
			      "iifname . ip saddr @unmanaged4 jump unmanaged\n"
			      "iifname . ip6 saddr @api_members6 jump svc_api\n"
			      "iifname . ip6 saddr @web_members6 jump svc_web\n"
			      "iifname . ip6 saddr @unmanaged6 jump unmanaged\n"
			      "jump deny\n");
	sb_free(&b);
	ir_free(rs);
	inventory_free(inv);
	policy_free(p);
}
END_TEST

START_TEST(test_conflict)
{
	const char *y = "version: 1\nservices:\n"
			"  a:\n    match: {name: \"web*\"}\n"
			"  b:\n    match: {image: \"nginx:*\"}\n";
	struct diags d = {0};
	struct policy *p = policy_parse("c.yaml", y, strlen(y), &d);
	struct inventory *inv = load_inventory_fixture(examples[2].inventory);
	struct compiler *cc = compile_new(p, NULL);

	ck_assert_ptr_null(compile_ruleset(cc, inv, "inv", &d));
	ck_assert_uint_eq(d.nerrors, 1);
	ck_assert_str_eq(d.v[0].msg,
			 "container 'web-1' matches both service 'a' (line 3) "
			 "and service 'b' (line 5)");
	ck_assert_uint_eq(d.v[0].line, 5);
	diags_free(&d);
	compile_free(cc);
	inventory_free(inv);
	policy_free(p);
}
END_TEST

/* A port published on the host that the service opens to no one outside
 * is reported (the shop's nginx publishes 80/tcp on 127.0.0.1:8080);
 * opened by world or by a CIDR, it is not; exposed-only ports never are. */
START_TEST(test_published)
{
	static const struct {
		const char *ingress;
		size_t warnings;
	} cases[] = {
	    {"", 1},
	    {"    ingress: [ { from: world, ports: [80/tcp] } ]\n", 0},
	    {"    ingress: [ { from: world, ports: [443/tcp] } ]\n", 1},
	    {"    ingress: [ { from: world, ports: [80/udp] } ]\n", 1},
	    {"    ingress: [ { from: { cidr: [192.0.2.0/24] } } ]\n", 0},
	    {"    ingress: [ { from: world, ports: [70-90/tcp] } ]\n", 0},
	};
	struct inventory *inv = load_inventory_fixture(FIXTURES "/shop.json");
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *y = xasprintf("version: 1\nservices:\n  nginx:\n"
				    "    match: { compose_service: nginx }\n%s"
				    "  rest:\n    match: { compose_service: "
				    "[backend, db, redis, rabbitmq] }\n",
				    cases[i].ingress);
		struct diags d = {0};
		struct policy *p = policy_parse("p.yaml", y, strlen(y), &d);
		struct compiler *cc;

		ck_assert_ptr_nonnull(p);
		cc = compile_new(p, NULL);
		compile_check(cc, inv, "inv", &d);
		ck_assert_msg(d.n == cases[i].warnings, "case %zu: %zu diags",
			      i, d.n);
		if (d.n) {
			ck_assert_str_eq(
			    d.v[0].msg,
			    "container 'shop_nginx_1' publishes 80/tcp on the "
			    "host (127.0.0.1:8080), but service 'nginx' opens "
			    "it to no one outside (no ingress from world or a "
			    "CIDR on that port): what comes in is dropped");
			ck_assert_uint_eq(d.v[0].level, DIAG_WARNING);
			ck_assert_uint_eq(d.v[0].line, 3);
		}
		diags_free(&d);
		compile_free(cc);
		policy_free(p);
		free(y);
	}
	inventory_free(inv);
}
END_TEST

/* Docker lists a port published on every address twice (0.0.0.0 and
 * ::): one warning. */
START_TEST(test_published_once)
{
	const char *j =
	    "[{\"Id\": \"d1\", \"Name\": \"/db\", \"NetworkSettings\": "
	    "{\"Networks\": {\"appnet\": {\"NetworkID\": \"11\", "
	    "\"IPAddress\": \"10.0.1.2\"}}, \"Ports\": {\"5432/tcp\": "
	    "[{\"HostIp\": \"0.0.0.0\", \"HostPort\": \"15432\"}, "
	    "{\"HostIp\": \"::\", \"HostPort\": \"15432\"}], "
	    "\"9000/tcp\": null}}}]";
	const char *y =
	    "version: 1\nservices:\n  db:\n    match: { name: db }\n";
	struct diags d = {0};
	struct inventory *inv = inventory_new();
	struct policy *p = policy_parse("p.yaml", y, strlen(y), &d);
	struct compiler *cc = compile_new(p, NULL);

	ck_assert_int_eq(inventory_load_mem(inv, j, strlen(j), "inv", &d), 0);
	ck_assert_uint_eq(inv->c[0].nports, 2); /* 9000: exposed only */
	compile_check(cc, inv, "inv", &d);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_ptr_nonnull(strstr(d.v[0].msg, "publishes 5432/tcp on the "
						 "host (0.0.0.0:15432)"));
	diags_free(&d);
	compile_free(cc);
	policy_free(p);
	inventory_free(inv);
}
END_TEST

/* Sorted "set|element" lines of a ruleset, for comparing states. */
static void state_lines(const struct ir_ruleset *rs, struct strbuf *out)
{
	struct strbuf b = {0};
	size_t s, i;

	for (s = 0; s < rs->nsets; s++)
		for (i = 0; i < rs->sets[s].n; i++) {
			b.len = 0;
			render_elem(&rs->sets[s], &rs->sets[s].e[i], &b);
			sb_printf(out, "%s|%s\n", rs->sets[s].name, b.s);
		}
	sb_free(&b);
}

static int lines_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The state after applying delta to full (a set of lines). */
static char *apply_delta(const struct ir_ruleset *full,
			 const struct ir_delta *dl)
{
	struct strbuf b = {0}, e = {0}, out = {0};
	char **lines = NULL, *line, *save = NULL;
	size_t n = 0, cap = 0, i, j;

	state_lines(full, &b);
	for (line = strtok_r(b.s, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		*PUSH(lines, n, cap) = xstrdup(line);
	for (i = 0; i < dl->n; i++) {
		const struct ir_change *c = &dl->v[i];
		const struct ir_set *s = &full->sets[c->set];

		ck_assert_str_eq(s->name, c->set_name);
		e.len = 0;
		sb_printf(&e, "%s|", s->name);
		render_elem(s, &c->e, &e);
		for (j = 0; j < n; j++)
			if (lines[j] && !strcmp(lines[j], e.s))
				break;
		if (c->add) {
			if (j == n)
				*PUSH(lines, n, cap) = xstrdup(e.s);
		} else {
			ck_assert_msg(j < n, "delta deletes missing %s", e.s);
			free(lines[j]);
			lines[j] = NULL;
		}
	}
	for (i = j = 0; i < n; i++)
		if (lines[i])
			lines[j++] = lines[i];
	qsort(lines, j, sizeof(*lines), lines_cmp);
	for (i = 0; i < j; i++) {
		sb_printf(&out, "%s\n", lines[i]);
		free(lines[i]);
	}
	free(lines);
	sb_free(&b);
	sb_free(&e);
	return out.s ? out.s : xstrdup("");
}

static char *sorted_state(const struct ir_ruleset *rs)
{
	struct ir_delta none = {0};

	return apply_delta(rs, &none);
}

/* For each container: state(inv without c) + delta(c arrives) equals
 * state(inv), and state(inv) + delta(c leaves) equals state(without c). */
START_TEST(test_delta_matches_full)
{
	const struct example *ex = &examples[_i];
	struct policy *p = load_policy_fixture(ex->policy);
	struct inventory *inv = load_inventory_fixture(ex->inventory);
	struct compiler *cc;
	struct ir_ruleset *full = compile(p, inv, &cc);
	char *want_full = sorted_state(full);
	size_t k;

	for (k = 0; k < inv->n; k++) {
		struct inventory less = *inv;
		struct inv_container *v = xmalloc(sizeof(*v) * inv->n);
		struct ir_ruleset *part;
		struct ir_delta dl = {0};
		char *got, *want_part;

		memcpy(v, inv->c, sizeof(*v) * k);
		memcpy(v + k, inv->c + k + 1, sizeof(*v) * (inv->n - k - 1));
		less.c = v;
		less.n = inv->n - 1;
		part = compile(p, &less, NULL);
		want_part = sorted_state(part);

		ck_assert_int_eq(compile_delta(cc, inv, k, true, &dl), 0);
		got = apply_delta(part, &dl);
		ck_assert_msg(!strcmp(got, want_full),
			      "%s: adding %s:\n%s\nwant:\n%s", ex->policy,
			      inv->c[k].name, got, want_full);
		free(got);
		/* and the daemon's own application of it (ir_delta_apply) */
		ir_delta_apply(part, &dl);
		got = sorted_state(part);
		ck_assert_msg(!strcmp(got, want_full), "%s: applying %s",
			      ex->policy, inv->c[k].name);
		free(got);
		ir_delta_free(&dl);

		ck_assert_int_eq(compile_delta(cc, inv, k, false, &dl), 0);
		got = apply_delta(full, &dl);
		ck_assert_msg(!strcmp(got, want_part), "%s: removing %s",
			      ex->policy, inv->c[k].name);
		free(got);
		{
			struct ir_ruleset *again = compile(p, inv, NULL);

			ir_delta_apply(again, &dl);
			got = sorted_state(again);
			ck_assert_msg(!strcmp(got, want_part),
				      "%s: applying %s's removal", ex->policy,
				      inv->c[k].name);
			free(got);
			ir_free(again);
		}
		ir_delta_free(&dl);
		free(want_part);
		ir_free(part);

		/* alone: the first container on a network brings its bridge
		 * (not the bridge's unbound ports: a delta knows the ports
		 * of the container it places, the next full sync the rest) */
		less.c = &inv->c[k];
		less.n = 0;
		less.nbports = 0;
		part = compile(p, &less, NULL);
		less.n = 1;
		ck_assert_int_eq(compile_delta(cc, &less, 0, true, &dl), 0);
		got = apply_delta(part, &dl);
		ir_free(part);
		part = compile(p, &less, NULL);
		want_part = sorted_state(part);
		ck_assert_msg(!strcmp(got, want_part),
			      "%s: %s alone:\n%s\nwant:\n%s", ex->policy,
			      inv->c[k].name, got, want_part);
		free(got);
		free(want_part);
		ir_delta_free(&dl);
		ir_free(part);
		free(v);
	}
	free(want_full);
	ir_free(full);
	compile_free(cc);
	inventory_free(inv);
	policy_free(p);
}
END_TEST

START_TEST(test_json_format)
{
	struct policy *p = load_policy_fixture(examples[0].policy);
	struct inventory *inv = load_inventory_fixture(examples[0].inventory);
	struct ir_ruleset *rs = compile(p, inv, NULL);
	struct strbuf b = {0};
	json_error_t err;
	json_t *j;

	render_json(rs, &b);
	j = json_loads(b.s, 0, &err);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "table")),
			 "bulkhead");
	ck_assert_uint_eq(json_array_size(json_object_get(j, "sets")),
			  rs->nsets);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "chains")),
			  rs->nchains);
	json_decref(j);
	sb_free(&b);
	ir_free(rs);
	inventory_free(inv);
	policy_free(p);
}
END_TEST

Suite *compile_suite(void)
{
	Suite *s = suite_create("compile");
	TCase *tc = tcase_create("compile");
	int n = (int)(sizeof(examples) / sizeof(examples[0]));

	tcase_add_loop_test(tc, test_golden, 0, n);
	tcase_add_loop_test(tc, test_deterministic, 0, n);
	tcase_add_loop_test(tc, test_disjoint, 0, n);
	tcase_add_loop_test(tc, test_delta_matches_full, 0, n);
	tcase_add_test(tc, test_all_kinds_elements);
	tcase_add_test(tc, test_conflict);
	tcase_add_test(tc, test_published);
	tcase_add_test(tc, test_published_once);
	tcase_add_test(tc, test_json_format);
	tcase_add_test(tc, test_fqdn_sets);
	suite_add_tcase(s, tc);
	return s;
}
