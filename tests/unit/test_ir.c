/* Unit tests for the IR comparison in src/ir.c: what ir_diff reports
 * between a wanted ruleset and one read back, and that its element
 * changes, applied, make the two equal. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "unit.h"

static struct ir_ruleset *three_tier(void)
{
	return compile_fixture("policies/three-tier.yaml",
			       FIXTURES "/three-tier.json");
}

/* The three-tier ruleset with a verdict map "vm4" of two jumps added
 * (bulkhead's layout has none, but the IR, the diff and the kernel
 * module handle maps: a table read back may hold one). */
static struct ir_ruleset *with_map(void)
{
	static const enum ir_type key[] = {IRT_IFNAME, IRT_IPV4};
	struct ir_ruleset *rs = three_tier();
	struct ir_set *m = ir_set_add(rs, "vm4", IRS_MAP, 2, key);
	int i;

	for (i = 0; i < 2; i++) {
		struct ir_elem *e = ir_elem_add(m);

		e->lo[0] = e->hi[0] = ir_ifname("br-0");
		e->lo[1] = e->hi[1] = 0x0a000001 + (u128)i;
		e->verdict = IRV_JUMP;
		e->chain = ir_intern(rs, i ? "svc_backend" : "svc_nginx");
	}
	ir_normalize(rs);
	return rs;
}

/* Applies the element changes to have, the way the kernel would. */
static void apply(struct ir_ruleset *have, const struct ir_diff *d)
{
	size_t i, j;

	for (i = 0; i < d->elems.n; i++) {
		const struct ir_change *c = &d->elems.v[i];
		struct ir_set *s = ir_set_find(have, c->set_name);

		ck_assert_ptr_nonnull(s);
		for (j = 0; j < s->n; j++)
			if (ir_elem_key_eq(s, &s->e[j], &c->e))
				break;
		if (c->add) {
			ck_assert_msg(j == s->n, "adds an existing element");
			*ir_elem_add(s) = c->e;
			if (c->e.chain)
				s->e[s->n - 1].chain =
				    ir_intern(have, c->e.chain);
		} else {
			ck_assert_msg(j < s->n, "deletes a missing element");
			s->e[j] = s->e[--s->n];
		}
	}
	ir_normalize(have);
}

static size_t count(const struct ir_diff *d, enum ir_diff_kind k,
		    const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < d->nitems; i++)
		n += d->items[i].kind == k && !strcmp(d->items[i].name, name);
	return n;
}

START_TEST(test_same)
{
	struct ir_ruleset *want = three_tier(), *have = three_tier();
	struct ir_diff d;

	ir_diff(want, have, &d);
	ck_assert_uint_eq(d.nitems, 0);
	ck_assert_uint_eq(d.elems.n, 0);
	ir_diff_free(&d);
	ir_diff(want, NULL, &d);
	ck_assert_uint_eq(d.nitems, 1);
	ck_assert_uint_eq(count(&d, IRD_TABLE_MISSING, "bulkhead"), 1);
	ir_diff_free(&d);
	ir_free(want);
	ir_free(have);
}
END_TEST

START_TEST(test_elements)
{
	struct ir_ruleset *want = with_map(), *have = with_map();
	struct ir_set *peer = ir_set_find(have, "nginx_peer4");
	struct ir_set *src = ir_set_find(have, "vm4");
	struct ir_set *rl = ir_set_find(have, "rl4");
	struct ir_elem extra;
	struct ir_diff d;
	size_t i, npeer;

	ck_assert(peer && peer->n > 0 && src && src->n >= 2 && rl);
	npeer = peer->n;
	peer->n = 0; /* missing in the kernel: to add */
	extra = src->e[0];
	extra.lo[1] = extra.hi[1] = 0x01020304; /* only in the kernel */
	*ir_elem_add(src) = extra;
	/* same key, other verdict: deleted and added again */
	src->e[1].chain = ir_intern(have, "svc_db");
	/* the rate limiter's state is the datapath's, never a change */
	ir_elem_add(rl)->lo[0] = 7;
	ir_normalize(have);

	ir_diff(want, have, &d);
	ck_assert_uint_eq(d.nitems, 0);
	ck_assert_uint_eq(d.nadd, npeer + 1);
	ck_assert_uint_eq(d.ndel, 2);
	/* deletions first, each naming a set of want */
	for (i = 0; i < d.elems.n; i++) {
		ck_assert(d.elems.v[i].add == (i >= d.ndel));
		ck_assert_str_eq(want->sets[d.elems.v[i].set].name,
				 d.elems.v[i].set_name);
	}
	apply(have, &d);
	ir_diff_free(&d);
	ir_diff(want, have, &d);
	ck_assert_uint_eq(d.nitems, 0);
	ck_assert_uint_eq(d.elems.n, 0);
	ir_diff_free(&d);
	ir_free(want);
	ir_free(have);
}
END_TEST

