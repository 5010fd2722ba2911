/* IR -> nftables through libnftnl and libmnl: one batch per change,
 * committed atomically by the kernel, every message numbered so that an
 * error names the object that caused it. Touches only our own table. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
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
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "bulkhead/kernel.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

/* nft's datatype numbers, for set key types (nftables src/datatype.h) */
enum {
	DT_IPADDR = 7,
	DT_IP6ADDR = 8,
	DT_PROTO = 12,
	DT_SERVICE = 13,
	DT_IFNAME = 41
};
#define DT_BITS 6
#define ELEMS_PER_MSG 512

/* --- the batch ------------------------------------------------------------ */

struct batch {
	char *buf;
	size_t len, cap;
	uint32_t seq, first_seq;
	size_t last; /* offset of the last message before the end */
	char **what; /* what[seq - first_seq]: the object of each message */
	size_t nwhat, capwhat;
};

static void b_reserve(struct batch *b, size_t n)
{
	grow(&b->buf, &b->cap, b->len + n, 1);
}

/* Starts a message; the caller fills it and calls b_done(). */
static struct nlmsghdr *b_msg(struct batch *b, uint16_t type, uint16_t flags,
			      char *what)
{
	b_reserve(b, 1 << 18);
	*PUSH(b->what, b->nwhat, b->capwhat) = what;
	b->last = b->len;
	return nftnl_nlmsg_build_hdr(b->buf + b->len, type, NFPROTO_INET, flags,
				     b->seq++);
}

static void b_done(struct batch *b, struct nlmsghdr *nlh)
{
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

static void b_begin(struct batch *b)
{
	b->seq = b->first_seq = (uint32_t)time(NULL);
	b_reserve(b, 4096);
	b->len += NLMSG_ALIGN(nftnl_batch_begin(b->buf, b->seq++)->nlmsg_len);
	*PUSH(b->what, b->nwhat, b->capwhat) = xstrdup("batch begin");
}

/* Only the last message asks for an acknowledgement: errors come back for
 * any message anyway, and one ack per message would overrun the socket's
 * receive buffer on batches of thousands of messages. */
static void b_end(struct batch *b)
{
	((struct nlmsghdr *)(b->buf + b->last))->nlmsg_flags |= NLM_F_ACK;
	b_reserve(b, 4096);
	*PUSH(b->what, b->nwhat, b->capwhat) = xstrdup("batch end");
	b->len +=
	    NLMSG_ALIGN(nftnl_batch_end(b->buf + b->len, b->seq++)->nlmsg_len);
}

static void b_free(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->nwhat; i++)
		free(b->what[i]);
	free(b->what);
	free(b->buf);
}

/* Sends the batch and reads every answer. The kernel applies all of it
 * or none; the first error is reported with the object it concerns. */
static int b_send(struct batch *b, char *err, size_t errlen)
{
	struct mnl_socket *nl;
	char rbuf[16384];
	int one = 1, ret = 0, sndbuf;
	uint32_t last_seq = b->seq - 2;
	bool done = false;
	ssize_t n;

	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl) {
		ret = -errno;
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		return ret;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		snprintf(err, errlen, "netlink bind: %s", strerror(errno));
		goto out;
	}
	setsockopt(mnl_socket_get_fd(nl), SOL_NETLINK, NETLINK_EXT_ACK, &one,
		   sizeof(one));
	/* the whole transaction goes in one message: make room for it */
	sndbuf = (int)(b->len + 4096);
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUFFORCE,
		       &sndbuf, sizeof(sndbuf)))
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_SNDBUF,
			   &sndbuf, sizeof(sndbuf));
	if (mnl_socket_sendto(nl, b->buf, b->len) < 0) {
		ret = -errno;
		snprintf(err, errlen, "sending the batch (%zu bytes): %s",
			 b->len, strerror(errno));
		goto out;
	}
	while (!done) {
		struct pollfd pfd = {mnl_socket_get_fd(nl), POLLIN, 0};
		struct nlmsghdr *nlh;

		/* after an error the kernel may stay silent about the rest */
		if (poll(&pfd, 1, ret ? 100 : 60000) <= 0)
			break;
		n = mnl_socket_recvfrom(nl, rbuf, sizeof(rbuf));
		if (n < 0) {
			if (!ret) {
				ret = -errno;
				snprintf(err, errlen, "reading answers: %s",
					 strerror(errno));
			}
			break;
		}
		for (nlh = (struct nlmsghdr *)rbuf; mnl_nlmsg_ok(nlh, (int)n);
		     nlh = mnl_nlmsg_next(nlh, (int *)&n)) {
			const struct nlmsgerr *e;
			size_t idx = nlh->nlmsg_seq - b->first_seq;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			done |= nlh->nlmsg_seq == last_seq;
			e = mnl_nlmsg_get_payload(nlh);
			if (!e->error || ret)
				continue;
			ret = e->error;
			snprintf(err, errlen, "the kernel refused %s: %s",
				 idx < b->nwhat ? b->what[idx] : "a message",
				 strerror(-e->error));
		}
	}
	if (!ret && !done) {
		ret = -ETIMEDOUT;
		snprintf(err, errlen,
			 "the kernel did not acknowledge the batch");
	}
