/* The encoder: IR -> libnftnl objects -> the messages of a batch, with
 * the same expressions and dependencies nft writes, so that nft lists
 * what we program as it would its own. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter_bridge.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "bulkhead/kernel.h"

#include "bulkhead/nft.h"

/* --- objects ----------------------------------------------------------------
 */

static void add_table(struct batch *b, enum ir_family fam, const char *name,
		      uint16_t type, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, nfproto(fam));
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	nlh = batch_msg(b, fam, type, flags,
			xasprintf("table %s %s", family_name(fam), name));
	nftnl_table_nlmsg_build_payload(nlh, t);
	batch_done(b, nlh);
	nftnl_table_free(t);
}

static void add_chain(struct batch *b, const char *table,
		      const struct ir_chain *c)
{
	struct nftnl_chain *ch = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	nftnl_chain_set_u32(ch, NFTNL_CHAIN_FAMILY, nfproto(c->family));
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, c->name);
	if (c->hook != IRH_NONE) {
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM,
				    c->hook == IRH_FORWARD ? NF_INET_FORWARD
				    : c->hook == IRH_INPUT ? NF_INET_LOCAL_IN
							   : NF_BR_PRE_ROUTING);
		nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO,
				    c->prio + filter_prio(c->family));
		nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = batch_msg(b, c->family, NFT_MSG_NEWCHAIN, NLM_F_CREATE,
			xasprintf("chain %s", c->name));
	nftnl_chain_nlmsg_build_payload(nlh, ch);
	batch_done(b, nlh);
	nftnl_chain_free(ch);
}

/* The key as the kernel compares it: each field in network byte order,
 * padded to 4 bytes. Returns the length. */
static unsigned key_bytes(const struct ir_set *s, const u128 *v, uint8_t *out)
{
	unsigned off = 0, len;
	int k;

	for (k = 0; k < s->nkey; k++) {
		uint64_t be[2];
		uint32_t w;

		len = ir_type_len(s->key[k]);
		/* big-endian, in registers of 4 bytes (zero-padded) */
		if (len == 16) {
			be[0] = htobe64((uint64_t)(v[k] >> 64));
			be[1] = htobe64((uint64_t)v[k]);
			memcpy(out + off, be, 16);
		} else if (len == 6) { /* a MAC address, padded to 8 */
			be[0] = htobe64((uint64_t)v[k] << 16);
			memcpy(out + off, be, 8);
		} else {
			w = htonl((uint32_t)v[k] << (8 * (4 - len)));
			memcpy(out + off, &w, 4);
		}
		off += (len + 3) & ~3u;
	}
	return off;
}

/* nft's own user data for each kind of set (key and data byte order),
 * so that `nft list` prints our sets exactly as it prints its own. */
static const uint8_t ud_plain_ifname[] = {0x00, 0x04, 0x01, 0, 0, 0};
static const uint8_t ud_dynamic[] = {0x00, 0x04, 0x02, 0, 0, 0};
static const uint8_t ud_concat[] = {0x00, 0x04, 0,    0, 0, 0, 0x03, 0x08,
				    0x00, 0x04, 0x0d, 0, 0, 0, 0x01, 0x00};
/* typeof iifname . @th,64,128 (the neighbour advertisement's target) */
static const uint8_t ud_typeof_nd[] = {
    0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x03, 0x40, 0x00, 0x04, 0x0d, 0x00,
    0x00, 0x00, 0x01, 0x38, 0x00, 0x0e, 0x00, 0x04, 0x09, 0x00, 0x00, 0x00,
    0x01, 0x06, 0x00, 0x04, 0x06, 0x00, 0x00, 0x00, 0x01, 0x26, 0x00, 0x04,
    0x07, 0x00, 0x00, 0x00, 0x01, 0x1e, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x03, 0x00, 0x00, 0x00,
    0x03, 0x04, 0x40, 0x00, 0x00, 0x00, 0x04, 0x04, 0x80, 0x00, 0x00, 0x00};
static const uint8_t ud_map[] = {
    0x00, 0x04, 0,    0, 0, 0, 0x01, 0x04, 0,	 0,    0, 0, 0x03, 0x08,
    0x00, 0x04, 0x0d, 0, 0, 0, 0x01, 0x00, 0x06, 0x04, 0, 0, 0,	   0};

