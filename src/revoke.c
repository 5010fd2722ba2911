/* Revocation: conntrack entries read through libnetfilter_conntrack,
 * judged by trace's decision under the state in force, the refused ones
 * deleted. The daemon keeps the table's entries in an index of its own,
 * kept by conntrack's events, so that a sweep reads memory, not the
 * kernel. Touches conntrack only; never an entry that no managed
 * container is an end of. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>

#include "bulkhead/revoke.h"

/* A conntrack entry: its original tuple (to delete it by) and the flow
 * judged (after DNAT, what it reached). */
struct tflow {
	struct revoke_flow f;
	u128 osrc, odst;
	uint16_t osport, odport, icmp_id, zone;
	uint8_t icmp_type, icmp_code;
	uint8_t state; /* T_FREE, T_USED, T_GONE (a tombstone) */
	uint32_t tag;  /* what the event callback gave it at its opening */
	/* its place in the chains of its two ends' addresses ([0]: the
	 * source, [1]: what it reached), as nodes: slot * 2 + end */
	uint32_t next[2], prev[2];
	uint32_t mark; /* the last sweep that judged it */
	/* from a read of the table: the kernel may never tell its end (an
	 * entry made before anyone listened, see destroy()) */
	bool silent;
};
enum { T_FREE, T_USED, T_GONE };
#define NO_NODE UINT32_MAX

/* An address's chain: every tracked flow with an end there, so that a
 * container's leaving judges its own flows, not the whole index. */
struct achain {
	int family; /* 0: a free slot */
	u128 addr;
	uint32_t head;
};

struct revoke {
	struct nfct_handle *h;
	/* the index: open addressing by original tuple, cap a power of
	 * two; tracking once revoke_track() seeded it */
	struct nfct_handle *ev;
	struct tflow *t;
	size_t cap, used, gone;
	/* the chains by address, open addressing, cap a power of two; a
	 * chain that empties keeps its slot until the map is rebuilt */
	struct achain *a;
	size_t acap, aused;
	uint32_t marks;
	bool tracking, lost;
	unsigned long overruns; /* times the event socket overran */
	/* flows as they open and end, to whom asked (the flow log) */
	revoke_event_fn *on_event;
	void *event_ctx;
};

struct revoke *revoke_new(char *err, size_t errlen)
{
	struct revoke *rv = xcalloc(1, sizeof(*rv));

	rv->h = nfct_open(CONNTRACK, 0);
	if (!rv->h) {
		snprintf(err, errlen, "conntrack netlink socket: %s",
			 strerror(errno));
		free(rv);
		return NULL;
	}
	return rv;
}

void revoke_free(struct revoke *rv)
{
	if (!rv)
		return;
	nfct_close(rv->h);
	if (rv->ev)
		nfct_close(rv->ev);
	free(rv->t);
	free(rv->a);
	free(rv);
}

/* --- the index ---------------------------------------------------------------
 */

static bool key_eq(const struct tflow *a, const struct tflow *b)
{
	return a->f.family == b->f.family && a->f.proto == b->f.proto &&
	       a->osrc == b->osrc && a->odst == b->odst &&
	       a->osport == b->osport && a->odport == b->odport &&
	       a->icmp_id == b->icmp_id && a->icmp_type == b->icmp_type &&
	       a->icmp_code == b->icmp_code && a->zone == b->zone;
}

static size_t key_hash(const struct tflow *t)
{
	uint64_t h = 1469598103934665603ull;
	uint64_t w[] = {(uint64_t)t->osrc,
			(uint64_t)(t->osrc >> 64),
			(uint64_t)t->odst,
			(uint64_t)(t->odst >> 64),
			(uint64_t)t->osport << 48 | (uint64_t)t->odport << 32 |
			    (uint64_t)t->icmp_id << 16 | t->zone,
			(uint64_t)t->f.family << 24 |
			    (uint64_t)t->f.proto << 16 |
			    (uint64_t)t->icmp_type << 8 | t->icmp_code};
	size_t i;

	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		h ^= w[i];
		h *= 1099511628211ull;
		h ^= h >> 29;
	}
	return (size_t)h;
}

