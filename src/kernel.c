/* IR -> nftables through libnftnl and libmnl: one batch per change,
 * committed atomically by the kernel, every message numbered so that an
 * error names the object that caused it. Touches only our own tables
 * (inet NAME and bridge NAME). */
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

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

/* nft's datatype numbers, for set key types (nftables src/datatype.h) */
enum {
	DT_INTEGER = 4,
	DT_IPADDR = 7,
	DT_IP6ADDR = 8,
	DT_ETHERADDR = 9,
	DT_PROTO = 12,
	DT_SERVICE = 13,
	DT_IFNAME = 41
};
#define DT_BITS 6
#define ELEMS_PER_MSG 512

/* --- the socket ----------------------------------------------------------- */

/* One netlink socket for every batch and dump: closing a socket after a
 * transaction that deleted elements waits for the kernel to free them
 * (an RCU grace period, some milliseconds), so a daemon keeps it open. */
struct kernel {
	struct mnl_socket *nl;
	uint32_t portid, seq;
};

struct kernel *kernel_open(char *err, size_t errlen)
{
	struct kernel *k = xcalloc(1, sizeof(*k));
	int one = 1;

	k->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!k->nl) {
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		goto fail;
	}
	if (mnl_socket_bind(k->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "netlink bind: %s", strerror(errno));
		goto fail;
	}
	setsockopt(mnl_socket_get_fd(k->nl), SOL_NETLINK, NETLINK_EXT_ACK, &one,
		   sizeof(one));
	k->portid = mnl_socket_get_portid(k->nl);
	k->seq = (uint32_t)time(NULL);
	return k;
fail:
	kernel_close(k);
	return NULL;
}

void kernel_close(struct kernel *k)
{
	if (!k)
		return;
	if (k->nl)
		mnl_socket_close(k->nl);
	free(k);
}

/* The nfproto of an IR family's table. */
static uint8_t nfproto(enum ir_family f)
{
	return f == IRF_BRIDGE ? NFPROTO_BRIDGE : NFPROTO_INET;
}

/* The filter priority of a family's hooks, which chain priorities are
 * relative to (nft's "priority filter"). */
static int filter_prio(enum ir_family f)
{
	return f == IRF_BRIDGE ? NF_BR_PRI_FILTER_BRIDGED : 0;
}

static const char *family_name(enum ir_family f)
{
	return f == IRF_BRIDGE ? "bridge" : "inet";
}

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
static struct nlmsghdr *b_msg(struct batch *b, enum ir_family fam,
			      uint16_t type, uint16_t flags, char *what)
{
	b_reserve(b, 1 << 18);
	*PUSH(b->what, b->nwhat, b->capwhat) = what;
	b->last = b->len;
	return nftnl_nlmsg_build_hdr(b->buf + b->len, type, nfproto(fam), flags,
				     b->seq++);
}

static void b_done(struct batch *b, struct nlmsghdr *nlh)
{
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* With gen, the kernel refuses the whole batch (ERESTART) unless the
 * ruleset is still at that generation: a delta computed from a read-back
 * never lands on a table that changed in between. */
static void b_begin(struct batch *b, const struct kernel *k, uint32_t gen)
{
	struct nlmsghdr *nlh;

	b->seq = b->first_seq = k->seq;
	b_reserve(b, 4096);
	nlh = nftnl_batch_begin(b->buf, b->seq++);
	if (gen)
		mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(gen));
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
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
 * or none; the first error is reported with the object it concerns.
 * Answers to earlier batches (late errors) are skipped by sequence. */
static int b_send(struct kernel *k, struct batch *b, char *err, size_t errlen)
{
	int fd = mnl_socket_get_fd(k->nl), ret = 0, sndbuf;
	char rbuf[16384];
	uint32_t last_seq = b->seq - 2;
	bool done = false;
	ssize_t n;

	k->seq = b->seq;
	/* the whole transaction goes in one message: make room for it */
	sndbuf = (int)(b->len + 4096);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (mnl_socket_sendto(k->nl, b->buf, b->len) < 0) {
		ret = -errno;
		snprintf(err, errlen, "sending the batch (%zu bytes): %s",
			 b->len, strerror(errno));
		return ret;
	}
	while (!done) {
		struct pollfd pfd = {fd, POLLIN, 0};
		const struct nlmsghdr *nlh;
		size_t left;

		/* after an error the kernel may stay silent about the rest */
		if (poll(&pfd, 1, ret ? 100 : 60000) <= 0)
			break;
		n = mnl_socket_recvfrom(k->nl, rbuf, sizeof(rbuf));
		if (n < 0) {
			if (!ret) {
				ret = -errno;
				snprintf(err, errlen, "reading answers: %s",
					 strerror(errno));
			}
			break;
		}
		left = (size_t)n;
		for (nlh = (const void *)rbuf; nlmsg_fits(nlh, left);
		     nlh = nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *e;
			size_t idx = nlh->nlmsg_seq - b->first_seq;

			if (nlh->nlmsg_type != NLMSG_ERROR || idx >= b->nwhat)
				continue;
			done |= nlh->nlmsg_seq == last_seq;
			e = mnl_nlmsg_get_payload(nlh);
			if (!e->error || ret)
				continue;
			ret = e->error;
			if (ret == -ERESTART && !idx) {
				ret = -EAGAIN;
				snprintf(err, errlen,
					 "the ruleset changed since it was "
					 "read; nothing applied");
				continue;
			}
			snprintf(err, errlen, "the kernel refused %s: %s",
				 b->what[idx], strerror(-e->error));
		}
	}
	if (!ret && !done) {
		ret = -ETIMEDOUT;
		snprintf(err, errlen,
			 "the kernel did not acknowledge the batch");
	}
	return ret;
}

/* --- objects ----------------------------------------------------------------
 */

static void add_table(struct batch *b, enum ir_family fam, const char *name,
		      uint16_t type, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, nfproto(fam));
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	nlh = b_msg(b, fam, type, flags,
		    xasprintf("table %s %s", family_name(fam), name));
	nftnl_table_nlmsg_build_payload(nlh, t);
	b_done(b, nlh);
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
	nlh = b_msg(b, c->family, NFT_MSG_NEWCHAIN, NLM_F_CREATE,
		    xasprintf("chain %s", c->name));
	nftnl_chain_nlmsg_build_payload(nlh, ch);
	b_done(b, nlh);
	nftnl_chain_free(ch);
}

#define type_len ir_type_len