static void add_set(struct batch *b, const char *table, const struct ir_set *s,
		    uint32_t id)
{
	struct nftnl_set *ns = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	uint8_t fields[IR_MAX_KEY + 1] = {0};
	uint32_t ktype = 0, klen = 0, flags = 0;
	int k;

	for (k = 0; k < s->nkey; k++) {
		ktype = (ktype << DT_BITS) | type_dt(s->key[k]);
		fields[k] = (uint8_t)ir_type_len(s->key[k]);
		klen += (ir_type_len(s->key[k]) + 3) & ~3u;
	}
	nftnl_set_set_u32(ns, NFTNL_SET_FAMILY, nfproto(s->family));
	nftnl_set_set_str(ns, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(ns, NFTNL_SET_NAME, s->name);
	nftnl_set_set_u32(ns, NFTNL_SET_ID, id);
	nftnl_set_set_u32(ns, NFTNL_SET_KEY_TYPE, ktype);
	nftnl_set_set_u32(ns, NFTNL_SET_KEY_LEN, klen);
	if (s->flags & IRS_INTERVAL)
		flags |= NFT_SET_INTERVAL | (s->nkey > 1 ? NFT_SET_CONCAT : 0);
	if (s->flags & IRS_TIMEOUT)
		flags |= NFT_SET_TIMEOUT;
	/* field lengths only for interval concatenations (pipapo): hash
	 * sets take the key as one blob and refuse the description */
	if (s->nkey > 1 && (s->flags & IRS_INTERVAL))
		nftnl_set_set_data(ns, NFTNL_SET_DESC_CONCAT, fields,
				   (uint32_t)s->nkey);
	if (s->flags & IRS_MAP) {
		flags |= NFT_SET_MAP;
		nftnl_set_set_u32(ns, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		nftnl_set_set_u32(ns, NFTNL_SET_DATA_LEN, 16);
		nftnl_set_set_data(ns, NFTNL_SET_USERDATA, ud_map,
				   sizeof(ud_map));
	} else if (s->flags & IRS_DYNAMIC) {
		flags |= NFT_SET_TIMEOUT | NFT_SET_EVAL;
		nftnl_set_set_u64(ns, NFTNL_SET_TIMEOUT,
				  (uint64_t)s->timeout_s * 1000);
		nftnl_set_set_u32(ns, NFTNL_SET_DESC_SIZE, s->size);
		nftnl_set_set_data(ns, NFTNL_SET_USERDATA, ud_dynamic,
				   sizeof(ud_dynamic));
	} else if (s->nkey == 2 && s->key[1] == IRT_RAW128) {
		nftnl_set_set_data(ns, NFTNL_SET_USERDATA, ud_typeof_nd,
				   sizeof(ud_typeof_nd));
	} else if (s->nkey == 1 && s->key[0] == IRT_IFNAME) {
		nftnl_set_set_data(ns, NFTNL_SET_USERDATA, ud_plain_ifname,
				   sizeof(ud_plain_ifname));
	} else {
		nftnl_set_set_data(ns, NFTNL_SET_USERDATA, ud_concat,
				   sizeof(ud_concat));
	}
	nftnl_set_set_u32(ns, NFTNL_SET_FLAGS, flags);
	nlh = batch_msg(b, s->family, NFT_MSG_NEWSET, NLM_F_CREATE,
			xasprintf("set %s", s->name));
	nftnl_set_nlmsg_build_payload(nlh, ns);
	batch_done(b, nlh);
	nftnl_set_free(ns);
}

static void put_data(struct nlmsghdr *nlh, uint16_t type, const uint8_t *v,
		     unsigned len)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, type);

	mnl_attr_put(nlh, NFTA_DATA_VALUE, len, v);
	mnl_attr_nest_end(nlh, nest);
}

/* An element of a set without data, written straight into the message
 * (libnftnl's element objects cost an allocation each, and a full
 * ruleset has a hundred thousand): the attributes libnftnl would write,
 * in its order. */