/* The slot holding t's key, or (add) the one to put it in. */
static struct tflow *slot(struct revoke *rv, const struct tflow *t, bool add)
{
	size_t i = key_hash(t) & (rv->cap - 1), n;
	struct tflow *grave = NULL;

	for (n = 0; n < rv->cap; n++, i = (i + 1) & (rv->cap - 1)) {
		struct tflow *s = &rv->t[i];

		if (s->state == T_FREE)
			return add ? (grave ? grave : s) : NULL;
		if (s->state == T_GONE) {
			if (!grave)
				grave = s;
			continue;
		}
		if (key_eq(s, t))
			return s;
	}
	return add ? grave : NULL;
}

static size_t addr_hash(int family, u128 a)
{
	uint64_t h = ((uint64_t)a ^ (uint64_t)(a >> 64) ^ (uint64_t)family) *
		     0x9e3779b97f4a7c15ull;

	return (size_t)(h ^ h >> 32);
}

/* The chain of family/a; with add, made when there is none (the map
 * has room: chain_link makes it). */
static struct achain *chain(struct revoke *rv, int family, u128 a, bool add)
{
	size_t i, n;

	if (!rv->acap)
		return NULL;
	i = addr_hash(family, a) & (rv->acap - 1);
	for (n = 0; n < rv->acap; n++, i = (i + 1) & (rv->acap - 1)) {
		struct achain *c = &rv->a[i];

		if (!c->family) {
			if (!add)
				return NULL;
			c->family = family;
			c->addr = a;
			c->head = NO_NODE;
			rv->aused++;
			return c;
		}
		if (c->family == family && c->addr == a)
			return c;
	}
	return NULL;
}

static uint32_t *next_of(struct revoke *rv, uint32_t node)
{
	return &rv->t[node >> 1].next[node & 1];
}

static uint32_t *prev_of(struct revoke *rv, uint32_t node)
{
	return &rv->t[node >> 1].prev[node & 1];
}

static u128 end_addr(const struct tflow *t, unsigned end)
{
	return end ? t->f.daddr : t->f.saddr;
}

static void chain_link(struct revoke *rv, struct tflow *t)
{
	uint32_t node = (uint32_t)(t - rv->t) * 2;
	unsigned e;

	for (e = 0; e < 2; e++, node++) {
		struct achain *c = chain(rv, t->f.family, end_addr(t, e), true);

		t->prev[e] = NO_NODE;
		t->next[e] = c->head;
		if (c->head != NO_NODE)
			*prev_of(rv, c->head) = node;
		c->head = node;
	}
}

static void chain_unlink(struct revoke *rv, struct tflow *t)
{
	uint32_t node = (uint32_t)(t - rv->t) * 2;
	unsigned e;

	for (e = 0; e < 2; e++, node++) {
		uint32_t p = t->prev[e], n = t->next[e];

		if (p == NO_NODE)
			chain(rv, t->f.family, end_addr(t, e), false)->head = n;
		else
			*next_of(rv, p) = n;
		if (n != NO_NODE)
			*prev_of(rv, n) = p;
	}
}

/* The chains made anew from the flows in the index: when it moves its
 * slots, or when chains emptied by flows gone fill the map. */
static void chains_rebuild(struct revoke *rv)
{
	size_t i;

	free(rv->a);
	rv->acap = 1024;
	while (rv->acap < (rv->used * 2 + 2) * 4)
		rv->acap *= 2;
	rv->a = xcalloc(rv->acap, sizeof(*rv->a));
	rv->aused = 0;
	for (i = 0; i < rv->cap; i++)
		if (rv->t[i].state == T_USED)
			chain_link(rv, &rv->t[i]);
}

static void index_grow(struct revoke *rv)
{
	struct tflow *old = rv->t;
	size_t i, oldcap = rv->cap;

	rv->cap = rv->cap ? rv->cap * 2 : 1024;
	while (rv->used * 2 > rv->cap)
		rv->cap *= 2;
	rv->t = xcalloc(rv->cap, sizeof(*rv->t));
	rv->gone = 0;
	for (i = 0; i < oldcap; i++)
		if (old[i].state == T_USED)
			*slot(rv, &old[i], true) = old[i];
	free(old);
	chains_rebuild(rv);
}