out:
	mnl_socket_close(nl);
	return ret;
}

/* --- objects ----------------------------------------------------------------
 */

static void add_table(struct batch *b, const char *name, uint16_t type,
		      uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	nlh = b_msg(b, type, flags, xasprintf("table inet %s", name));
	nftnl_table_nlmsg_build_payload(nlh, t);
	b_done(b, nlh);
	nftnl_table_free(t);
}

static void add_chain(struct batch *b, const char *table,
		      const struct ir_chain *c)
{
	struct nftnl_chain *ch = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	nftnl_chain_set_u32(ch, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, c->name);
	if (c->hook != IRH_NONE) {
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM,
				    c->hook == IRH_FORWARD ? NF_INET_FORWARD
							   : NF_INET_LOCAL_IN);
		nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, c->prio);
		nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = b_msg(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE,
		    xasprintf("chain %s", c->name));
	nftnl_chain_nlmsg_build_payload(nlh, ch);
	b_done(b, nlh);
	nftnl_chain_free(ch);
}

static unsigned type_len(enum ir_type t)
{
	switch (t) {
	case IRT_IFNAME:
	case IRT_IPV6:
		return 16;
	case IRT_IPV4:
		return 4;
	case IRT_PROTO:
		return 1;
	case IRT_PORT:
		return 2;
	}
	return 0;
}

static unsigned type_dt(enum ir_type t)
{
	static const unsigned dt[] = {[IRT_IFNAME] = DT_IFNAME,
				      [IRT_IPV4] = DT_IPADDR,
				      [IRT_IPV6] = DT_IP6ADDR,
				      [IRT_PROTO] = DT_PROTO,
				      [IRT_PORT] = DT_SERVICE};

	return dt[t];
}

/* The key as the kernel compares it: each field in network byte order,
 * padded to 4 bytes. Returns the length. */