static void put_elem(struct nlmsghdr *nlh, const struct ir_set *s,
		     const struct ir_elem *e, uint8_t *key, unsigned len,
		     bool adding)
{
	struct nlattr *one = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);

	if (e->timeout_ms && adding)
		mnl_attr_put_u64(nlh, NFTA_SET_ELEM_TIMEOUT,
				 htobe64(e->timeout_ms));
	put_data(nlh, NFTA_SET_ELEM_KEY, key, len);
	if (s->flags & IRS_INTERVAL) {
		key_bytes(s, e->hi, key);
		put_data(nlh, NFTA_SET_ELEM_KEY_END, key, len);
	}
	mnl_attr_nest_end(nlh, one);
}

/* Elements go in messages of ELEMS_PER_MSG, each described by its set
 * and count for error reports. A set created in the same batch is named
 * by its id (id > 0): the kernel finds it among the batch's new sets,
 * from the newest, where by name it would walk the list of all the
 * table's sets comparing names. Each element is nested as NFTA_LIST_ELEM,
 * the way the kernel's dumps return them (libnftnl numbers the nests,
 * which the kernel accepts but libnftnl's own parser does not), so that
 * what we send decodes as what we read back. */
static void add_elems(struct batch *b, const char *table,
		      const struct ir_set *s, const struct ir_elem *e, size_t n,
		      uint16_t type, uint32_t id)
{
	uint8_t key[64];
	size_t i, j;

	for (i = 0; i < n; i += ELEMS_PER_MSG) {
		size_t m = n - i < ELEMS_PER_MSG ? n - i : ELEMS_PER_MSG;
		struct nlmsghdr *nlh;
		struct nlattr *list, *one;

		nlh =
		    batch_msg(b, s->family, type,
			      type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0,
			      xasprintf("%s %zu elements of set %s",
					type == NFT_MSG_NEWSETELEM ? "adding"
								   : "deleting",
					m, s->name));
		if (id)
			mnl_attr_put_u32(nlh, NFTA_SET_ELEM_LIST_SET_ID,
					 htonl(id));
		else
			mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, s->name);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, table);
		list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
		for (j = i; j < i + m; j++) {
			struct nftnl_set_elem *el;
			unsigned len = key_bytes(s, e[j].lo, key);

			if (!(s->flags & IRS_MAP)) {
				put_elem(nlh, s, &e[j], key, len,
					 type == NFT_MSG_NEWSETELEM);
				continue;
			}
			el = nftnl_set_elem_alloc();
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, key, len);
			if (s->flags & IRS_INTERVAL) {
				key_bytes(s, e[j].hi, key);
				nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY_END,
						   key, len);
			}
			if (e[j].timeout_ms && type == NFT_MSG_NEWSETELEM)
				nftnl_set_elem_set_u64(el,
						       NFTNL_SET_ELEM_TIMEOUT,
						       e[j].timeout_ms);
			nftnl_set_elem_set_u32(
			    el, NFTNL_SET_ELEM_VERDICT,
			    e[j].verdict == IRV_JUMP   ? (uint32_t)NFT_JUMP
			    : e[j].verdict == IRV_DROP ? NF_DROP
						       : NF_ACCEPT);
			if (e[j].verdict == IRV_JUMP)
				nftnl_set_elem_set_str(el, NFTNL_SET_ELEM_CHAIN,
						       e[j].chain);
			one = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
			nftnl_set_elem_nlmsg_build_payload(nlh, el);
			mnl_attr_nest_end(nlh, one);
			nftnl_set_elem_free(el);
		}
		mnl_attr_nest_end(nlh, list);
		batch_done(b, nlh);
	}
}

/* --- rules ------------------------------------------------------------------
 */

struct rb {
	struct nftnl_rule *r;
	int family;  /* meta nfproto already checked in this rule */
	bool bridge; /* a bridge chain: its dispatch by ether type is the
		      * family check (meta nfproto reads NFPROTO_BRIDGE) */
};

static void e_meta(struct rb *rb, uint32_t key, uint32_t reg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");

	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, reg);
	nftnl_rule_add_expr(rb->r, e);
}

static void e_payload(struct rb *rb, uint32_t base, uint32_t off, uint32_t len,
		      uint32_t reg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");

	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, reg);
	nftnl_rule_add_expr(rb->r, e);
}