/* The entry for t, new (else NULL: it was in already). */
static struct tflow *index_put(struct revoke *rv, const struct tflow *t)
{
	struct tflow *s;

	if ((rv->used + rv->gone + 1) * 10 > rv->cap * 7)
		index_grow(rv);
	s = slot(rv, t, true);
	if (s->state == T_USED)
		return NULL;
	if (s->state == T_GONE)
		rv->gone--;
	*s = *t;
	s->state = T_USED;
	s->mark = 0;
	rv->used++;
	/* two new chains at most: the map stays under half full */
	if ((rv->aused + 2) * 2 > rv->acap)
		chains_rebuild(rv); /* links s too */
	else
		chain_link(rv, s);
	return s;
}

static void index_del(struct revoke *rv, const struct tflow *t)
{
	struct tflow *s = rv->cap ? slot(rv, t, false) : NULL;

	if (!s)
		return;
	chain_unlink(rv, s);
	s->state = T_GONE;
	rv->used--;
	rv->gone++;
}

/* --- the judge (pure) ------------------------------------------------------
 */

int revoke_addr_cmp(const void *a, const void *b)
{
	const struct revoke_addr *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return (x->addr > y->addr) - (x->addr < y->addr);
}

bool revoke_addr_has(const struct revoke_addr *sorted, size_t n, int family,
		     u128 a)
{
	const struct revoke_addr key = {.family = family, .addr = a};

	return n && bsearch(&key, sorted, n, sizeof(*sorted), revoke_addr_cmp);
}

bool revoke_addr_in(const struct revoke_addr *v, size_t n, int family, u128 a)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].family == family && v[i].addr == a)
			return true;
	return false;
}

static void end_name(struct strbuf *b, const struct inv_container *c,
		     int family, u128 a, bool host)
{
	char buf[64];

	if (c) {
		sb_puts(b, c->name);
		return;
	}
	if (host) {
		sb_puts(b, "host");
		return;
	}
	addr_format(family, a, buf, sizeof(buf));
	sb_puts(b, buf);
}

/* Whether the source's service may reach f's destination outside by an
 * FQDN peer's addresses as they are programmed now. */
static bool fqdn_allows(const struct revoke_judge *j,
			const struct trace_decision *d,
			const struct revoke_flow *f)
{
	const u128 key[] = {f->daddr, f->proto, f->dport};
	const struct ir_set *s;
	const char *name;

	if (!j->rs || d->src_svc < 0 || d->dst)
		return false;
	name = compile_fqdn_set(j->cc, (size_t)d->src_svc, f->family);
	s = name ? ir_set_find(j->rs, name) : NULL;
	return s && s->nkey == 3 && ir_set_lookup(s, key, 3);
}

/* Whether an end of f is an address a container gave up. */
static bool touches_gone(const struct revoke_judge *j,
			 const struct revoke_flow *f)
{
	return revoke_addr_in(j->gone, j->ngone, f->family, f->saddr) ||
	       revoke_addr_in(j->gone, j->ngone, f->family, f->daddr);
}

bool revoke_keep(const struct revoke_judge *j, const struct revoke_flow *f,
		 char *why, size_t whylen)
{
	bool to_host = revoke_addr_has(j->host, j->nhost, f->family, f->daddr);
	bool gone = touches_gone(j, f);
	struct trace_decision d;
	struct strbuf b = {0};
	char proto[16];

	if (trace_decide_ix(j->cc, j->p, j->ix, f->family, f->saddr, f->daddr,
			    to_host, f->proto, f->dport, &d))
		return true;
	if (!gone && (d.allowed || (!d.src && !d.dst) || fqdn_allows(j, &d, f)))
		return true; /* allowed, or touches nothing of ours */
	end_name(&b, d.src, f->family, f->saddr, false);
	sb_puts(&b, " -> ");
	end_name(&b, d.dst, f->family, f->daddr, to_host);
	sb_printf(&b, " %u/%s (%s)", f->dport,
		  proto_name(f->proto, proto, sizeof(proto)),
		  gone ? "container left" : d.reason);
	snprintf(why, whylen, "%s", b.s);
	sb_free(&b);
	return false;
}