static unsigned type_dt(enum ir_type t)
{
	static const unsigned dt[] = {
	    [IRT_IFNAME] = DT_IFNAME, [IRT_IPV4] = DT_IPADDR,
	    [IRT_IPV6] = DT_IP6ADDR,  [IRT_PROTO] = DT_PROTO,
	    [IRT_PORT] = DT_SERVICE,  [IRT_ETHER] = DT_ETHERADDR,
	    [IRT_RAW128] = DT_INTEGER};

	return dt[t];
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

		len = type_len(s->key[k]);
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
		fields[k] = (uint8_t)type_len(s->key[k]);
		klen += (type_len(s->key[k]) + 3) & ~3u;
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
	nlh = b_msg(b, s->family, NFT_MSG_NEWSET, NLM_F_CREATE,
		    xasprintf("set %s", s->name));
	nftnl_set_nlmsg_build_payload(nlh, ns);
	b_done(b, nlh);
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

		nlh = b_msg(b, s->family, type,
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
		b_done(b, nlh);
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
	nlh = b_msg(b, c->family, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
		    xasprintf("rule %zu of chain %s", idx + 1, c->name));
	nftnl_rule_nlmsg_build_payload(nlh, rb.r);
	b_done(b, nlh);
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
static void del_table(struct batch *b, enum ir_family fam, const char *name)
{
	add_table(b, fam, name, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	add_table(b, fam, name, NFT_MSG_DELTABLE, 0);
}

/* The messages of a full apply, between batch begin and end. */
static void build_apply(struct batch *b, const struct ir_ruleset *rs)
{
	size_t i, j, *order = set_order(rs);

	/* delete and create anew: one transaction, so the old tables stay
	 * until the new ones are complete; the bridge table goes with the
	 * inet one, so that no frame sees one without the other */
	del_table(b, IRF_INET, rs->table);
	del_table(b, IRF_BRIDGE, rs->table);
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

	b_begin(&b, &k, 0);
	build_apply(&b, rs);
	b_end(&b);
	*buf = b.buf;
	*len = b.len;
	b.buf = NULL;
	b_free(&b);
}

int kernel_apply(struct kernel *k, const struct ir_ruleset *rs, char *err,
		 size_t errlen)
{
	struct batch b = {0};
	int ret;

	b_begin(&b, k, 0);
	build_apply(&b, rs);
	b_end(&b);
	ret = b_send(k, &b, err, errlen);
	b_free(&b);
	return ret;
}

/* The messages of a delta: runs of changes to one set with one direction
 * become one message each, in the delta's order. */
static int put_changes(struct batch *b, const struct ir_ruleset *rs,
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

/* Sends what build put in a batch (0 or a negative errno from build). */
static int send_batch(struct kernel *k, struct batch *b, int r, char *err,
		      size_t errlen)
{
	if (!r) {
		b_end(b);
		r = b_send(k, b, err, errlen);
	}
	b_free(b);
	return r;
}

int kernel_apply_delta(struct kernel *k, const struct ir_ruleset *rs,
		       const struct ir_delta *delta, uint32_t gen, char *err,
		       size_t errlen)
{
	struct batch b = {0};

	if (!delta->n)
		return 0;
	b_begin(&b, k, gen);
	return send_batch(k, &b, put_changes(&b, rs, delta, err, errlen), err,
			  errlen);
}

int kernel_refill(struct kernel *k, const struct ir_ruleset *rs,
		  const size_t *sets, size_t nsets, const struct ir_delta *adds,
		  char *err, size_t errlen)
{
	struct batch b = {0};
	size_t i;

	b_begin(&b, k, 0);
	for (i = 0; i < nsets; i++) {
		struct nlmsghdr *nlh;

		if (sets[i] >= rs->nsets) {
			b_free(&b);
			snprintf(err, errlen, "refill names set %zu of %zu",
				 sets[i], rs->nsets);
			return -EINVAL;
		}
		/* no element list: every element of the set */
		nlh =
		    b_msg(&b, rs->sets[sets[i]].family, NFT_MSG_DELSETELEM, 0,
			  xasprintf("flushing set %s", rs->sets[sets[i]].name));
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET,
				  rs->sets[sets[i]].name);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, rs->table);
		b_done(&b, nlh);
	}
	return send_batch(k, &b, put_changes(&b, rs, adds, err, errlen), err,
			  errlen);
}

int kernel_sync(struct kernel *k, const struct ir_ruleset *want, bool replace,
		struct kernel_sync *res, char *err, size_t errlen)
{
	struct ir_ruleset *have = NULL;
	struct ir_diff d = {0};
	uint32_t gen = 0;
	int r = -EAGAIN;

	memset(res, 0, sizeof(*res));
	if (!replace) {
		r = kernel_read(k, want->table, &have, &gen, err, errlen);
		if (r)
			goto out;
		ir_diff(want, have, &d);
		r = -EAGAIN;
		if (!d.nitems) {
			r = kernel_apply_delta(k, want, &d.elems, gen, err,
					       errlen);
			res->nadd = d.nadd;
			res->ndel = d.ndel;
		}
	}
	/* a table that differs in shape, or that changed under us since it
	 * was read, is replaced whole */
	if (r == -EAGAIN) {
		res->replaced = true;
		res->nadd = ir_element_count(want);
		res->ndel = 0;
		r = kernel_apply(k, want, err, errlen);
	}
out:
	ir_diff_free(&d);
	ir_free(have);
	return r;
}

int kernel_flush(struct kernel *k, const char *table, char *err, size_t errlen)
{
	struct batch b = {0};
	int ret;

	b_begin(&b, k, 0);
	del_table(&b, IRF_INET, table);
	del_table(&b, IRF_BRIDGE, table);
	b_end(&b);
	ret = b_send(k, &b, err, errlen);
	b_free(&b);
	return ret;
}

/* --- read-back --------------------------------------------------------------
 * Our table listed through netlink dumps and decoded into the IR, so that
 * what the kernel holds can be compared with what is wanted. Only the
 * shapes kernel_apply writes are decoded; anything else is kept as
 * "foreign", which never equals a wanted rule. */

struct reader {
	struct mnl_socket *nl;
	uint32_t seq, portid;
	char *buf;
	size_t buflen;
	struct ir_ruleset *rs;
	const char *table;
	enum ir_family fam; /* of the table being read */
	int err;	    /* first decoding error */
	/* kernel_decode: the ids of the sets created so far, with their
	 * indices in rs (a message of elements may name its set by id) */
	struct set_id {
		uint32_t id;
		size_t idx;
	} * ids;
	size_t nids, capids;
};

typedef int (*dump_cb)(const struct nlmsghdr *nlh, void *data);

/* Attributes may be missing from what is decoded: NULL is nothing. */
static bool str_is(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* Sends one request and runs cb over every answer until the dump ends.
 * Returns 0, or a negative errno (-EINTR when the dump was interrupted
 * by a concurrent change, -ENOENT when the object does not exist). */
static int rd_request(struct reader *r, uint16_t type, uint16_t flags,
		      void (*build)(struct nlmsghdr *, const void *),
		      const void *obj, dump_cb cb, void *data)
{
	struct nlmsghdr *nlh;
	uint32_t seq = ++r->seq;
	ssize_t n;
	int ret;

	nlh = nftnl_nlmsg_build_hdr(r->buf, type, nfproto(r->fam), flags, seq);
	if (build)
		build(nlh, obj);
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(r->nl, r->buf, r->buflen);
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(r->buf, (size_t)n, seq, r->portid,
				 (mnl_cb_t)cb, data);
	} while (ret > MNL_CB_STOP);
	return ret < 0 ? -errno : 0;
}

static void build_table(struct nlmsghdr *nlh, const void *obj)
{
	nftnl_table_nlmsg_build_payload(nlh, (struct nftnl_table *)obj);
}

static void build_chain(struct nlmsghdr *nlh, const void *obj)
{
	nftnl_chain_nlmsg_build_payload(nlh, (struct nftnl_chain *)obj);
}

static void build_set(struct nlmsghdr *nlh, const void *obj)
{
	nftnl_set_nlmsg_build_payload(nlh, (struct nftnl_set *)obj);
}

static void build_elems(struct nlmsghdr *nlh, const void *obj)
{
	nftnl_set_elems_nlmsg_build_payload(nlh, (struct nftnl_set *)obj);
}

static void build_rule(struct nlmsghdr *nlh, const void *obj)
{
	nftnl_rule_nlmsg_build_payload(nlh, (struct nftnl_rule *)obj);
}

static int gen_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *g = nftnl_gen_alloc();

	if (!nftnl_gen_nlmsg_parse(nlh, g))
		*(uint32_t *)data = nftnl_gen_get_u32(g, NFTNL_GEN_ID);
	nftnl_gen_free(g);
	return MNL_CB_OK;
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reader *r = data;
	struct nftnl_table *t = nftnl_table_alloc();

	if (!nftnl_table_nlmsg_parse(nlh, t) &&
	    nftnl_table_is_set(t, NFTNL_TABLE_NAME) &&
	    str_is(nftnl_table_get_str(t, NFTNL_TABLE_NAME), r->table)) {
		if (nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY) ==
		    NFPROTO_BRIDGE)
			r->rs->bridge = true;
		if (nftnl_table_is_set(t, NFTNL_TABLE_FLAGS) &&
		    (nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS) &
		     NFT_TABLE_F_DORMANT))
			r->rs->dormant = true;
	}
	nftnl_table_free(t);
	return MNL_CB_OK;
}