static void e_cmp(struct rb *rb, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	nftnl_rule_add_expr(rb->r, e);
}

static void e_verdict(struct rb *rb, int verdict, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");

	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	nftnl_rule_add_expr(rb->r, e);
}

static void need_family(struct rb *rb, int family)
{
	uint8_t proto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;

	if (rb->family == family || rb->bridge)
		return;
	e_meta(rb, NFT_META_NFPROTO, NFT_REG_1);
	e_cmp(rb, NFT_CMP_EQ, &proto, 1);
	rb->family = family;
}

/* The frame fields the bridge table reads: where each lies. */
static const struct {
	int x;
	uint32_t base, off;
} frame_fields[] = {
    {IRX_ETHER_SADDR, NFT_PAYLOAD_LL_HEADER, 6},
    {IRX_ETHER_TYPE, NFT_PAYLOAD_LL_HEADER, 12},
    {IRX_ARP_HDR, NFT_PAYLOAD_NETWORK_HEADER, 0},
    {IRX_ARP_SHA, NFT_PAYLOAD_NETWORK_HEADER, 8},
    {IRX_ARP_SPA, NFT_PAYLOAD_NETWORK_HEADER, 14},
    {IRX_ND_TARGET, NFT_PAYLOAD_TRANSPORT_HEADER, 8},
    {IRX_HOPLIMIT, NFT_PAYLOAD_NETWORK_HEADER, 7},
    {IRX_IP6_LEN, NFT_PAYLOAD_NETWORK_HEADER, 4},
};

/* ct original ip saddr and the like */
static void e_ct_addr(struct rb *rb, enum ir_expr x, uint32_t reg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	uint32_t key = x == IRX_CT_OSADDR4   ? NFT_CT_SRC_IP
		       : x == IRX_CT_ODADDR4 ? NFT_CT_DST_IP
		       : x == IRX_CT_OSADDR6 ? NFT_CT_SRC_IP6
					     : NFT_CT_DST_IP6;

	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u8(e, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, reg);
	nftnl_rule_add_expr(rb->r, e);
}

static void load_frame(struct rb *rb, enum ir_expr x, uint32_t reg)
{
	size_t i;

	for (i = 0; i < sizeof(frame_fields) / sizeof(frame_fields[0]); i++)
		if (frame_fields[i].x == (int)x)
			e_payload(rb, frame_fields[i].base, frame_fields[i].off,
				  ir_expr_len(x), reg);
}

/* Loads the concatenation keys into consecutive registers from
 * NFT_REG32_00, as nft lays them out; returns the source register. */
static uint32_t load_keys(struct rb *rb, const enum ir_expr *key, int n)
{
	uint32_t words = 0;
	int i;

	for (i = 0; i < n; i++)
		if (ir_expr_family(key[i]))
			need_family(rb, ir_expr_family(key[i]));
	for (i = 0; i < n; i++) {
		uint32_t reg = NFT_REG32_00 + words;

		switch (key[i]) {
		case IRX_IIFNAME:
		case IRX_OIFNAME:
			e_meta(rb,
			       key[i] == IRX_IIFNAME ? NFT_META_IIFNAME
						     : NFT_META_OIFNAME,
			       reg);
			words += 4;
			break;
		case IRX_SADDR4:
		case IRX_DADDR4:
			e_payload(rb, NFT_PAYLOAD_NETWORK_HEADER,
				  key[i] == IRX_SADDR4 ? 12 : 16, 4, reg);
			words += 1;
			break;
		case IRX_SADDR6:
		case IRX_DADDR6:
			e_payload(rb, NFT_PAYLOAD_NETWORK_HEADER,
				  key[i] == IRX_SADDR6 ? 8 : 24, 16, reg);
			words += 4;
			break;
		case IRX_L4PROTO:
			e_meta(rb, NFT_META_L4PROTO, reg);
			words += 1;
			break;
		case IRX_DPORT:
			e_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg);
			words += 1;
			break;
		case IRX_META_PROTOCOL:
			e_meta(rb, NFT_META_PROTOCOL, reg);
			words += 1;
			break;
		case IRX_CT_OSADDR4:
		case IRX_CT_ODADDR4:
		case IRX_CT_OSADDR6:
		case IRX_CT_ODADDR6:
			e_ct_addr(rb, key[i], reg);
			words += (ir_expr_len(key[i]) + 3) / 4;
			break;
		default:
			load_frame(rb, key[i], reg);
			words += (ir_expr_len(key[i]) + 3) / 4;
			break;
		}
	}
	return NFT_REG32_00;
}