/* Whether f is to be judged at all: with only_gone, not when neither end
 * was given up (a look at two addresses, not a decision). */
static bool judged(const struct revoke_judge *j, const struct revoke_flow *f)
{
	return !j->only_gone || touches_gone(j, f);
}

/* --- the sweep -------------------------------------------------------------
 */

struct sweep {
	struct revoke *rv;
	const struct revoke_judge *j;
	/* the flows to end, and why each (said once it has ended) */
	struct ending {
		struct tflow t;
		char *why;
	} * end;
	size_t nend, capend, seen;
	/* the pairs ended, each once, with a count */
	char **why;
	size_t *nwhy, nwhys, capwhys, capn;
};

static u128 get_addr(const struct nf_conntrack *ct, int family, int a4, int a6)
{
	const uint8_t *p;

	if (family == AF_INET)
		return ntohl(nfct_get_attr_u32(ct, a4));
	p = nfct_get_attr(ct, a6);
	return p ? be_read(p, 16) : 0;
}

static void note_why(struct sweep *s, const char *why)
{
	size_t i;

	for (i = 0; i < s->nwhys; i++)
		if (!strcmp(s->why[i], why)) {
			s->nwhy[i]++;
			return;
		}
	grow(&s->nwhy, &s->capn, s->nwhys + 1, sizeof(*s->nwhy));
	s->nwhy[s->nwhys] = 1;
	*PUSH(s->why, s->nwhys, s->capwhys) = xstrdup(why);
}

static bool ported(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
	       proto == IPPROTO_SCTP;
}

/* A TCP connection that has closed (TIME_WAIT, CLOSE): nothing flows
 * in it, and a new SYN on its tuple is a new connection, judged anew. */
static bool closed(const struct nf_conntrack *ct)
{
	uint8_t st;

	if (nfct_get_attr_u8(ct, ATTR_L4PROTO) != IPPROTO_TCP ||
	    !nfct_attr_is_set(ct, ATTR_TCP_STATE))
		return false;
	st = nfct_get_attr_u8(ct, ATTR_TCP_STATE);
	return st == TCP_CONNTRACK_TIME_WAIT || st == TCP_CONNTRACK_CLOSE;
}

/* An entry as the index keeps it; false for a family we do not judge. */
static bool ct_key(const struct nf_conntrack *ct, struct tflow *t)
{
	struct revoke_flow *f = &t->f;
	bool dnat;

	memset(t, 0, sizeof(*t));
	f->family = nfct_get_attr_u8(ct, ATTR_L3PROTO);
	if (f->family != AF_INET && f->family != AF_INET6)
		return false;
	f->proto = nfct_get_attr_u8(ct, ATTR_L4PROTO);
	t->osrc = f->saddr =
	    get_addr(ct, f->family, ATTR_IPV4_SRC, ATTR_IPV6_SRC);
	t->odst = get_addr(ct, f->family, ATTR_IPV4_DST, ATTR_IPV6_DST);
	/* after DNAT (a published port) the flow reached what its reply
	 * comes from */
	dnat = nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_DST_NAT;
	f->daddr = dnat ? get_addr(ct, f->family, ATTR_REPL_IPV4_SRC,
				   ATTR_REPL_IPV6_SRC)
			: t->odst;
	if (ported(f->proto)) {
		t->osport = f->sport =
		    ntohs(nfct_get_attr_u16(ct, ATTR_PORT_SRC));
		t->odport = ntohs(nfct_get_attr_u16(ct, ATTR_PORT_DST));
		f->dport =
		    dnat ? ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC))
			 : t->odport;
	} else if (f->proto == IPPROTO_ICMP || f->proto == IPPROTO_ICMPV6) {
		t->icmp_id = ntohs(nfct_get_attr_u16(ct, ATTR_ICMP_ID));
		t->icmp_type = nfct_get_attr_u8(ct, ATTR_ICMP_TYPE);
		t->icmp_code = nfct_get_attr_u8(ct, ATTR_ICMP_CODE);
	}
	if (nfct_attr_is_set(ct, ATTR_ZONE))
		t->zone = nfct_get_attr_u16(ct, ATTR_ZONE);
	return true;
}

