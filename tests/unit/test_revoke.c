/* Unit tests for src/revoke.c's judge (pure): which conntrack entries a
 * change ends, by the decision trace makes, on the three-tier fixture. */
#include <string.h>
#include <sys/socket.h>

#include "bulkhead/revoke.h"
#include "unit.h"

#define A4(a, b, c, d)                                                         \
	((u128)((uint32_t)(a) << 24 | (uint32_t)(b) << 16 |                    \
		(uint32_t)(c) << 8 | (uint32_t)(d)))

struct judged {
	struct policy *p;
	struct inventory *inv;
	struct compiler *cc;
	struct trace_index *ix;
	struct revoke_judge j;
};

static void judge_open(struct judged *x, const struct revoke_addr *host,
		       size_t nhost)
{
	x->p = load_policy_fixture("policies/three-tier.yaml");
	x->inv = load_inventory_fixture(FIXTURES "/three-tier.json");
	x->cc = compile_new(x->p, NULL);
	x->ix = trace_index_new(x->cc, x->p, x->inv);
	x->j = (struct revoke_judge){.cc = x->cc,
				     .p = x->p,
				     .inv = x->inv,
				     .ix = x->ix,
				     .host = host,
				     .nhost = nhost};
}

static void judge_close(struct judged *x)
{
	trace_index_free(x->ix);
	compile_free(x->cc);
	inventory_free(x->inv);
	policy_free(x->p);
}

static bool keep(const struct judged *x, u128 s, u128 d, uint8_t proto,
		 uint16_t port, char *why)
{
	struct revoke_flow f = {AF_INET, s, d, proto, 40000, port};

	why[0] = '\0';
	return revoke_keep(&x->j, &f, why, 256);
}

START_TEST(test_judge)
{
	static const struct revoke_addr host[] = {{AF_INET, A4(172, 28, 5, 1)}};
	u128 nginx = A4(172, 28, 5, 2), backend = A4(172, 28, 5, 3),
	     db = A4(172, 28, 5, 4), gw = A4(172, 28, 5, 1);
	struct judged x;
	char why[256];

	judge_open(&x, host, 1);
	/* allowed edges stay */
	ck_assert(keep(&x, nginx, backend, 6, 8080, why));
	ck_assert(keep(&x, backend, db, 6, 5432, why));
	ck_assert(keep(&x, backend, gw, 17, 53, why)); /* to the host */
	/* what no edge allows ends, named */
	ck_assert(!keep(&x, nginx, db, 6, 5432, why));
	ck_assert_str_eq(why, "nginx -> db 5432/tcp (no-edge)");
	ck_assert(!keep(&x, nginx, backend, 17, 8080, why));
	ck_assert_str_eq(why, "nginx -> backend 8080/udp (port-not-allowed)");
	ck_assert(!keep(&x, nginx, gw, 6, 22, why));
	ck_assert_str_eq(why, "nginx -> host 22/tcp (no-edge)");
	/* the other way round: db never opens to backend */
	ck_assert(!keep(&x, db, backend, 6, 8080, why));
	/* nothing of ours at either end: never touched */
	ck_assert(keep(&x, A4(10, 0, 0, 1), A4(10, 0, 0, 2), 6, 22, why));
	judge_close(&x);
}
END_TEST

START_TEST(test_gone)
{
	static const struct revoke_addr gone[] = {{AF_INET, A4(172, 28, 5, 4)}};
	u128 backend = A4(172, 28, 5, 3), db = A4(172, 28, 5, 4);
	struct judged x;
	char why[256];

	judge_open(&x, NULL, 0);
	x.j.gone = gone;
	x.j.ngone = 1;
	/* allowed, but db's address left with its container */
	ck_assert(!keep(&x, backend, db, 6, 5432, why));
	ck_assert_str_eq(why, "backend -> db 5432/tcp (container left)");
	ck_assert(keep(&x, A4(172, 28, 5, 2), backend, 6, 8080, why));
	judge_close(&x);
}
END_TEST

/* A flow to an FQDN peer's address is kept while the name resolves to
 * it (the policy model knows the name, the ruleset the addresses). */
START_TEST(test_fqdn)
{
	static const struct compile_fqdn fq[] = {
	    {"api.example.com", AF_INET, 0xc6336407, 0}, /* 198.51.100.7 */
	};
	struct compile_opts o = {.fqdn = fq, .nfqdn = 1};
	struct policy *p = load_policy_fixture(FIXTURES "/policy-fqdn.yaml");
	struct inventory *inv =
	    load_inventory_fixture(FIXTURES "/three-tier.json");
	struct compiler *cc = compile_new(p, &o);
	struct diags d = {0};
	struct ir_ruleset *rs = compile_ruleset(cc, inv, "inv", &d);
	struct revoke_judge j = {.cc = cc, .p = p, .inv = inv};
	/* backend (172.28.5.3) to the name's address */
	struct revoke_flow f = {
	    AF_INET, A4(172, 28, 5, 3), 0xc6336407, 6, 40000, 8443};
	char why[256];

	ck_assert_ptr_nonnull(rs);
	j.ix = trace_index_new(cc, p, inv);
	/* without the ruleset the model alone denies it */
	ck_assert(!revoke_keep(&j, &f, why, sizeof(why)));
	j.rs = rs;
	ck_assert_msg(revoke_keep(&j, &f, why, sizeof(why)), "%s", why);
	f.daddr = 0xc6336408; /* not in the answer */
	ck_assert(!revoke_keep(&j, &f, why, sizeof(why)));
	trace_index_free((struct trace_index *)j.ix);
	diags_free(&d);
	ir_free(rs);
	compile_free(cc);
	inventory_free(inv);
	policy_free(p);
}
END_TEST

Suite *revoke_suite(void)
{
	Suite *s = suite_create("revoke");
	TCase *tc = tcase_create("judge");

	tcase_add_test(tc, test_judge);
	tcase_add_test(tc, test_gone);
	tcase_add_test(tc, test_fqdn);
	suite_add_tcase(s, tc);
	return s;
}