/* The IR family of an object's nfproto; false for one we never write. */
static bool ir_family_of(uint32_t nfp, enum ir_family *f)
{
	if (nfp != NFPROTO_INET && nfp != NFPROTO_BRIDGE)
		return false;
	*f = nfp == NFPROTO_BRIDGE ? IRF_BRIDGE : IRF_INET;
	return true;
}

static enum ir_hook hook_of(enum ir_family f, uint32_t hooknum)
{
	if (f == IRF_BRIDGE)
		return hooknum == NF_BR_PRE_ROUTING ? IRH_PREROUTING : IRH_NONE;
	return hooknum == NF_INET_FORWARD    ? IRH_FORWARD
	       : hooknum == NF_INET_LOCAL_IN ? IRH_INPUT
					     : IRH_NONE;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reader *r = data;
	struct nftnl_chain *ch = nftnl_chain_alloc();
	struct ir_chain *c;
	enum ir_hook hook = IRH_NONE;
	enum ir_family fam;
	bool foreign = false;
	uint32_t hooknum;

	/* names are unique in a table: a second one is not the kernel's */
	if (nftnl_chain_nlmsg_parse(nlh, ch) ||
	    !str_is(nftnl_chain_get_str(ch, NFTNL_CHAIN_TABLE), r->table) ||
	    !nftnl_chain_get_str(ch, NFTNL_CHAIN_NAME) ||
	    !ir_family_of(nftnl_chain_get_u32(ch, NFTNL_CHAIN_FAMILY), &fam) ||
	    ir_chain_find(r->rs, nftnl_chain_get_str(ch, NFTNL_CHAIN_NAME)))
		goto out;
	if (nftnl_chain_is_set(ch, NFTNL_CHAIN_HOOKNUM)) {
		hooknum = nftnl_chain_get_u32(ch, NFTNL_CHAIN_HOOKNUM);
		hook = hook_of(fam, hooknum);
		foreign =
		    hook == IRH_NONE ||
		    strcmp(nftnl_chain_get_str(ch, NFTNL_CHAIN_TYPE),
			   "filter") ||
		    nftnl_chain_get_u32(ch, NFTNL_CHAIN_POLICY) != NF_ACCEPT;
	}
	c = ir_chain_add(r->rs, nftnl_chain_get_str(ch, NFTNL_CHAIN_NAME), hook,
			 hook != IRH_NONE
			     ? nftnl_chain_get_s32(ch, NFTNL_CHAIN_PRIO) -
				   filter_prio(fam)
			     : 0);
	c->family = fam;
	c->foreign = foreign;
out:
	nftnl_chain_free(ch);
	return MNL_CB_OK;
}

static bool dt_type(unsigned dt, enum ir_type *t)
{
	int i;

	for (i = IRT_IFNAME; i <= IRT_RAW128; i++)
		if (type_dt((enum ir_type)i) == dt) {
			*t = (enum ir_type)i;
			return true;
		}
	return false;
}

static int set_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reader *r = data;
	struct nftnl_set *ns = nftnl_set_alloc();
	enum ir_type key[IR_MAX_KEY], tmp;
	enum ir_family fam;
	uint32_t ktype, flags;
	unsigned klen = 0;
	struct ir_set *s;
	int n = 0, k;

	if (nftnl_set_nlmsg_parse(nlh, ns) ||
	    !str_is(nftnl_set_get_str(ns, NFTNL_SET_TABLE), r->table) ||
	    !nftnl_set_get_str(ns, NFTNL_SET_NAME) ||
	    !ir_family_of(nftnl_set_get_u32(ns, NFTNL_SET_FAMILY), &fam) ||
	    ir_set_find(r->rs, nftnl_set_get_str(ns, NFTNL_SET_NAME)))
		goto out;
	/* the key type is the concatenation of 6-bit datatypes, the first
	 * component in the highest bits */
	for (ktype = nftnl_set_get_u32(ns, NFTNL_SET_KEY_TYPE); ktype;
	     ktype >>= DT_BITS) {
		if (n == IR_MAX_KEY ||
		    !dt_type(ktype & ((1u << DT_BITS) - 1), &key[n]))
			break;
		klen += (type_len(key[n++]) + 3) & ~3u;
	}
	for (k = 0; k < n / 2; k++) {
		tmp = key[k];
		key[k] = key[n - 1 - k];
		key[n - 1 - k] = tmp;
	}
	flags = nftnl_set_get_u32(ns, NFTNL_SET_FLAGS);
	if (ktype || klen != nftnl_set_get_u32(ns, NFTNL_SET_KEY_LEN)) {
		/* a key we never write: keep the name, with no key, so
		 * that it differs from any wanted set */
		n = 0;
		flags = 0;
	}
	s = ir_set_add(
	    r->rs, nftnl_set_get_str(ns, NFTNL_SET_NAME),
	    ((flags & NFT_SET_INTERVAL) ? IRS_INTERVAL : 0) |
		((flags & NFT_SET_MAP) ? IRS_MAP : 0) |
		((flags & NFT_SET_EVAL) ? IRS_DYNAMIC : 0) |
		((flags & (NFT_SET_TIMEOUT | NFT_SET_EVAL)) == NFT_SET_TIMEOUT
		     ? IRS_TIMEOUT
		     : 0),
	    n, key);
	s->family = fam;
	if (s->flags & IRS_DYNAMIC) {
		s->timeout_s =
		    (unsigned)(nftnl_set_get_u64(ns, NFTNL_SET_TIMEOUT) / 1000);
		if (nftnl_set_is_set(ns, NFTNL_SET_DESC_SIZE))
			s->size = nftnl_set_get_u32(ns, NFTNL_SET_DESC_SIZE);
	}
	if ((flags & NFT_SET_MAP) &&
	    nftnl_set_get_u32(ns, NFTNL_SET_DATA_TYPE) != NFT_DATA_VERDICT)
		s->nkey = 0;
	if (nftnl_set_is_set(ns, NFTNL_SET_ID))
		*PUSH(r->ids, r->nids, r->capids) =
		    (struct set_id){nftnl_set_get_u32(ns, NFTNL_SET_ID),
				    (size_t)(s - r->rs->sets)};