static unsigned key_bytes(const struct ir_set *s, const u128 *v, uint8_t *out)
{
	unsigned off = 0, len, i;
	int k;

	for (k = 0; k < s->nkey; k++) {
		len = type_len(s->key[k]);
		for (i = 0; i < len; i++)
			out[off + i] = (uint8_t)(v[k] >> (8 * (len - 1 - i)));
		for (i = len; i % 4; i++)
			out[off + i] = 0;
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
		fields[k] = (uint8_t)type_len(s->key[k]);
		klen += (type_len(s->key[k]) + 3) & ~3u;
	}
	nftnl_set_set_u32(ns, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(ns, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(ns, NFTNL_SET_NAME, s->name);
	nftnl_set_set_u32(ns, NFTNL_SET_ID, id);
	nftnl_set_set_u32(ns, NFTNL_SET_KEY_TYPE, ktype);
	nftnl_set_set_u32(ns, NFTNL_SET_KEY_LEN, klen);
	if (s->flags & IRS_INTERVAL)
		flags |= NFT_SET_INTERVAL | (s->nkey > 1 ? NFT_SET_CONCAT : 0);
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
	} else if (s->nkey == 1 && s->key[0] == IRT_IFNAME) {
		nftnl_set_set_data(ns, NFTNL_SET_USERDATA, ud_plain_ifname,
				   sizeof(ud_plain_ifname));
	} else {
		nftnl_set_set_data(ns, NFTNL_SET_USERDATA, ud_concat,
				   sizeof(ud_concat));
	}
	nftnl_set_set_u32(ns, NFTNL_SET_FLAGS, flags);
	nlh = b_msg(b, NFT_MSG_NEWSET, NLM_F_CREATE,
		    xasprintf("set %s", s->name));
	nftnl_set_nlmsg_build_payload(nlh, ns);
	b_done(b, nlh);
	nftnl_set_free(ns);
}

/* Elements go in messages of ELEMS_PER_MSG, each named by its first
 * element for error reports. */
static void add_elems(struct batch *b, const char *table,
		      const struct ir_set *s, const struct ir_elem *e, size_t n,
		      uint16_t type)
{
	uint8_t key[64];
	size_t i, j;

	for (i = 0; i < n; i += ELEMS_PER_MSG) {
		struct nftnl_set *ns = nftnl_set_alloc();
		struct nlmsghdr *nlh;

		nftnl_set_set_str(ns, NFTNL_SET_TABLE, table);
		nftnl_set_set_str(ns, NFTNL_SET_NAME, s->name);
		nftnl_set_set_u32(ns, NFTNL_SET_FAMILY, NFPROTO_INET);
		for (j = i; j < n && j < i + ELEMS_PER_MSG; j++) {
			struct nftnl_set_elem *el = nftnl_set_elem_alloc();
			unsigned len = key_bytes(s, e[j].lo, key);

			nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, key, len);
			if (s->flags & IRS_INTERVAL) {
				key_bytes(s, e[j].hi, key);
				nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY_END,
						   key, len);
			}
			if (s->flags & IRS_MAP) {
				nftnl_set_elem_set_u32(
				    el, NFTNL_SET_ELEM_VERDICT,
				    e[j].verdict == IRV_JUMP
					? (uint32_t)NFT_JUMP
				    : e[j].verdict == IRV_DROP ? NF_DROP
							       : NF_ACCEPT);
				if (e[j].verdict == IRV_JUMP)
					nftnl_set_elem_set_str(
					    el, NFTNL_SET_ELEM_CHAIN,
					    e[j].chain);
			}
			nftnl_set_elem_add(ns, el);
		}
		nlh = b_msg(b, type,
			    type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0,
			    xasprintf("%s %zu elements of set %s",
				      type == NFT_MSG_NEWSETELEM ? "adding"
								 : "deleting",
				      j - i, s->name));
		nftnl_set_elems_nlmsg_build_payload(nlh, ns);
		b_done(b, nlh);
		nftnl_set_free(ns);
	}
}

/* --- rules ------------------------------------------------------------------
 */

struct rb {
	struct nftnl_rule *r;
	int family; /* meta nfproto already checked in this rule */
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

	if (rb->family == family)
		return;
	e_meta(rb, NFT_META_NFPROTO, NFT_REG_1);
	e_cmp(rb, NFT_CMP_EQ, &proto, 1);
	rb->family = family;
}

/* Loads the concatenation keys into consecutive registers from
 * NFT_REG32_00, as nft lays them out; returns the source register. */
static uint32_t load_keys(struct rb *rb, const enum ir_expr *key, int n)
{
	uint32_t words = 0;
	int i;

	for (i = 0; i < n; i++)
		if (key[i] >= IRX_SADDR4 && key[i] <= IRX_DADDR6)
			need_family(rb,
				    key[i] <= IRX_DADDR4 ? AF_INET : AF_INET6);
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

static void e_ct_established(struct rb *rb)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	uint32_t mask = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) |
			NF_CT_STATE_BIT(IP_CT_RELATED),
		 zero = 0;

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