/* A container that leaves and comes back the same changes nothing; one
 * whose verdict changed keeps its deletion and addition. */
START_TEST(test_delta_cancel)
{
	struct ir_ruleset *rs = with_map();
	struct ir_set *src = ir_set_find(rs, "vm4");
	size_t si = (size_t)(src - rs->sets);
	struct ir_delta d = {0};
	struct ir_change *c;

	ck_assert(src && src->n >= 2);
	c = PUSH(d.v, d.n, d.cap);
	*c = (struct ir_change){false, si, src->name, src->e[0]};
	c = PUSH(d.v, d.n, d.cap);
	*c = (struct ir_change){false, si, src->name, src->e[1]};
	c = PUSH(d.v, d.n, d.cap);
	*c = (struct ir_change){true, si, src->name, src->e[0]};
	c = PUSH(d.v, d.n, d.cap);
	*c = (struct ir_change){true, si, src->name, src->e[1]};
	c->e.chain = "svc_db";
	ir_delta_cancel(rs, &d);
	ck_assert_uint_eq(d.n, 2);
	ck_assert(!d.v[0].add && d.v[1].add);
	ck_assert_str_eq(d.v[1].e.chain, "svc_db");
	ir_delta_free(&d);
	ir_free(rs);
}
END_TEST

/* Each change on its own, as the daemon once applied them: the
 * reference that ir_delta_apply's one pass a set must agree with. */
static void apply_one_by_one(struct ir_set *s, const struct ir_change *c)
{
	size_t j;

	for (j = 0; j < s->n && ir_elem_cmp(s, &s->e[j], &c->e) < 0; j++)
		;
	if (j < s->n && !ir_elem_cmp(s, &s->e[j], &c->e)) {
		if (c->add)
			s->e[j] = c->e;
		else
			memmove(&s->e[j], &s->e[j + 1],
				(s->n - j - 1) * sizeof(*s->e));
		s->n -= !c->add;
		return;
	}
	if (!c->add)
		return;
	ir_elem_add(s);
	memmove(&s->e[j + 1], &s->e[j], (s->n - 1 - j) * sizeof(*s->e));
	s->e[j] = c->e;
}

/* Many changes at once, the same element added, deleted and changed
 * again within them: the last change of each decides, the set stays
 * sorted. */
START_TEST(test_delta_apply)
{
	static const char *const chains[] = {"svc_nginx", "svc_backend",
					     "svc_db"};
	struct ir_ruleset *rs = with_map(), *ref = with_map();
	struct ir_set *m = ir_set_find(rs, "vm4"), *r = ir_set_find(ref, "vm4");
	size_t si = (size_t)(m - rs->sets), i;
	struct ir_delta d = {0};
	unsigned seed = 7;

	for (i = 0; i < 600; i++) {
		struct ir_change *c = PUSH(d.v, d.n, d.cap);

		seed = seed * 1103515245u + 12345u;
		memset(c, 0, sizeof(*c));
		c->add = (seed >> 16) % 3 != 0;
		c->set = si;
		c->set_name = m->name;
		c->e.lo[0] = c->e.hi[0] = ir_ifname("br-0");
		c->e.lo[1] = c->e.hi[1] = 0x0a000000 + (u128)((seed >> 8) % 40);
		c->e.verdict = IRV_JUMP;
		c->e.chain = chains[(seed >> 4) % 3];
		apply_one_by_one(r, c);
	}
	ir_delta_apply(rs, &d);
	ck_assert_uint_eq(m->n, r->n);
	for (i = 0; i < m->n; i++) {
		ck_assert(!ir_elem_cmp(m, &m->e[i], &r->e[i]));
		ck_assert_str_eq(m->e[i].chain, r->e[i].chain);
		ck_assert(i == 0 || ir_elem_cmp(m, &m->e[i - 1], &m->e[i]) < 0);
	}
	ir_delta_free(&d);
	ir_free(rs);
	ir_free(ref);
}
END_TEST