static void e_lookup(struct rb *rb, const struct ir_match *m)
{
	struct nftnl_expr *e;
	uint32_t reg = load_keys(rb, m->key, m->nkey);

	e = nftnl_expr_alloc("lookup");
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, reg);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, m->set);
	if (m->neg)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS,
				   NFT_LOOKUP_F_INV);
	nftnl_rule_add_expr(rb->r, e);
}

static void e_ct_established(struct rb *rb, const struct ir_match *m)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	uint32_t mask = ir_ct_mask(m), zero = 0;

	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	nftnl_rule_add_expr(rb->r, e);
	e = nftnl_expr_alloc("bitwise");
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
	nftnl_rule_add_expr(rb->r, e);
	e_cmp(rb, NFT_CMP_NEQ, &zero, 4);
}

/* icmpv6 type LO-HI (two compares, as nft writes a range) or one type */
static void e_nd(struct rb *rb, const struct ir_match *m)
{
	uint8_t icmpv6 = IPPROTO_ICMPV6, lo = (uint8_t)m->lo,
		hi = (uint8_t)m->hi;

	need_family(rb, AF_INET6);
	e_meta(rb, NFT_META_L4PROTO, NFT_REG_1);
	e_cmp(rb, NFT_CMP_EQ, &icmpv6, 1);
	e_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
	if (lo == hi) {
		e_cmp(rb, NFT_CMP_EQ, &lo, 1);
		return;
	}
	e_cmp(rb, NFT_CMP_GTE, &lo, 1);
	e_cmp(rb, NFT_CMP_LTE, &hi, 1);
}

/* meta l4proto or th dport, compared with one value or a range (as nft
 * writes them: cmp for one value, range for two) */
static void e_range(struct rb *rb, const struct ir_match *m)
{
	uint8_t lo[2], hi[2];
	uint32_t len = ir_expr_len(m->key[0]);
	struct nftnl_expr *e;

	if (len == 1) {
		lo[0] = (uint8_t)m->lo;
		hi[0] = (uint8_t)m->hi;
	} else {
		lo[0] = (uint8_t)(m->lo >> 8);
		lo[1] = (uint8_t)m->lo;
		hi[0] = (uint8_t)(m->hi >> 8);
		hi[1] = (uint8_t)m->hi;
	}
	load_keys(rb, m->key, 1);
	if (m->lo == m->hi) {
		e_cmp(rb, NFT_CMP_EQ, lo, len);
		return;
	}
	e = nftnl_expr_alloc("range");
	nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_OP, NFT_RANGE_EQ);
	nftnl_expr_set(e, NFTNL_EXPR_RANGE_FROM_DATA, lo, len);
	nftnl_expr_set(e, NFTNL_EXPR_RANGE_TO_DATA, hi, len);
	nftnl_rule_add_expr(rb->r, e);
}

/* key[0] == val or != val, val in network order */
static void e_cmpval(struct rb *rb, const struct ir_match *m)
{
	unsigned len = ir_expr_len(m->key[0]), i;
	uint8_t v[16];

	for (i = 0; i < len; i++)
		v[i] = (uint8_t)(m->val >> (8 * (len - 1 - i)));
	load_keys(rb, m->key, 1);
	e_cmp(rb, m->neg ? NFT_CMP_NEQ : NFT_CMP_EQ, v, len);
}