static void e_nd(struct rb *rb)
{
	uint8_t icmpv6 = IPPROTO_ICMPV6, lo = 133, hi = 136;

	need_family(rb, AF_INET6);
	e_meta(rb, NFT_META_L4PROTO, NFT_REG_1);
	e_cmp(rb, NFT_CMP_EQ, &icmpv6, 1);
	e_payload(rb, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
	e_cmp(rb, NFT_CMP_GTE, &lo, 1);
	e_cmp(rb, NFT_CMP_LTE, &hi, 1);
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
	struct rb rb = {nftnl_rule_alloc(), 0};
	struct nftnl_expr *e;
	struct nlmsghdr *nlh;
	int i;

	nftnl_rule_set_u32(rb.r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(rb.r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(rb.r, NFTNL_RULE_CHAIN, c->name);
	for (i = 0; i < r->nm; i++) {
		const struct ir_match *m = &r->m[i];

		switch (m->kind) {
		case IRM_CT_ESTABLISHED:
			e_ct_established(&rb);
			break;
		case IRM_ND:
			e_nd(&rb);
			break;
		case IRM_NFPROTO:
			need_family(&rb, m->family);
			break;
		case IRM_LOOKUP:
			e_lookup(&rb, m);
			break;
		}
	}
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
	nlh = b_msg(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
		    xasprintf("rule %zu of chain %s", idx + 1, c->name));
	nftnl_rule_nlmsg_build_payload(nlh, rb.r);
	b_done(b, nlh);
	nftnl_rule_free(rb.r);
}

int kernel_apply(const struct ir_ruleset *rs, char *err, size_t errlen)
{
	struct batch b = {0};
	size_t i, j;
	int ret;

	b_begin(&b);
	/* create (so that the delete cannot fail), delete, create anew:
	 * one transaction, so the old table stays until the new one is
	 * complete */
	add_table(&b, rs->table, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	add_table(&b, rs->table, NFT_MSG_DELTABLE, 0);
	add_table(&b, rs->table, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	for (i = 0; i < rs->nchains; i++)
		add_chain(&b, rs->table, &rs->chains[i]);
	for (i = 0; i < rs->nsets; i++)
		add_set(&b, rs->table, &rs->sets[i], (uint32_t)i + 1);
	for (i = 0; i < rs->nsets; i++)
		add_elems(&b, rs->table, &rs->sets[i], rs->sets[i].e,
			  rs->sets[i].n, NFT_MSG_NEWSETELEM);
	for (i = 0; i < rs->nchains; i++)
		for (j = 0; j < rs->chains[i].n; j++)
			add_rule(&b, rs->table, &rs->chains[i], j);
	b_end(&b);
	ret = b_send(&b, err, errlen);
	b_free(&b);
	return ret;
}

int kernel_apply_delta(const struct ir_ruleset *rs,
		       const struct ir_delta *delta, char *err, size_t errlen)
{
	struct batch b = {0};
	struct ir_elem *run = NULL;
	size_t i, j, n, cap = 0;
	int ret;

	if (!delta->n)
		return 0;
	b_begin(&b);
	/* runs of changes to one set with one direction become one message
	 * each, in the delta's order */
	for (i = 0; i < delta->n; i = j) {
		const struct ir_change *c = &delta->v[i];

		if (c->set >= rs->nsets) {
			b_free(&b);
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
		add_elems(&b, rs->table, &rs->sets[c->set], run, n,
			  c->add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
	}
	b_end(&b);
	ret = b_send(&b, err, errlen);
	b_free(&b);
	free(run);
	return ret;
}

int kernel_flush(const char *table, char *err, size_t errlen)
{
	struct batch b = {0};
	int ret;

	b_begin(&b);
	add_table(&b, table, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	add_table(&b, table, NFT_MSG_DELTABLE, 0);
	b_end(&b);
	ret = b_send(&b, err, errlen);
	b_free(&b);
	return ret;
}