START_TEST(test_structure)
{
	struct ir_ruleset *want = three_tier(), *have = three_tier();
	static const enum ir_type k[] = {IRT_IPV4};
	struct ir_chain *c;
	struct ir_set *s;
	struct ir_diff d;

	have->dormant = true;
	ir_set_add(have, "extra", 0, 1, k);
	s = ir_set_find(have, "backend_peer4");
	s->key[1] = IRT_IPV6;
	ir_chain_add(have, "stray", IRH_NONE, 0);
	ir_chain_find(have, "forward")->prio = 0;
	c = ir_chain_find(have, "input");
	c->foreign = true;
	/* a foreign rule never equals one of ours */
	c = ir_chain_find(have, "svc_nginx");
	c->r[0].foreign = ir_intern(have, "handle 9: counter");
	ir_diff(want, have, &d);
	ck_assert_uint_eq(count(&d, IRD_TABLE_DORMANT, "bulkhead"), 1);
	ck_assert_uint_eq(count(&d, IRD_SET_EXTRA, "extra"), 1);
	ck_assert_uint_eq(count(&d, IRD_SET_CHANGED, "backend_peer4"), 1);
	ck_assert_uint_eq(count(&d, IRD_CHAIN_EXTRA, "stray"), 1);
	ck_assert_uint_eq(count(&d, IRD_CHAIN_CHANGED, "forward"), 1);
	ck_assert_uint_eq(count(&d, IRD_CHAIN_CHANGED, "input"), 1);
	ck_assert_uint_eq(count(&d, IRD_RULES_CHANGED, "svc_nginx"), 1);
	ck_assert_uint_eq(d.nitems, 7);
	ir_diff_free(&d);
	ir_free(want);
	ir_free(have);
}
END_TEST

/* The kernel shows the family check an address key implies; the rule is
 * the same. Another set or a negation is not. */
START_TEST(test_rule_eq)
{
	struct ir_ruleset *rs = three_tier();
	struct ir_chain *c = ir_chain_find(rs, "svc_nginx");
	struct ir_rule a = c->r[0], b = c->r[0];
	int i;

	ck_assert(ir_rule_eq(&a, &b));
	ck_assert_int_lt(b.nm, IR_MAX_MATCH);
	for (i = b.nm; i > 0; i--)
		b.m[i] = b.m[i - 1];
	b.nm++;
	memset(&b.m[0], 0, sizeof(b.m[0]));
	b.m[0].kind = IRM_NFPROTO;
	b.m[0].family = AF_INET;
	ck_assert(ir_rule_eq(&a, &b));
	b.m[0].family = AF_INET6;
	ck_assert(!ir_rule_eq(&a, &b));
	b = a;
	b.m[b.nm - 1].neg = !b.m[b.nm - 1].neg;
	ck_assert(!ir_rule_eq(&a, &b));
	b = a;
	b.m[b.nm - 1].set = "backend_peer4";
	ck_assert(!ir_rule_eq(&a, &b));
	ir_free(rs);
}
END_TEST

Suite *ir_suite(void)
{
	Suite *s = suite_create("ir");
	TCase *tc = tcase_create("diff");

	tcase_add_test(tc, test_same);
	tcase_add_test(tc, test_elements);
	tcase_add_test(tc, test_structure);
	tcase_add_test(tc, test_delta_cancel);
	tcase_add_test(tc, test_delta_apply);
	tcase_add_test(tc, test_rule_eq);
	suite_add_tcase(s, tc);
	return s;
}