out:
	nftnl_set_free(ns);
	return MNL_CB_OK;
}

/* The inverse of key_bytes(). */
static void key_values(const struct ir_set *s, const uint8_t *in, uint32_t len,
		       u128 *v)
{
	unsigned off = 0, n, i;
	int k;

	for (k = 0; k < s->nkey; k++) {
		n = type_len(s->key[k]);
		v[k] = 0;
		for (i = 0; i < n && off + i < len; i++)
			v[k] = (v[k] << 8) | in[off + i];
		off += (n + 3) & ~3u;
	}
}

struct elem_ctx {
	struct reader *r;
	struct ir_set *s;
};

/* The set a message of elements names by id, among those decoded
 * before it; the newest first, as the kernel looks. */
static struct ir_set *set_by_id(const struct reader *r,
				const struct nftnl_set *ns)
{
	uint32_t id;
	size_t i;

	if (!nftnl_set_is_set(ns, NFTNL_SET_ID))
		return NULL;
	id = nftnl_set_get_u32(ns, NFTNL_SET_ID);
	for (i = r->nids; i-- > 0;)
		if (r->ids[i].id == id)
			return &r->rs->sets[r->ids[i].idx];
	return NULL;
}

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct elem_ctx *x = data;
	struct nftnl_set *ns = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	const char *chain;
	struct nftnl_set_elem *el;
	struct ir_elem *e;
	const void *key;
	uint32_t len;

	if (nftnl_set_elems_nlmsg_parse(nlh, ns))
		goto out;
	if (!x->s) { /* kernel_decode: the message names its set */
		const char *t = nftnl_set_get_str(ns, NFTNL_SET_TABLE);
		const char *n = nftnl_set_get_str(ns, NFTNL_SET_NAME);

		if (!t || strcmp(t, x->r->table))
			goto out;
		if (n)
			x->s = ir_set_find(x->r->rs, n);
		else
			x->s = set_by_id(x->r, ns);
		if (!x->s || (x->s->flags & IRS_DYNAMIC))
			goto out;
	}
	it = nftnl_set_elems_iter_create(ns);
	for (el = nftnl_set_elems_iter_cur(it); el;
	     el = nftnl_set_elems_iter_next(it)) {
		key = nftnl_set_elem_get(el, NFTNL_SET_ELEM_KEY, &len);
		if (!key)
			continue;
		e = ir_elem_add(x->s);
		key_values(x->s, key, len, e->lo);
		key = nftnl_set_elem_get(el, NFTNL_SET_ELEM_KEY_END, &len);
		if (key)
			key_values(x->s, key, len, e->hi);
		else
			memcpy(e->hi, e->lo, sizeof(e->hi));
		if (!(x->s->flags & IRS_MAP))
			continue;
		if (!nftnl_set_elem_is_set(el, NFTNL_SET_ELEM_VERDICT)) {
			e->verdict = IRV_NONE; /* differs from ours */
			continue;
		}
		switch (
		    (int)nftnl_set_elem_get_u32(el, NFTNL_SET_ELEM_VERDICT)) {
		case NFT_JUMP:
			chain =
			    nftnl_set_elem_get_str(el, NFTNL_SET_ELEM_CHAIN);
			e->verdict = chain ? IRV_JUMP : IRV_NONE;
			e->chain = chain ? ir_intern(x->r->rs, chain) : NULL;
			break;
		case NF_DROP:
			e->verdict = IRV_DROP;
			break;
		case NF_ACCEPT:
			e->verdict = IRV_ACCEPT;
			break;
		default:
			e->verdict = IRV_NONE; /* differs from ours */
		}
	}
	nftnl_set_elems_iter_destroy(it);
out:
	nftnl_set_free(ns);
	return MNL_CB_OK;
}

/* Decoding a rule. Loads (meta, payload, ct) queue up until a cmp,
 * bitwise or lookup consumes them: the kernel reports NFT_REG32_00 back
 * as NFT_REG_1, so the register alone cannot tell a scalar compare from
 * the first key of a lookup. Besides the IR's expressions, a load can be
 * one of these, which only a cmp consumes. */
enum { X_NFPROTO = 100, X_ICMPTYPE, X_CT, X_CTMASK, X_NONE };

/* The one value a load compares or ranges over: a protocol, port, hop
 * limit or length (the bytes it takes). */
static bool dec_scalar(int x)
{
	return x == IRX_L4PROTO || x == IRX_DPORT || x == IRX_HOPLIMIT ||
	       x == IRX_IP6_LEN;
}

struct rule_dec {
	struct ir_ruleset *rs;
	struct ir_rule *r;
	int load[IR_MAX_KEY];
	int nload, r1, nd;
	uint8_t nd_lo;
	uint32_t ctmask;
	bool bad, done;
	struct ir_rule log; /* dynset seen, waiting for its log */
	bool have_log;
};

static struct ir_match *dec_match(struct rule_dec *d, enum ir_match_kind kind)
{
	struct ir_match *m;

	if (d->r->nm == IR_MAX_MATCH) {
		d->bad = true;
		return NULL;
	}
	m = &d->r->m[d->r->nm++];
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	return m;
}

static void dec_load(struct rule_dec *d, int x)
{
	if (d->nload == IR_MAX_KEY) {
		d->bad = true;
		return;
	}
	d->load[d->nload++] = x;
}