static void put_addr(struct nf_conntrack *ct, int family, u128 a, int a4,
		     int a6)
{
	uint8_t v[16];
	int i;

	if (family == AF_INET) {
		nfct_set_attr_u32(ct, a4, htonl((uint32_t)a));
		return;
	}
	for (i = 15; i >= 0; i--, a >>= 8)
		v[i] = (uint8_t)a;
	nfct_set_attr(ct, a6, v);
}

/* A conntrack object holding t's original tuple, to ask about or delete
 * the entry by. */
static struct nf_conntrack *tuple_ct(const struct tflow *t)
{
	struct nf_conntrack *ct = nfct_new();

	nfct_set_attr_u8(ct, ATTR_L3PROTO, (uint8_t)t->f.family);
	nfct_set_attr_u8(ct, ATTR_L4PROTO, t->f.proto);
	put_addr(ct, t->f.family, t->osrc, ATTR_IPV4_SRC, ATTR_IPV6_SRC);
	put_addr(ct, t->f.family, t->odst, ATTR_IPV4_DST, ATTR_IPV6_DST);
	if (ported(t->f.proto)) {
		nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(t->osport));
		nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(t->odport));
	} else if (t->f.proto == IPPROTO_ICMP || t->f.proto == IPPROTO_ICMPV6) {
		nfct_set_attr_u16(ct, ATTR_ICMP_ID, htons(t->icmp_id));
		nfct_set_attr_u8(ct, ATTR_ICMP_TYPE, t->icmp_type);
		nfct_set_attr_u8(ct, ATTR_ICMP_CODE, t->icmp_code);
	}
	if (t->zone)
		nfct_set_attr_u16(ct, ATTR_ZONE, t->zone);
	return ct;
}

/* Deletes the entry by its original tuple: 0, or 1 when it was gone
 * already (it ended on its own; or the index held it from the table's
 * first read, and the kernel tells no end of an entry made before
 * anyone listened: nf_conntrack_events=2), or -errno. */
static int destroy(struct revoke *rv, const struct tflow *t)
{
	struct nf_conntrack *ct = tuple_ct(t);
	int r = nfct_query(rv->h, NFCT_Q_DESTROY, ct);

	nfct_destroy(ct);
	if (r)
		return errno == ENOENT ? 1 : -errno;
	return 0;
}

/* The entry's counters (nf_conntrack_acct) into ev, when it has them. */
static void counters_of(const struct nf_conntrack *ct, struct revoke_event *ev)
{
	if (!nfct_attr_is_set(ct, ATTR_ORIG_COUNTER_BYTES))
		return;
	ev->counted = true;
	ev->packets[0] = nfct_get_attr_u64(ct, ATTR_ORIG_COUNTER_PACKETS);
	ev->bytes[0] = nfct_get_attr_u64(ct, ATTR_ORIG_COUNTER_BYTES);
	ev->packets[1] = nfct_get_attr_u64(ct, ATTR_REPL_COUNTER_PACKETS);
	ev->bytes[1] = nfct_get_attr_u64(ct, ATTR_REPL_COUNTER_BYTES);
}

static int get_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct,
		  void *data)
{
	(void)type;
	counters_of(ct, data);
	/* on to the request's ack: stopping here leaves it queued, and the
	 * next query on the handle reads it as its own answer (and that
	 * query's answer goes to the one after: counters of another flow) */
	return NFCT_CB_CONTINUE;
}

/* The entry's counters as the table holds them now (an update event
 * carries none). */
static void ask_counters(struct revoke *rv, const struct tflow *t,
			 struct revoke_event *ev)
{
	struct nf_conntrack *ct = tuple_ct(t);

