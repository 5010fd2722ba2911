/* Unit tests for the read-back decoder in src/kernel.c, without a
 * kernel: the messages kernel_apply would send decode into the ruleset
 * they were built from, and partial streams decode into a part of it. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "bulkhead/kernel.h"
#include "unit.h"

static const char *const examples[][2] = {
    {"policies/three-tier.yaml", FIXTURES "/three-tier.json"},
    {"policies/shop.yaml", FIXTURES "/shop.json"},
    {FIXTURES "/policy-all-kinds.yaml", FIXTURES "/all-kinds.json"},
};

static struct ir_ruleset *example(int i)
{
	return compile_fixture(examples[i][0], examples[i][1]);
}

START_TEST(test_round_trip)
{
	struct ir_ruleset *rs = example(_i), *back = ir_new(rs->table);
	struct ir_diff d;
	size_t len, i;
	char *buf;

	kernel_encode(rs, &buf, &len);
	kernel_decode(rs->table, buf, len, back);
	ir_normalize(back);
	ir_diff(rs, back, &d);
	ck_assert_uint_eq(d.nitems, 0);
	ck_assert_uint_eq(d.elems.n, 0);
	ck_assert_uint_eq(back->nchains, rs->nchains);
	ck_assert_uint_eq(back->nsets, rs->nsets);
	for (i = 0; i < back->nchains; i++)
		ck_assert_uint_eq(back->chains[i].n, rs->chains[i].n);
	ir_diff_free(&d);
	ir_free(back);
	/* another table's messages are not ours */
	back = ir_new("other");
	kernel_decode("other", buf, len, back);
	ck_assert_uint_eq(back->nchains + back->nsets, 0);
	ir_free(back);
	free(buf);
	ir_free(rs);
}
END_TEST

/* Cut anywhere, or decoded one message at a time (elements before their
 * set, rules before their chain): no crash, and nothing invented. The
 * bytes inside a message are libnftnl's to parse; tests/fuzz's readback
 * harness builds well-formed messages of arbitrary content instead. */
START_TEST(test_partial)
{
	struct ir_ruleset *rs = example(0), *back;
	const struct nlmsghdr *nlh;
	size_t len, cut;
	char *buf;
	int n;

	kernel_encode(rs, &buf, &len);
	for (cut = 0; cut < len; cut += 97) {
		back = ir_new(rs->table);
		kernel_decode(rs->table, buf, cut, back);
		ck_assert_uint_le(back->nsets, rs->nsets);
		ck_assert_uint_le(back->nchains, rs->nchains);
		ir_free(back);
	}
	n = (int)len;
	for (nlh = (const void *)buf; mnl_nlmsg_ok(nlh, n);
	     nlh = mnl_nlmsg_next(nlh, &n)) {
		back = ir_new(rs->table);
		kernel_decode(rs->table, nlh, nlh->nlmsg_len, back);
		ck_assert_uint_le(back->nsets + back->nchains, 1);
		ck_assert_uint_eq(ir_element_count(back), 0);
		ir_free(back);
	}
	free(buf);
	ir_free(rs);
}
END_TEST

Suite *kernel_suite(void)
{
	Suite *s = suite_create("kernel");
	TCase *tc = tcase_create("decode");

	tcase_add_loop_test(tc, test_round_trip, 0,
			    sizeof(examples) / sizeof(examples[0]));
	tcase_add_test(tc, test_partial);
	suite_add_tcase(s, tc);
	return s;
}