/* The queued loads as lookup keys; false when one is not a key. */
static bool dec_keys(struct rule_dec *d, enum ir_expr *key, int *n)
{
	int i;

	for (i = 0; i < d->nload; i++) {
		if (d->load[i] >= X_NFPROTO)
			return false;
		key[i] = (enum ir_expr)d->load[i];
	}
	*n = d->nload;
	d->nload = 0;
	return *n > 0;
}

static void dec_meta(struct rule_dec *d, struct nftnl_expr *e)
{
	switch (nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY)) {
	case NFT_META_NFPROTO:
		dec_load(d, X_NFPROTO);
		break;
	case NFT_META_L4PROTO:
		dec_load(d, IRX_L4PROTO);
		break;
	case NFT_META_IIFNAME:
		dec_load(d, IRX_IIFNAME);
		break;
	case NFT_META_OIFNAME:
		dec_load(d, IRX_OIFNAME);
		break;
	case NFT_META_PROTOCOL:
		dec_load(d, IRX_META_PROTOCOL);
		break;
	default:
		d->bad = true;
	}
}

static void dec_ct(struct rule_dec *d, struct nftnl_expr *e)
{
	uint32_t key = nftnl_expr_get_u32(e, NFTNL_EXPR_CT_KEY);
	bool orig =
	    nftnl_expr_is_set(e, NFTNL_EXPR_CT_DIR) &&
	    nftnl_expr_get_u8(e, NFTNL_EXPR_CT_DIR) == IP_CT_DIR_ORIGINAL;

	if (key == NFT_CT_STATE && !nftnl_expr_is_set(e, NFTNL_EXPR_CT_DIR))
		dec_load(d, X_CT);
	else if (orig && key == NFT_CT_SRC_IP)
		dec_load(d, IRX_CT_OSADDR4);
	else if (orig && key == NFT_CT_DST_IP)
		dec_load(d, IRX_CT_ODADDR4);
	else if (orig && key == NFT_CT_SRC_IP6)
		dec_load(d, IRX_CT_OSADDR6);
	else if (orig && key == NFT_CT_DST_IP6)
		dec_load(d, IRX_CT_ODADDR6);
	else
		d->bad = true;
}

static void dec_payload(struct rule_dec *d, struct nftnl_expr *e)
{
	static const struct {
		uint32_t base, off, len;
		int x;
	} known[] = {
	    {NFT_PAYLOAD_NETWORK_HEADER, 12, 4, IRX_SADDR4},
	    {NFT_PAYLOAD_NETWORK_HEADER, 16, 4, IRX_DADDR4},
	    {NFT_PAYLOAD_NETWORK_HEADER, 8, 16, IRX_SADDR6},
	    {NFT_PAYLOAD_NETWORK_HEADER, 24, 16, IRX_DADDR6},
	    {NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, IRX_DPORT},
	    {NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, X_ICMPTYPE},
	    {NFT_PAYLOAD_LL_HEADER, 6, 6, IRX_ETHER_SADDR},
	    {NFT_PAYLOAD_LL_HEADER, 12, 2, IRX_ETHER_TYPE},
	    {NFT_PAYLOAD_NETWORK_HEADER, 0, 6, IRX_ARP_HDR},
	    {NFT_PAYLOAD_NETWORK_HEADER, 8, 6, IRX_ARP_SHA},
	    {NFT_PAYLOAD_NETWORK_HEADER, 14, 4, IRX_ARP_SPA},
	    {NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, IRX_ND_TARGET},
	    {NFT_PAYLOAD_NETWORK_HEADER, 7, 1, IRX_HOPLIMIT},
	    {NFT_PAYLOAD_NETWORK_HEADER, 4, 2, IRX_IP6_LEN},
	};
	uint32_t base = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE);
	uint32_t off = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET);
	uint32_t len = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN);
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i].base == base && known[i].off == off &&
		    known[i].len == len) {
			dec_load(d, known[i].x);
			return;
		}
	d->bad = true;
}

/* A protocol (1 byte) or port (2 bytes, network order) as a number. */
static uint32_t be_value(const uint8_t *v, uint32_t len)
{
	return len == 1 ? v[0] : (uint32_t)(v[0] << 8 | v[1]);
}

/* A cmp reads the one value just loaded, or (a second bound) the value
 * the previous cmp read. */
static void dec_cmp(struct rule_dec *d, struct nftnl_expr *e)
{
	uint32_t op = nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP), len;
	const uint8_t *v = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
	struct ir_match *m;

	if (d->nload > 1 || !v || !len ||
	    nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_SREG) != NFT_REG_1) {
		d->bad = true;
		return;
	}
	if (d->nload)
		d->r1 = d->load[--d->nload];
	switch (d->r1) {
	case X_NFPROTO:
		if (op != NFT_CMP_EQ ||
		    (v[0] != NFPROTO_IPV4 && v[0] != NFPROTO_IPV6))
			break;
		m = dec_match(d, IRM_NFPROTO);
		if (m)
			m->family = v[0] == NFPROTO_IPV4 ? AF_INET : AF_INET6;
		return;
	case IRX_L4PROTO:
	case IRX_DPORT:
	case IRX_HOPLIMIT:
	case IRX_IP6_LEN:
		if (op != NFT_CMP_EQ || len != ir_expr_len((enum ir_expr)d->r1))
			break;
		m = dec_match(d, IRM_RANGE);
		if (!m)
			return;
		m->key[0] = (enum ir_expr)d->r1;
		m->lo = m->hi = be_value(v, len);
		return;
	case X_ICMPTYPE:
		/* icmpv6 type LO-HI or one type: the l4proto match just
		 * decoded belongs to it */
		m = d->r->nm ? &d->r->m[d->r->nm - 1] : NULL;
		if (!d->nd && (op == NFT_CMP_GTE || op == NFT_CMP_EQ) && m &&
		    len == 1 && m->kind == IRM_RANGE &&
		    m->key[0] == IRX_L4PROTO && m->lo == IPPROTO_ICMPV6 &&
		    m->hi == IPPROTO_ICMPV6) {
			d->r->nm--;
			if (op == NFT_CMP_GTE) {
				d->nd = 1;
				d->nd_lo = v[0];
				return;
			}
			m = dec_match(d, IRM_ND);
			if (m)
				m->lo = m->hi = v[0];
			return;
		}
		if (d->nd == 1 && op == NFT_CMP_LTE && len == 1 &&
		    v[0] >= d->nd_lo) {
			d->nd = 0;
			m = dec_match(d, IRM_ND);
			if (m) {
				m->lo = d->nd_lo;
				m->hi = v[0];
			}
			return;
		}
		break;
	case IRX_SADDR6:
	case IRX_ETHER_TYPE:
	case IRX_ARP_HDR:
	case IRX_META_PROTOCOL:
		if ((op != NFT_CMP_EQ && op != NFT_CMP_NEQ) ||
		    len != ir_expr_len((enum ir_expr)d->r1))
			break;
		m = dec_match(d, IRM_CMP);
		if (!m)
			return;
		m->key[0] = (enum ir_expr)d->r1;
		m->neg = op == NFT_CMP_NEQ;
		for (m->val = 0; len--; v++)
			m->val = (m->val << 8) | *v;
		return;
	case X_CTMASK:
		if (op == NFT_CMP_NEQ && len == 4 &&
		    !memcmp(v, "\0\0\0\0", 4)) {
			m = dec_match(d, IRM_CT_ESTABLISHED);
			if (m)
				m->lo = d->ctmask;
			d->r1 = X_NONE;
			return;
		}
		break;
	}
	d->bad = true;
}