	nfct_callback_register(rv->h, NFCT_T_ALL, get_cb, ev);
	nfct_query(rv->h, NFCT_Q_GET, ct);
	nfct_callback_unregister(rv->h);
	nfct_destroy(ct);
}

/* A tagged flow's end told to the callback (once: its tag goes). */
static void tell_end(struct revoke *rv, struct tflow *s, enum revoke_end end,
		     const struct nf_conntrack *ct)
{
	struct revoke_event ev = {.f = &s->f, .end = end, .tag = s->tag};

	if (!s->tag || !rv->on_event)
		return;
	if (ct)
		counters_of(ct, &ev);
	/* an end not seen: the tuple may hold another entry by now */
	if (!ev.counted && end != REVOKE_END_UNKNOWN)
		ask_counters(rv, s, &ev);
	s->tag = 0;
	rv->on_event(rv->event_ctx, &ev);
}

/* A flow judged: into s's list to end when revoke_keep refuses it. */
static void judge_one(struct sweep *s, const struct tflow *t)
{
	char why[256];

	if (!judged(s->j, &t->f) || revoke_keep(s->j, &t->f, why, sizeof(why)))
		return;
	*PUSH(s->end, s->nend, s->capend) =
	    (struct ending){.t = *t, .why = xstrdup(why)};
}

static int sweep_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct,
		    void *data)
{
	struct sweep *s = data;
	struct tflow t;

	(void)type;
	s->seen++;
	if (!ct_key(ct, &t) || closed(ct))
		return NFCT_CB_CONTINUE;
	if (s->rv->tracking) { /* seeding the index */
		struct tflow *e = index_put(s->rv, &t);

		if (e)
			e->silent = true;
		return NFCT_CB_CONTINUE;
	}
	judge_one(s, &t);
	return NFCT_CB_CONTINUE;
}

/* Every entry of the table (IPv4, then IPv6) through cb. */
static int read_table(struct revoke *rv,
		      int (*cb)(enum nf_conntrack_msg_type,
				struct nf_conntrack *, void *),
		      void *data, char *err, size_t errlen)
{
	static const uint32_t families[] = {AF_INET, AF_INET6};
	size_t i;
	int r = 0;

	nfct_callback_register(rv->h, NFCT_T_ALL, cb, data);
	for (i = 0; i < 2 && !r; i++) {
		uint32_t fam = families[i];

		if (nfct_query(rv->h, NFCT_Q_DUMP, &fam) < 0) {
			r = -errno;
			snprintf(err, errlen, "reading conntrack: %s",
				 strerror(errno));
		}
	}
	nfct_callback_unregister(rv->h);
	return r;
}

/* Every entry of the table through sweep_cb: into the index when
 * tracking, else judged. */
static int dump(struct revoke *rv, struct sweep *s, char *err, size_t errlen)
{
	return read_table(rv, sweep_cb, s, err, errlen);
}

/* A mark no entry holds yet. */
static void new_mark(struct revoke *rv)
{
	size_t i;

	if (++rv->marks == 0) { /* wrapped: no flow may look marked */
		for (i = 0; i < rv->cap; i++)
			rv->t[i].mark = 0;
		rv->marks = 1;
	}
}

/* The index judged: the entries to end into s. Only the gone
 * addresses' flows: their chains, each flow once. */
static void judge_index(struct revoke *rv, struct sweep *s)
{
	const struct revoke_judge *j = s->j;
	size_t i;

	if (!j->only_gone) {
		for (i = 0; i < rv->cap; i++)
			if (rv->t[i].state == T_USED) {
				s->seen++;
				judge_one(s, &rv->t[i]);
			}
		return;
	}
	new_mark(rv);
	for (i = 0; i < j->ngone; i++) {
		const struct achain *c =
		    chain(rv, j->gone[i].family, j->gone[i].addr, false);
		uint32_t node;

		for (node = c ? c->head : NO_NODE; node != NO_NODE;
		     node = *next_of(rv, node)) {
			struct tflow *t = &rv->t[node >> 1];

			if (t->mark == rv->marks)
				continue; /* both ends gone: judged once */
			t->mark = rv->marks;
			s->seen++;
			judge_one(s, t);
		}
	}
}

