/* libFuzzer harness for the read-back decoder (kernel_decode). The bytes
 * choose the content of well-formed netlink messages, built with
 * libnftnl as the kernel would send them: chains, sets of any key types
 * and flags with elements of any bytes, and rules of any expressions,
 * ours or not, with any registers and data. Whatever arrives must decode
 * into an IR (foreign rules where they are not ours) that normalises,
 * renders, compares and evaluates without a crash, a leak or undefined
 * behaviour. (libnftnl's own parsing of malformed netlink is libnftnl's:
 * the kernel is the only sender.) */
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "bulkhead/kernel.h"
#include "bulkhead/render.h"

struct src {
	const uint8_t *p;
	size_t n;
};

static uint32_t take(struct src *s, int bytes)
{
	uint32_t v = 0;

	while (bytes-- > 0 && s->n) {
		v = v << 8 | *s->p++;
		s->n--;
	}
	return v;
}

static const char *pick(struct src *s, const char *const *v, size_t n)
{
	return v[take(s, 1) % n];
}

static const char *const names[] = {"forward", "input", "svc_a", "deny",
				    "s0",      "src4",	"rl4",	 "a_peer4"};
static const char *const tables[] = {"bulkhead", "bulkhead", "other"};

static void data(struct src *s, uint8_t *buf, uint32_t *len)
{
	uint32_t i;

	*len = 1 + take(s, 1) % 16;
	for (i = 0; i < *len; i++)
		buf[i] = (uint8_t)take(s, 1);
}

static struct nftnl_expr *expr(struct src *s)
{
	static const char *const kinds[] = {
	    "meta", "payload",	 "cmp",	   "lookup", "range", "bitwise",
	    "ct",   "immediate", "dynset", "log",    "limit", "counter"};
	const char *k = pick(s, kinds, sizeof(kinds) / sizeof(kinds[0]));
	struct nftnl_expr *e = nftnl_expr_alloc(k);
	uint8_t b[16];
	uint32_t len;

	if (!strcmp(k, "meta")) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, take(s, 1) % 32);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, take(s, 1) % 24);
	} else if (!strcmp(k, "payload")) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, take(s, 1) % 4);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, take(s, 1));
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, take(s, 1) % 20);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, take(s, 1) % 24);
	} else if (!strcmp(k, "cmp")) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, take(s, 1) % 24);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, take(s, 1) % 7);
		data(s, b, &len);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, b, len);
	} else if (!strcmp(k, "lookup")) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, take(s, 1) % 24);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, pick(s, names, 8));
		if (take(s, 1) & 1)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG,
					   take(s, 1) % 24);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, take(s, 1) % 2);
	} else if (!strcmp(k, "range")) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_SREG, take(s, 1) % 24);
		nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_OP, take(s, 1) % 2);
		data(s, b, &len);
		nftnl_expr_set(e, NFTNL_EXPR_RANGE_FROM_DATA, b, len);
		data(s, b, &len);
		nftnl_expr_set(e, NFTNL_EXPR_RANGE_TO_DATA, b, len);
	} else if (!strcmp(k, "bitwise")) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, 1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, 1);
		data(s, b, &len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, b, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, b, len);
	} else if (!strcmp(k, "ct")) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, take(s, 1) % 24);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, take(s, 1) % 24);
		if (take(s, 1) & 1) /* original or reply */
			nftnl_expr_set_u8(e, NFTNL_EXPR_CT_DIR,
					  (uint8_t)(take(s, 1) % 2));
	} else if (!strcmp(k, "immediate")) {
		uint32_t v = take(s, 1) % 7;

		if (v == 6) { /* a value into a data register */
			nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
			data(s, b, &len);
			nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, b, len);
			return e;
		}
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT,
				   v < 2 ? v : (uint32_t) - (int)(v - 1));
		/* a chain with jump and goto, and only there, as the kernel
		 * sends them (libnftnl cannot take anything else) */
		if (v == 4 || v == 5)
			nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN,
					   pick(s, names, 8));
	} else if (!strcmp(k, "dynset")) {
		struct nftnl_expr *lim = nftnl_expr_alloc("limit");

		nftnl_expr_set_u64(lim, NFTNL_EXPR_LIMIT_RATE, take(s, 2));
		nftnl_expr_set_u64(lim, NFTNL_EXPR_LIMIT_UNIT, take(s, 2));
		nftnl_expr_set_u32(lim, NFTNL_EXPR_LIMIT_TYPE, take(s, 1) % 2);
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY,
				   take(s, 1) % 24);
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, take(s, 1) % 3);
		nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME,
				   pick(s, names, 8));
		nftnl_expr_set(e, NFTNL_EXPR_DYNSET_EXPR, lim, 0);
	} else if (!strcmp(k, "log")) {
		if (take(s, 1) & 1)
			nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, "x ");
		if (take(s, 1) & 1)
			nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, take(s, 2));
	}
	return e;
}

/* Appends one message, of table inet or bridge (or another family,
 * which is not ours); returns its header to fill. */
static struct nlmsghdr *msg(char **buf, size_t *len, size_t *cap, uint16_t type,
			    struct src *s)
{
	static const uint16_t fams[] = {NFPROTO_INET, NFPROTO_BRIDGE,
					NFPROTO_INET, NFPROTO_IPV4};

	if (*len + 65536 > *cap) {
		*cap = (*len + 65536) * 2;
		*buf = realloc(*buf, *cap);
	}
	return nftnl_nlmsg_build_hdr(*buf + *len, type, fams[take(s, 1) % 4], 0,
				     1);
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	struct src s = {p, n};
	char *buf = NULL, out[512];
	size_t len = 0, cap = 0;
	struct ir_ruleset *rs = ir_new("bulkhead");
	struct nlmsghdr *nlh;
	struct strbuf sb = {0};
	struct ir_result res;
	struct ir_packet pkt = {.hook = IRH_FORWARD, .family = AF_INET};
	struct ir_diff d;
	uint32_t i, j, k, cnt;

