/* Unit tests for the read-back decoder in src/kernel.c, without a
 * kernel: the messages kernel_apply would send decode into the ruleset
 * they were built from, and partial streams decode into a part of it. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <libnftnl/set.h>
#include <libnftnl/table.h>

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

/* A full apply's elements name their set by the id it was created with
 * in the same batch, right after it (the kernel finds it without
 * walking the table's sets by name); each id is a set's of that batch. */
START_TEST(test_elems_by_id)
{
	struct ir_ruleset *rs = example(2);
	const struct nlmsghdr *nlh;
	uint32_t last_set = 0;
	size_t len, left, nelem = 0;
	char *buf;

	kernel_encode(rs, &buf, &len);
	left = len;
	for (nlh = (const void *)buf; nlmsg_fits(nlh, left);
	     nlh = nlmsg_next(nlh, &left)) {
		struct nlattr *tb[NFTA_SET_ELEM_LIST_MAX + 1] = {0};
		const struct nlattr *a;

		if (NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWSET) {
			mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
			{
				if (mnl_attr_get_type(a) == NFTA_SET_ID)
					last_set = ntohl(mnl_attr_get_u32(a));
			}
			continue;
		}
		if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFT_MSG_NEWSETELEM)
			continue;
		mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
		{
			if (mnl_attr_get_type(a) <= NFTA_SET_ELEM_LIST_MAX)
				tb[mnl_attr_get_type(a)] = (struct nlattr *)a;
		}
		ck_assert_ptr_null(tb[NFTA_SET_ELEM_LIST_SET]);
		ck_assert_ptr_nonnull(tb[NFTA_SET_ELEM_LIST_SET_ID]);
		ck_assert_uint_eq(
		    ntohl(mnl_attr_get_u32(tb[NFTA_SET_ELEM_LIST_SET_ID])),
		    last_set);
		nelem++;
	}
	ck_assert_uint_gt(nelem, 0);
	free(buf);
	ir_free(rs);
}
END_TEST

/* A header claiming nearly 4 GB: libmnl's mnl_nlmsg_ok reads the length
 * as a negative int and lets it through, and mnl_nlmsg_next then steps
 * 4 GB ahead; the walk must stop instead. */
START_TEST(test_huge_length)
{
	struct ir_ruleset *back = ir_new("bulkhead");
	struct nlmsghdr *nlh = calloc(1, 64);

	nlh->nlmsg_len = 0xfffffff0u;
	nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE;
	/* one attribute filling the 64 bytes: the next would be read past
	 * them */
	((struct nlattr *)((char *)nlh + 20))->nla_len = 44;
	((struct nlattr *)((char *)nlh + 20))->nla_type = NFTA_TABLE_NAME;
	kernel_decode("bulkhead", nlh, 64, back);
	ck_assert_uint_eq(back->nchains + back->nsets, 0);
	ir_free(back);
	free(nlh);
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
	size_t len, cut, left;
	char *buf;

	kernel_encode(rs, &buf, &len);
	for (cut = 0; cut < len; cut += 97) {
		back = ir_new(rs->table);
		kernel_decode(rs->table, buf, cut, back);
		ck_assert_uint_le(back->nsets, rs->nsets);
		ck_assert_uint_le(back->nchains, rs->nchains);
		ir_free(back);
	}
	left = len;
	for (nlh = (const void *)buf; nlmsg_fits(nlh, left);
	     nlh = nlmsg_next(nlh, &left)) {
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

/* One event as the kernel sends it: type, family, table and, for
 * elements, the set; from port pid. */
static size_t event(char *buf, uint16_t msg, uint16_t family, const char *table,
		    const char *set, uint32_t pid)
{
	struct nlmsghdr *nh;

	if (set) {
		struct nftnl_set *s = nftnl_set_alloc();

		nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
		nftnl_set_set_str(s, NFTNL_SET_NAME, set);
		nh = nftnl_nlmsg_build_hdr(buf, msg, family, 0, 1);
		nftnl_set_elems_nlmsg_build_payload(nh, s);
		nftnl_set_free(s);
	} else {
		struct nftnl_table *t = nftnl_table_alloc();

		nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
		nh = nftnl_nlmsg_build_hdr(buf, msg, family, 0, 1);
		nftnl_table_nlmsg_build_payload(nh, t);
		nftnl_table_free(t);
	}
	nh->nlmsg_pid = pid;
	return nh->nlmsg_len;
}

/* Events from the nftables group: others' changes to our table are news,
 * our own batches, other tables and the rate limit's dynamic sets not. */
START_TEST(test_events)
{
	struct ir_ruleset *rs = example(0);
	char buf[4096], what[128] = "", *enc;
	size_t n, len, i;

	n = event(buf, NFT_MSG_DELTABLE, NFPROTO_INET, "bulkhead", NULL, 4242);
	ck_assert_int_gt(
	    kernel_event_foreign(buf, n, 77, rs, what, sizeof(what)), 0);
	ck_assert_str_eq(what, "table deleted");
	ck_assert_int_eq(
	    kernel_event_foreign(buf, n, 4242, rs, what, sizeof(what)), 0);
	n = event(buf, NFT_MSG_DELTABLE, NFPROTO_IPV4, "bulkhead", NULL, 1);
	ck_assert_int_eq(kernel_event_foreign(buf, n, 77, rs, what, 128), 0);
	n = event(buf, NFT_MSG_DELTABLE, NFPROTO_INET, "filter", NULL, 1);
	ck_assert_int_eq(kernel_event_foreign(buf, n, 77, rs, what, 128), 0);
	/* the packet path fills and expires the rate limit's set */
	n = event(buf, NFT_MSG_DELSETELEM, NFPROTO_INET, "bulkhead", "rl4", 0);
	ck_assert_int_eq(kernel_event_foreign(buf, n, 77, rs, what, 128), 0);
	/* several messages in one datagram: the one that matters counts */
	n += event(buf + n, NFT_MSG_DELSETELEM, NFPROTO_INET, "bulkhead",
		   "backend_peer4", 5);
	ck_assert_int_gt(kernel_event_foreign(buf, n, 77, rs, what, 128), 0);
	ck_assert_str_eq(what, "elements deleted in set backend_peer4");
	/* the weightiest change names it: the table, not its rules */
	n = event(buf, NFT_MSG_DELSETELEM, NFPROTO_INET, "bulkhead",
		  "backend_peer4", 5);
	n +=
	    event(buf + n, NFT_MSG_DELTABLE, NFPROTO_INET, "bulkhead", NULL, 5);
	ck_assert_int_gt(kernel_event_foreign(buf, n, 77, rs, what, 128), 0);
	ck_assert_str_eq(what, "table deleted");
	/* cut anywhere: no message read past its end */
	for (i = 0; i < n; i++)
		kernel_event_foreign(buf, i, 77, rs, what, 128);
	/* a whole apply: news from another process, not from us */
	kernel_encode(rs, &enc, &len);
	ck_assert_int_eq(kernel_event_foreign(enc, len, 0, rs, what, 128), 0);
	ck_assert_int_gt(kernel_event_foreign(enc, len, 9, rs, what, 128), 0);
	ck_assert_str_eq(what, "table deleted"); /* create, delete, create */
	free(enc);
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
	tcase_add_test(tc, test_elems_by_id);
	tcase_add_test(tc, test_huge_length);
	tcase_add_test(tc, test_events);
	suite_add_tcase(s, tc);
	return s;
}