int revoke_sweep(struct revoke *rv, const struct revoke_judge *j,
		 struct revoke_result *res, char *err, size_t errlen)
{
	struct sweep s = {.rv = rv, .j = j};
	double t0 = mono_ms();
	size_t i;
	int r = 0;

	memset(res, 0, sizeof(*res));
	if (rv->tracking && rv->lost)
		r = revoke_track(rv, err, errlen); /* events lost: read anew */
	if (rv->tracking && !r) {
		revoke_events(rv);
		judge_index(rv, &s);
	} else if (!r) {
		r = dump(rv, &s, err, errlen);
	}
	/* an entry gone meanwhile (its flow closed) is what we wanted */
	for (i = 0; i < s.nend; i++) {
		struct tflow *t =
		    rv->tracking ? slot(rv, &s.end[i].t, false) : NULL;

		if (t)
			tell_end(rv, t, REVOKE_END_REVOKED, NULL);
		if (!r && !destroy(rv, &s.end[i].t)) {
			res->ended++;
			note_why(&s, s.end[i].why);
		}
		free(s.end[i].why);
		if (rv->tracking)
			index_del(rv, &s.end[i].t);
	}
	for (i = 0; i < s.nwhys; i++) {
		sb_printf(&res->pairs, "%s%s", i ? ", " : "", s.why[i]);
		if (s.nwhy[i] > 1)
			sb_printf(&res->pairs, " x%zu", s.nwhy[i]);
		free(s.why[i]);
	}
	free(s.why);
	free(s.nwhy);
	free(s.end);
	res->seen = s.seen;
	res->ms = mono_ms() - t0;
	return r;
}

/* --- tracking ----------------------------------------------------------- */

static int event_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct,
		    void *data)
{
	struct revoke *rv = data;
	struct tflow t;

	struct tflow *s;

	if (!ct_key(ct, &t))
		return NFCT_CB_CONTINUE;
	if (type == NFCT_T_NEW) {
		/* a tuple the index holds is a new entry on it: the one held
		 * ended untold (made before we listened, see destroy()) */
		s = rv->cap ? slot(rv, &t, false) : NULL;
		if (s) {
			tell_end(rv, s, REVOKE_END_UNKNOWN, NULL);
			index_del(rv, &t);
		}
		s = index_put(rv, &t);
		if (s && rv->on_event) {
			struct revoke_event ev = {.open = true, .f = &s->f};

			s->tag = rv->on_event(rv->event_ctx, &ev);
		}
	} else if (type == NFCT_T_DESTROY || closed(ct)) {
		/* gone, or closed: nothing left to end */
		s = rv->cap ? slot(rv, &t, false) : NULL;
		if (s)
			tell_end(rv, s,
				 type == NFCT_T_DESTROY && !closed(ct)
				     ? REVOKE_END_TIMEOUT
				     : REVOKE_END_CLOSED,
				 type == NFCT_T_DESTROY ? ct : NULL);
		index_del(rv, &t);
	}
	return NFCT_CB_CONTINUE;
}

int revoke_track(struct revoke *rv, char *err, size_t errlen)
{
	struct sweep s = {.rv = rv};
	struct tflow *old;
	size_t oldcap, i;
	int r, sz = 8 << 20;

	if (!rv->ev) {
		/* subscribed before the dump: nothing falls in between */
		rv->ev = nfct_open(CONNTRACK, NF_NETLINK_CONNTRACK_NEW |
						  NF_NETLINK_CONNTRACK_UPDATE |
						  NF_NETLINK_CONNTRACK_DESTROY);
		if (!rv->ev) {
			snprintf(err, errlen, "conntrack events: %s",
				 strerror(errno));
			return -errno;
		}
		fcntl(nfct_fd(rv->ev), F_SETFL,
		      fcntl(nfct_fd(rv->ev), F_GETFL) | O_NONBLOCK);
		rcvbuf_grow(nfct_fd(rv->ev), sz);
		nfct_callback_register(rv->ev, NFCT_T_ALL, event_cb, rv);
	}
	old = rv->t;
	oldcap = rv->cap;
	rv->t = NULL;
	rv->cap = rv->used = rv->gone = 0;
	index_grow(rv);
	rv->tracking = true;
	rv->lost = false;
	r = dump(rv, &s, err, errlen);
	if (r)
		rv->lost = true;
	/* the flows told as open keep their tag; one gone while events
	 * were lost ended unseen */
	for (i = 0; i < oldcap; i++) {
		struct tflow *now;

		if (old[i].state != T_USED || !old[i].tag)
			continue;
		if ((now = slot(rv, &old[i], false)) != NULL)
			now->tag = old[i].tag;
		else
			tell_end(rv, &old[i], REVOKE_END_UNKNOWN, NULL);
	}
	free(old);
	return r;
}