static void e_log(struct rb *rb, const struct ir_rule *r)
{
	struct nftnl_expr *e, *lim;
	uint32_t reg = load_keys(rb, &r->rl_key, 1);
	uint64_t unit = r->rate_unit[0] == 's'	 ? 1
			: r->rate_unit[0] == 'm' ? 60
						 : 3600;

	lim = nftnl_expr_alloc("limit");
	nftnl_expr_set_u64(lim, NFTNL_EXPR_LIMIT_RATE, r->rate);
	nftnl_expr_set_u64(lim, NFTNL_EXPR_LIMIT_UNIT, unit);
	nftnl_expr_set_u32(lim, NFTNL_EXPR_LIMIT_BURST, 5);
	nftnl_expr_set_u32(lim, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
	nftnl_expr_set_u32(lim, NFTNL_EXPR_LIMIT_FLAGS, 0);
	e = nftnl_expr_alloc("dynset");
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, reg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
	nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, r->rl_set);
	nftnl_expr_set(e, NFTNL_EXPR_DYNSET_EXPR, lim, 0);
	nftnl_rule_add_expr(rb->r, e);
	e = nftnl_expr_alloc("log");
	nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, r->prefix);
	nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, (uint16_t)r->group);
	nftnl_rule_add_expr(rb->r, e);
}

static void add_rule(struct batch *b, const char *table,
		     const struct ir_chain *c, size_t idx)
{
	const struct ir_rule *r = &c->r[idx];
	struct rb rb = {nftnl_rule_alloc(), 0, c->family == IRF_BRIDGE};
	struct nftnl_expr *e;
	struct nlmsghdr *nlh;
	int i;

	nftnl_rule_set_u32(rb.r, NFTNL_RULE_FAMILY, nfproto(c->family));
	nftnl_rule_set_str(rb.r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(rb.r, NFTNL_RULE_CHAIN, c->name);
	for (i = 0; i < r->nm; i++) {
		const struct ir_match *m = &r->m[i];

		switch (m->kind) {
		case IRM_CT_ESTABLISHED:
			e_ct_established(&rb, m);
			break;
		case IRM_ND:
			e_nd(&rb, m);
			break;
		case IRM_NFPROTO:
			need_family(&rb, m->family);
			break;
		case IRM_LOOKUP:
			e_lookup(&rb, m);
			break;
		case IRM_RANGE:
			e_range(&rb, m);
			break;
		case IRM_CMP:
			e_cmpval(&rb, m);
			break;
		}
	}
	if (r->counter)
		nftnl_rule_add_expr(rb.r, nftnl_expr_alloc("counter"));
	switch (r->stmt) {
	case IRST_ACCEPT:
		e_verdict(&rb, NF_ACCEPT, NULL);
		break;
	case IRST_DROP:
		e_verdict(&rb, NF_DROP, NULL);
		break;
	case IRST_JUMP:
		e_verdict(&rb, NFT_JUMP, r->target);
		break;
	case IRST_VMAP:
		e = nftnl_expr_alloc("lookup");
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG,
				   load_keys(&rb, r->vkey, r->nvkey));
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, r->target);
		nftnl_rule_add_expr(rb.r, e);
		break;
	case IRST_LOG:
		e_log(&rb, r);
		break;
	}
	nlh = batch_msg(b, c->family, NFT_MSG_NEWRULE,
			NLM_F_CREATE | NLM_F_APPEND,
			xasprintf("rule %zu of chain %s", idx + 1, c->name));
	nftnl_rule_nlmsg_build_payload(nlh, rb.r);
	batch_done(b, nlh);
	nftnl_rule_free(rb.r);
}

struct set_weight {
	const char *name;
	size_t idx, w;
};

static int sw_by_name(const void *a, const void *b)
{
	return strcmp(((const struct set_weight *)a)->name,
		      ((const struct set_weight *)b)->name);
}