static void dec_range(struct rule_dec *d, struct nftnl_expr *e)
{
	uint32_t llo, lhi, want;
	const uint8_t *lo = nftnl_expr_get(e, NFTNL_EXPR_RANGE_FROM_DATA, &llo);
	const uint8_t *hi = nftnl_expr_get(e, NFTNL_EXPR_RANGE_TO_DATA, &lhi);
	struct ir_match *m;
	int x;

	if (d->nload != 1 || !lo || !hi ||
	    nftnl_expr_get_u32(e, NFTNL_EXPR_RANGE_OP) != NFT_RANGE_EQ) {
		d->bad = true;
		return;
	}
	x = d->load[--d->nload];
	want = ir_expr_len((enum ir_expr)x);
	if (!dec_scalar(x) || llo != want || lhi != want ||
	    !(m = dec_match(d, IRM_RANGE))) {
		d->bad = true;
		return;
	}
	m->key[0] = (enum ir_expr)x;
	m->lo = be_value(lo, want);
	m->hi = be_value(hi, want);
}

static void dec_bitwise(struct rule_dec *d, struct nftnl_expr *e)
{
	uint32_t len, mask;
	const void *m = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &len);

	if (d->nload != 1 || d->load[0] != X_CT || !m || len != 4) {
		d->bad = true;
		return;
	}
	memcpy(&mask, m, 4);
	if (!mask || (mask & ~(IR_CT_ESTABLISHED | IR_CT_RELATED)))
		d->bad = true;
	d->ctmask = mask;
	d->nload = 0;
	d->r1 = X_CTMASK;
}

static void dec_lookup(struct rule_dec *d, struct nftnl_expr *e)
{
	const char *set = nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET);
	enum ir_expr key[IR_MAX_KEY];
	struct ir_match *m;
	int n;

	if (!dec_keys(d, key, &n) || !set) {
		d->bad = true;
		return;
	}
	if (nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_DREG)) {
		if (nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_DREG) !=
		    NFT_REG_VERDICT) {
			d->bad = true;
			return;
		}
		d->r->stmt = IRST_VMAP;
		d->r->target = ir_intern(d->rs, set);
		memcpy(d->r->vkey, key, sizeof(key));
		d->r->nvkey = n;
		d->done = true;
	} else if ((m = dec_match(d, IRM_LOOKUP))) {
		m->set = ir_intern(d->rs, set);
		memcpy(m->key, key, sizeof(key));
		m->nkey = n;
		m->neg = nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_FLAGS) &&
			 (nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_FLAGS) &
			  NFT_LOOKUP_F_INV);
	}
}

static int dec_limit(struct nftnl_expr *e, void *data)
{
	struct rule_dec *d = data;
	uint64_t unit;

	if (!str_is(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "limit") ||
	    nftnl_expr_get_u32(e, NFTNL_EXPR_LIMIT_TYPE) != NFT_LIMIT_PKTS) {
		d->bad = true;
		return 0;
	}
	unit = nftnl_expr_get_u64(e, NFTNL_EXPR_LIMIT_UNIT);
	d->log.rate = (unsigned)nftnl_expr_get_u64(e, NFTNL_EXPR_LIMIT_RATE);
	d->log.rate_unit = ir_intern(d->rs, unit == 1	   ? "second"
					    : unit == 60   ? "minute"
					    : unit == 3600 ? "hour"
							   : "?");
	return 0;
}

static void dec_dynset(struct rule_dec *d, struct nftnl_expr *e)
{
	const char *set = nftnl_expr_get_str(e, NFTNL_EXPR_DYNSET_SET_NAME);
	enum ir_expr key[IR_MAX_KEY];
	int n;

	if (!dec_keys(d, key, &n) || n != 1 || !set ||
	    nftnl_expr_get_u32(e, NFTNL_EXPR_DYNSET_OP) !=
		NFT_DYNSET_OP_UPDATE) {
		d->bad = true;
		return;
	}
	d->log.rl_set = ir_intern(d->rs, set);
	d->log.rl_key = key[0];
	d->have_log = true;
	nftnl_expr_expr_foreach(e, dec_limit, d);
}

static void dec_immediate(struct rule_dec *d, struct nftnl_expr *e)
{
	if (nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG) != NFT_REG_VERDICT) {
		d->bad = true;
		return;
	}
	switch ((int)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT)) {
	case NF_ACCEPT:
		d->r->stmt = IRST_ACCEPT;
		break;
	case NF_DROP:
		d->r->stmt = IRST_DROP;
		break;
	case NFT_JUMP:
		if (!nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN)) {
			d->bad = true;
			break;
		}
		d->r->stmt = IRST_JUMP;
		d->r->target = ir_intern(
		    d->rs, nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN));
		break;
	default:
		d->bad = true;
	}
	d->done = true;
}

static void dec_log(struct rule_dec *d, struct nftnl_expr *e)
{
	const char *prefix = nftnl_expr_get_str(e, NFTNL_EXPR_LOG_PREFIX);

	if (!d->have_log || !prefix ||
	    !nftnl_expr_is_set(e, NFTNL_EXPR_LOG_GROUP)) {
		d->bad = true;
		return;
	}
	d->r->stmt = IRST_LOG;
	d->r->rl_set = d->log.rl_set;
	d->r->rl_key = d->log.rl_key;
	d->r->rate = d->log.rate;
	d->r->rate_unit = d->log.rate_unit;
	d->r->prefix = ir_intern(d->rs, prefix);
	d->r->group = nftnl_expr_get_u16(e, NFTNL_EXPR_LOG_GROUP);
	d->done = true;
}