	(void)out;
	for (i = take(&s, 1) % 4; i > 0; i--) { /* chains */
		struct nftnl_chain *c = nftnl_chain_alloc();

		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, pick(&s, tables, 3));
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, pick(&s, names, 8));
		if (take(&s, 1) & 1) {
			nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM,
					    take(&s, 1) % 5);
			nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO,
					    (int32_t)take(&s, 2));
			nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE,
					    take(&s, 1) & 1 ? "filter" : "nat");
			nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY,
					    take(&s, 1) % 2);
		}
		nlh = msg(&buf, &len, &cap, NFT_MSG_NEWCHAIN, &s);
		nftnl_chain_nlmsg_build_payload(nlh, c);
		len += NLMSG_ALIGN(nlh->nlmsg_len);
		nftnl_chain_free(c);
	}
	for (i = take(&s, 1) % 4; i > 0; i--) { /* sets, elements */
		struct nftnl_set *st = nftnl_set_alloc();
		const char *name = pick(&s, names, 8);
		uint32_t flags = take(&s, 1);

		nftnl_set_set_str(st, NFTNL_SET_TABLE, pick(&s, tables, 3));
		nftnl_set_set_str(st, NFTNL_SET_NAME, name);
		nftnl_set_set_u32(st, NFTNL_SET_KEY_TYPE, take(&s, 4));
		nftnl_set_set_u32(st, NFTNL_SET_KEY_LEN, take(&s, 1) % 80);
		nftnl_set_set_u32(st, NFTNL_SET_FLAGS, flags);
		/* ids from a small range: repeated, and sometimes named
		 * by elements that follow another set */
		nftnl_set_set_u32(st, NFTNL_SET_ID, take(&s, 1) % 4);
		if (flags & NFT_SET_MAP) {
			nftnl_set_set_u32(st, NFTNL_SET_DATA_TYPE,
					  take(&s, 1) & 1 ? NFT_DATA_VERDICT
							  : 7);
			nftnl_set_set_u32(st, NFTNL_SET_DATA_LEN, 16);
		}
		nlh = msg(&buf, &len, &cap, NFT_MSG_NEWSET, &s);
		nftnl_set_nlmsg_build_payload(nlh, st);
		len += NLMSG_ALIGN(nlh->nlmsg_len);
		nftnl_set_free(st);

		st = nftnl_set_alloc();
		nftnl_set_set_str(st, NFTNL_SET_TABLE, "bulkhead");
		if (take(&s, 1) & 1) /* by id, as a full apply does */
			nftnl_set_set_u32(st, NFTNL_SET_ID, take(&s, 1) % 4);
		else
			nftnl_set_set_str(st, NFTNL_SET_NAME, name);
		for (cnt = take(&s, 1) % 6, j = 0; j < cnt; j++) {
			struct nftnl_set_elem *el = nftnl_set_elem_alloc();
			uint8_t key[64];
			uint32_t kl = 1 + take(&s, 1) % 64;

			for (k = 0; k < kl; k++)
				key[k] = (uint8_t)take(&s, 1);
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, key, kl);
			if (take(&s, 1) & 1)
				nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY_END,
						   key, kl);
			if (take(&s, 1) & 1) {
				bool jump = take(&s, 1) & 1;

				nftnl_set_elem_set_u32(el,
						       NFTNL_SET_ELEM_VERDICT,
						       jump ? (uint32_t)NFT_JUMP
							    : take(&s, 1) % 2);
				if (jump)
					nftnl_set_elem_set_str(
					    el, NFTNL_SET_ELEM_CHAIN,
					    pick(&s, names, 8));
			}
			nftnl_set_elem_add(st, el);
		}
		nlh = msg(&buf, &len, &cap, NFT_MSG_NEWSETELEM, &s);
		nftnl_set_elems_nlmsg_build_payload(nlh, st);
		len += NLMSG_ALIGN(nlh->nlmsg_len);
		nftnl_set_free(st);
	}
	for (i = take(&s, 1) % 6; i > 0; i--) { /* rules */
		struct nftnl_rule *r = nftnl_rule_alloc();

		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, pick(&s, tables, 3));
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, pick(&s, names, 8));
		for (j = take(&s, 1) % 10; j > 0; j--)
			nftnl_rule_add_expr(r, expr(&s));
		nlh = msg(&buf, &len, &cap, NFT_MSG_NEWRULE, &s);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		len += NLMSG_ALIGN(nlh->nlmsg_len);
		nftnl_rule_free(r);
	}

	kernel_decode("bulkhead", buf, len, rs);
	ir_normalize(rs);
	render_nft(rs, NULL, &sb);
	render_json(rs, &sb);
	ir_diff(rs, rs, &d);
	if (d.nitems && !rs->dormant) {
		/* a ruleset differs from itself only through foreign parts */
		for (i = 0; i < d.nitems; i++)
			if (d.items[i].kind != IRD_RULES_CHANGED &&
			    d.items[i].kind != IRD_CHAIN_CHANGED &&
			    d.items[i].kind != IRD_SET_CHANGED)
				abort();
	}
	if (d.elems.n)
		abort(); /* elements always equal themselves */
	ir_diff_free(&d);
	strcpy(pkt.iif, "br-x");
	strcpy(pkt.oif, "br-y");
	pkt.proto = 6;
	pkt.dport = 80;
	ir_eval(rs, &pkt, &res);
	pkt.hook = IRH_INPUT;
	ir_eval(rs, &pkt, &res);
	sb_free(&sb);
	ir_free(rs);
	free(buf);
	return 0;
}