static int prune_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct,
		    void *data)
{
	struct revoke *rv = data;
	struct tflow t, *e;

	(void)type;
	if (ct_key(ct, &t) && (e = slot(rv, &t, false)) != NULL)
		e->mark = rv->marks;
	return NFCT_CB_CONTINUE;
}

size_t revoke_prune(struct revoke *rv, char *err, size_t errlen)
{
	size_t i, n = 0;

	if (!rv->tracking || rv->lost || !rv->cap)
		return 0; /* the next sweep reads the table anew anyway */
	for (i = 0; i < rv->cap && !n; i++)
		n = rv->t[i].state == T_USED && rv->t[i].silent;
	if (!n)
		return 0;
	revoke_events(rv); /* the ends told so far */
	new_mark(rv);
	if (read_table(rv, prune_cb, rv, err, errlen))
		return 0;
	for (i = n = 0; i < rv->cap; i++) {
		struct tflow *t = &rv->t[i];

		if (t->state != T_USED || !t->silent || t->mark == rv->marks)
			continue;
		tell_end(rv, t, REVOKE_END_UNKNOWN, NULL);
		index_del(rv, t);
		n++;
	}
	return n;
}

void revoke_on_events(struct revoke *rv, revoke_event_fn *fn, void *ctx)
{
	rv->on_event = fn;
	rv->event_ctx = ctx;
}

int revoke_fd(const struct revoke *rv)
{
	return rv->ev ? nfct_fd(rv->ev) : -1;
}

void revoke_events(struct revoke *rv)
{
	if (!rv->ev)
		return;
	/* until the socket is empty; lost events: read the table anew at
	 * the next sweep */
	if (nfct_catch(rv->ev) < 0 && errno == ENOBUFS) {
		rv->lost = true;
		rv->overruns++;
	}
}

size_t revoke_tracked(const struct revoke *rv)
{
	return rv->used;
}

unsigned long revoke_overruns(const struct revoke *rv)
{
	return rv->overruns;
}

bool revoke_idle(struct revoke *rv)
{
	if (!rv->tracking || rv->lost)
		return false;
	revoke_events(rv);
	return !rv->lost && !rv->used;
}

struct revoke_addr *revoke_host_addrs(size_t *n)
{
	struct ifaddrs *ifa, *i;
	struct revoke_addr *v = NULL;
	size_t cap = 0;

	*n = 0;
	if (getifaddrs(&ifa))
		return NULL;
	for (i = ifa; i; i = i->ifa_next) {
		struct revoke_addr *a;
		const uint8_t *p;

		if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET &&
				     i->ifa_addr->sa_family != AF_INET6))
			continue;
		a = PUSH(v, *n, cap);
		a->family = i->ifa_addr->sa_family;
		if (a->family == AF_INET) {
			a->addr =
			    ntohl(((const struct sockaddr_in *)(const void *)
				       i->ifa_addr)
				      ->sin_addr.s_addr);
			continue;
		}
		p = ((const struct sockaddr_in6 *)(const void *)i->ifa_addr)
			->sin6_addr.s6_addr;
		a->addr = be_read(p, 16);
	}
	freeifaddrs(ifa);
	if (v)
		qsort(v, *n, sizeof(*v), revoke_addr_cmp);
	return v;
}