static void decode_rule(struct rule_dec *d, struct nftnl_rule *nr,
			struct strbuf *names)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(nr);
	struct nftnl_expr *e;

	for (e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it)) {
		const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

		if (!name)
			name = "?";
		sb_printf(names, "%s%s", names->len ? " " : "", name);
		if (d->done) /* nothing follows our verdicts */
			d->bad = true;
		else if (!strcmp(name, "meta"))
			dec_meta(d, e);
		else if (!strcmp(name, "payload"))
			dec_payload(d, e);
		else if (!strcmp(name, "cmp"))
			dec_cmp(d, e);
		else if (!strcmp(name, "ct"))
			dec_ct(d, e);
		else if (!strcmp(name, "bitwise"))
			dec_bitwise(d, e);
		else if (!strcmp(name, "range"))
			dec_range(d, e);
		else if (!strcmp(name, "lookup"))
			dec_lookup(d, e);
		else if (!strcmp(name, "dynset"))
			dec_dynset(d, e);
		else if (!strcmp(name, "log"))
			dec_log(d, e);
		else if (!strcmp(name, "counter") && !d->r->counter &&
			 !d->nload) {
			d->r->counter = true;
			d->r->packets =
			    nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
		} else if (!strcmp(name, "immediate"))
			dec_immediate(d, e);
		else
			d->bad = true;
	}
	nftnl_expr_iter_destroy(it);
	if (!d->done || d->nload || d->nd)
		d->bad = true;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reader *r = data;
	struct nftnl_rule *nr = nftnl_rule_alloc();
	struct rule_dec d = {.rs = r->rs, .r1 = X_NONE};
	struct strbuf names = {0};
	struct ir_chain *c;

	if (nftnl_rule_nlmsg_parse(nlh, nr) ||
	    !str_is(nftnl_rule_get_str(nr, NFTNL_RULE_TABLE), r->table) ||
	    !nftnl_rule_get_str(nr, NFTNL_RULE_CHAIN))
		goto out;
	c = ir_chain_find(r->rs, nftnl_rule_get_str(nr, NFTNL_RULE_CHAIN));
	if (!c)
		goto out;
	d.r = ir_rule_add(c);
	decode_rule(&d, nr, &names);
	if (d.bad) {
		char *what = xasprintf("handle %llu: %s",
				       (unsigned long long)nftnl_rule_get_u64(
					   nr, NFTNL_RULE_HANDLE),
				       names.s ? names.s : "no expressions");

		memset(d.r, 0, sizeof(*d.r));
		d.r->foreign = ir_intern(r->rs, what);
		free(what);
	}
out:
	sb_free(&names);
	nftnl_rule_free(nr);
	return MNL_CB_OK;
}

/* One pass over the table: the table, its chains, sets, each set's
 * elements, and the rules. */
static int read_pass(struct reader *r)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nftnl_chain *ch = nftnl_chain_alloc();
	struct nftnl_rule *ru = nftnl_rule_alloc();
	struct nftnl_set *ns;
	size_t i;
	int ret;

	nftnl_table_set_str(t, NFTNL_TABLE_NAME, r->table);
	ret = rd_request(r, NFT_MSG_GETTABLE, NLM_F_ACK, build_table, t,
			 table_cb, r);
	if (ret)
		goto out;
	nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, r->table);
	ret = rd_request(r, NFT_MSG_GETCHAIN, NLM_F_DUMP, build_chain, ch,
			 chain_cb, r);
	if (ret)
		goto out;
	ns = nftnl_set_alloc();
	nftnl_set_set_str(ns, NFTNL_SET_TABLE, r->table);
	ret =
	    rd_request(r, NFT_MSG_GETSET, NLM_F_DUMP, build_set, ns, set_cb, r);
	nftnl_set_free(ns);
	for (i = 0; !ret && i < r->rs->nsets; i++) {
		struct elem_ctx x = {r, &r->rs->sets[i]};

		if ((x.s->flags & IRS_DYNAMIC) || x.s->family != r->fam)
			continue; /* the datapath's state, not ours */
		ns = nftnl_set_alloc();
		nftnl_set_set_str(ns, NFTNL_SET_TABLE, r->table);
		nftnl_set_set_str(ns, NFTNL_SET_NAME, x.s->name);
		nftnl_set_set_u32(ns, NFTNL_SET_FAMILY, nfproto(x.s->family));
		ret = rd_request(r, NFT_MSG_GETSETELEM, NLM_F_DUMP, build_elems,
				 ns, elem_cb, &x);
		nftnl_set_free(ns);
	}
	if (ret)
		goto out;
	nftnl_rule_set_str(ru, NFTNL_RULE_TABLE, r->table);
	ret = rd_request(r, NFT_MSG_GETRULE, NLM_F_DUMP, build_rule, ru,
			 rule_cb, r);
out:
	nftnl_rule_free(ru);
	nftnl_chain_free(ch);
	nftnl_table_free(t);
	return ret;
}

int kernel_read(struct kernel *k, const char *table, struct ir_ruleset **out,
		uint32_t *gen, char *err, size_t errlen)
{
	struct reader r = {.table = table};
	uint32_t gen0 = 0, gen1 = 0;
	int ret = 0, tries;

	*out = NULL;
	r.nl = k->nl;
	r.portid = k->portid;
	r.seq = k->seq;
	r.buflen = 1 << 17; /* answers to dumps come in up to 32 KiB */
	r.buf = xmalloc(r.buflen);
	/* a change between the first and the last dump would give a mix of
	 * two rulesets: read again until the generation holds still */
	for (tries = 0; tries < 10; tries++) {
		gen0 = gen1 = 0;
		ir_free(r.rs);
		r.rs = ir_new(table);
		r.fam = IRF_INET;
		ret = rd_request(&r, NFT_MSG_GETGEN, NLM_F_ACK, NULL, NULL,
				 gen_cb, &gen0);
		if (!ret)
			ret = read_pass(&r);
		if (!ret) { /* the bridge table may be missing */
			r.fam = IRF_BRIDGE;
			ret = read_pass(&r);
			if (ret == -ENOENT)
				ret = 0;
			r.fam = IRF_INET;
		}
		if (!ret)
			ret = rd_request(&r, NFT_MSG_GETGEN, NLM_F_ACK, NULL,
					 NULL, gen_cb, &gen1);
		if (ret == -EINTR || (!ret && gen0 != gen1))
			continue;
		break;
	}
	k->seq = r.seq + 1;
	if (ret == -ENOENT) {
		ret = 0; /* no table: nothing programmed */
	} else if (ret) {
		snprintf(err, errlen, "reading table inet %s: %s", table,
			 strerror(-ret));
	} else if (gen0 != gen1) {
		ret = -EAGAIN;
		snprintf(err, errlen,
			 "reading table inet %s: the ruleset kept changing",
			 table);
	} else {
		ir_normalize(r.rs);
		if (gen)
			*gen = gen0;
		*out = r.rs;
		r.rs = NULL;
	}
	ir_free(r.rs);
	free(r.buf);
	free(r.ids);
	return ret;
}

void kernel_decode(const char *table, const void *buf, size_t len,
		   struct ir_ruleset *rs)
{
	struct reader r = {.table = table, .rs = rs};
	const struct nlmsghdr *nlh;