static int sw_by_weight(const void *a, const void *b)
{
	const struct set_weight *x = a, *y = b;

	if (x->w != y->w)
		return x->w > y->w ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void sw_count(struct set_weight *sw, size_t n, const char *name)
{
	struct set_weight key = {.name = name}, *hit;

	if (name && (hit = bsearch(&key, sw, n, sizeof(*sw), sw_by_name)))
		hit->w++;
}

/* The order to create the sets in. The kernel finds a set by name in a
 * list of the table's sets, walked from the first created, for every
 * rule that looks one up and for every message of elements: the sets
 * that rules look up most go first. */
static size_t *set_order(const struct ir_ruleset *rs)
{
	struct set_weight *sw = xcalloc(rs->nsets + 1, sizeof(*sw));
	size_t *order = xcalloc(rs->nsets + 1, sizeof(*order));
	size_t i, j;
	int m;

	/* by the rules alone, which follow from the policy: a set keeps its
	 * place whatever containers run, and so does the cost of a delta */
	for (i = 0; i < rs->nsets; i++)
		sw[i] = (struct set_weight){rs->sets[i].name, i, 0};
	qsort(sw, rs->nsets, sizeof(*sw), sw_by_name);
	for (i = 0; i < rs->nchains; i++)
		for (j = 0; j < rs->chains[i].n; j++) {
			const struct ir_rule *r = &rs->chains[i].r[j];

			for (m = 0; m < r->nm; m++)
				if (r->m[m].kind == IRM_LOOKUP)
					sw_count(sw, rs->nsets, r->m[m].set);
			if (r->stmt == IRST_VMAP)
				sw_count(sw, rs->nsets, r->target);
			if (r->stmt == IRST_LOG)
				sw_count(sw, rs->nsets, r->rl_set);
		}
	qsort(sw, rs->nsets, sizeof(*sw), sw_by_weight);
	for (i = 0; i < rs->nsets; i++)
		order[i] = sw[i].idx;
	free(sw);
	return order;
}

/* Creates (so that the delete cannot fail) and deletes table fam NAME. */
void nft_del_table(struct batch *b, enum ir_family fam, const char *name)
{
	add_table(b, fam, name, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	add_table(b, fam, name, NFT_MSG_DELTABLE, 0);
}

/* The messages of a full apply, between batch begin and end. */
void nft_build_apply(struct batch *b, const struct ir_ruleset *rs)
{
	size_t i, j, *order = set_order(rs);

	/* delete and create anew: one transaction, so the old tables stay
	 * until the new ones are complete; the bridge table goes with the
	 * inet one, so that no frame sees one without the other */
	nft_del_table(b, IRF_INET, rs->table);
	nft_del_table(b, IRF_BRIDGE, rs->table);
	add_table(b, IRF_INET, rs->table, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	if (ir_has_family(rs, IRF_BRIDGE))
		add_table(b, IRF_BRIDGE, rs->table, NFT_MSG_NEWTABLE,
			  NLM_F_CREATE);
	for (i = 0; i < rs->nchains; i++)
		add_chain(b, rs->table, &rs->chains[i]);
	for (i = 0; i < rs->nsets; i++) {
		const struct ir_set *st = &rs->sets[order[i]];
		uint32_t id = (uint32_t)order[i] + 1; /* the IR's order */

		add_set(b, rs->table, st, id);
		add_elems(b, rs->table, st, st->e, st->n, NFT_MSG_NEWSETELEM,
			  id);
	}
	for (i = 0; i < rs->nchains; i++)
		for (j = 0; j < rs->chains[i].n; j++)
			add_rule(b, rs->table, &rs->chains[i], j);
	free(order);
}

void kernel_encode(const struct ir_ruleset *rs, char **buf, size_t *len)
{
	struct kernel k = {.seq = 1};
	struct batch b = {0};

	batch_begin(&b, &k, 0);
	nft_build_apply(&b, rs);
	batch_end(&b);
	*buf = b.buf;
	*len = b.len;
	b.buf = NULL;
	batch_free(&b);
}

/* The messages of a delta: runs of changes to one set with one direction
 * become one message each, in the delta's order. */
int nft_put_changes(struct batch *b, const struct ir_ruleset *rs,
		    const struct ir_delta *delta, char *err, size_t errlen)
{
	struct ir_elem *run = NULL;
	size_t i, j, n, cap = 0;

	for (i = 0; i < delta->n; i = j) {
		const struct ir_change *c = &delta->v[i];

		if (c->set >= rs->nsets) {
			free(run);
			snprintf(err, errlen, "delta names set %zu of %zu",
				 c->set, rs->nsets);
			return -EINVAL;
		}
		n = 0;
		for (j = i; j < delta->n && delta->v[j].set == c->set &&
			    delta->v[j].add == c->add;
		     j++)
			*PUSH(run, n, cap) = delta->v[j].e;
		add_elems(b, rs->table, &rs->sets[c->set], run, n,
			  c->add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, 0);
	}
	free(run);
	return 0;
}
