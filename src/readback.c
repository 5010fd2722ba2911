/* The read-back: our tables listed through netlink dumps and decoded
 * into the IR, so that what the kernel holds compares with what is
 * wanted. */
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
		klen += (ir_type_len(key[n++]) + 3) & ~3u;
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
		n = ir_type_len(s->key[k]);
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