	for (nlh = buf; nlmsg_fits(nlh, len); nlh = nlmsg_next(nlh, &len)) {
		struct elem_ctx x = {&r, NULL};

		if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
			continue;
		switch (NFNL_MSG_TYPE(nlh->nlmsg_type)) {
		case NFT_MSG_NEWTABLE:
			table_cb(nlh, &r);
			break;
		case NFT_MSG_NEWCHAIN:
			chain_cb(nlh, &r);
			break;
		case NFT_MSG_NEWSET:
			set_cb(nlh, &r);
			break;
		case NFT_MSG_NEWSETELEM:
			elem_cb(nlh, &x);
			break;
		case NFT_MSG_NEWRULE:
			rule_cb(nlh, &r);
			break;
		}
	}
	free(r.ids);
}

/* --- changes made by others ------------------------------------------- */

struct kernel_watch {
	struct mnl_socket *nl;
	char buf[1 << 16];
};

struct kernel_watch *kernel_watch_open(char *err, size_t errlen)
{
	struct kernel_watch *w = xcalloc(1, sizeof(*w));
	int grp = NFNLGRP_NFTABLES, sz = 4 << 20;

	w->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK);
	if (!w->nl) {
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		goto fail;
	}
	if (mnl_socket_bind(w->nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_setsockopt(w->nl, NETLINK_ADD_MEMBERSHIP, &grp,
				  sizeof(grp)) < 0) {
		snprintf(err, errlen, "nftables event group: %s",
			 strerror(errno));
		goto fail;
	}
	/* a full replace of our table is one event per element: room for
	 * most of them (when the kernel drops some, we check the table) */
	if (setsockopt(mnl_socket_get_fd(w->nl), SOL_SOCKET, SO_RCVBUFFORCE,
		       &sz, sizeof(sz)))
		setsockopt(mnl_socket_get_fd(w->nl), SOL_SOCKET, SO_RCVBUF, &sz,
			   sizeof(sz));
	return w;
fail:
	kernel_watch_close(w);
	return NULL;
}

void kernel_watch_close(struct kernel_watch *w)
{
	if (!w)
		return;
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w);
}

int kernel_watch_fd(const struct kernel_watch *w)
{
	return mnl_socket_get_fd(w->nl);
}

/* The string attribute of type t among a message's attributes, or NULL. */
static const char *ev_str(const uint8_t *a, size_t len, uint16_t t)
{
	while (len >= sizeof(struct nlattr)) {
		const struct nlattr *at =
		    (const struct nlattr *)(const void *)a;
		size_t alen = at->nla_len, step = NLA_ALIGN(alen);

		if (alen < sizeof(*at) || alen > len)
			return NULL;
		if ((at->nla_type & NLA_TYPE_MASK) == t && alen > sizeof(*at) &&
		    memchr(a + sizeof(*at), 0, alen - sizeof(*at)))
			return (const char *)(a + sizeof(*at));
		if (step >= len)
			return NULL;
		a += step;
		len -= step;
	}
	return NULL;
}

/* How much an event says: a deleted table says more than the rules and
 * elements that went with it, and is what a log line should name. */
static int ev_rank(uint16_t msg)
{
	switch (msg) {
	case NFT_MSG_DELTABLE:
		return 6;
	case NFT_MSG_DELCHAIN:
	case NFT_MSG_DELSET:
		return 5;
	case NFT_MSG_NEWTABLE:
	case NFT_MSG_NEWCHAIN:
	case NFT_MSG_NEWSET:
		return 4;
	case NFT_MSG_DELRULE:
	case NFT_MSG_NEWRULE:
		return 3;
	case NFT_MSG_DELSETELEM:
	case NFT_MSG_NEWSETELEM:
		return 2;
	default:
		return 1;
	}
}

static const char *ev_name(uint16_t msg)
{
	switch (msg) {
	case NFT_MSG_NEWTABLE:
		return "table added";
	case NFT_MSG_DELTABLE:
		return "table deleted";
	case NFT_MSG_NEWCHAIN:
		return "chain added";
	case NFT_MSG_DELCHAIN:
		return "chain deleted";
	case NFT_MSG_NEWRULE:
		return "rule added";
	case NFT_MSG_DELRULE:
		return "rule deleted";
	case NFT_MSG_NEWSET:
		return "set added";
	case NFT_MSG_DELSET:
		return "set deleted";
	case NFT_MSG_NEWSETELEM:
		return "elements added";
	case NFT_MSG_DELSETELEM:
		return "elements deleted";
	default:
		return "changed";
	}
}

int kernel_event_foreign(const void *buf, size_t len, uint32_t self,
			 const struct ir_ruleset *rs, char *what,
			 size_t whatlen)
{
	const void *p = buf;
	int best = 0;

	for (; nlmsg_fits(p, len); p = nlmsg_next(p, &len)) {
		const struct nlmsghdr *nh = p;
		const struct nfgenmsg *g;
		const uint8_t *attrs;
		size_t alen, hdr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*g));
		uint16_t msg = nh->nlmsg_type & 0xff;
		const char *table, *set;
		const struct ir_set *s;

		if (nh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES ||
		    msg == NFT_MSG_NEWGEN || nh->nlmsg_len < hdr ||
		    nh->nlmsg_pid == self)
			continue;
		g = (const struct nfgenmsg *)(const void *)((const uint8_t *)p +
							    NLMSG_HDRLEN);
		attrs = (const uint8_t *)p + hdr;
		alen = nh->nlmsg_len - hdr;
		table = ev_str(attrs, alen, 1); /* NFTA_*_TABLE, _NAME */
		if ((g->nfgen_family != NFPROTO_INET &&
		     g->nfgen_family != NFPROTO_BRIDGE) ||
		    !table || strcmp(table, rs->table))
			continue;
		/* elements the packet path adds and times out are not news */
		set = msg == NFT_MSG_NEWSETELEM || msg == NFT_MSG_DELSETELEM
			  ? ev_str(attrs, alen, NFTA_SET_ELEM_LIST_SET)
			  : NULL;
		s = set ? ir_set_find(rs, set) : NULL;
		if (s && (s->flags & IRS_DYNAMIC))
			continue;
		if (ev_rank(msg) > best) {
			best = ev_rank(msg);
			snprintf(what, whatlen, "%s%s%s", ev_name(msg),
				 set ? " in set " : "", set ? set : "");
		}
	}
	return best;
}

int kernel_watch_read(struct kernel_watch *w, const struct kernel *k,
		      const struct ir_ruleset *rs, char *what, size_t whatlen)
{
	int best = 0, r;
	char one[160];
	ssize_t n;

	for (;;) {
		n = recv(mnl_socket_get_fd(w->nl), w->buf, sizeof(w->buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			/* events were lost: anything may have happened */
			if (!best) {
				best = 1;
				snprintf(what, whatlen,
					 "events lost (the socket overran)");
			}
			continue;
		}
		if (n <= 0)
			break;
		r = rs ? kernel_event_foreign(w->buf, (size_t)n, k->portid, rs,
					      one, sizeof(one))
		       : 0;
		if (r > best) {
			best = r;
			snprintf(what, whatlen, "%s", one);
		}
	}
	return best > 0;
}

uint32_t kernel_portid(const struct kernel *k)
{
	return k->portid;
}
