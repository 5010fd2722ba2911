/* trace: decides a connection from the policy model (which edge, which
 * default) and proves the decision against the IR with ir_eval(). Pure. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "bulkhead/render.h"
#include "bulkhead/trace.h"

#define UPLINK "eth0" /* stands for any non-container interface */

enum ep_kind { EP_CONTAINER, EP_EXTERNAL, EP_HOST };

struct endpoint {
	enum ep_kind kind;
	const struct inv_container *c;
	const struct inv_net *net; /* fixed when given as an IP */
	long svc;
	int family;
	u128 addr;
	const char *arg;
};

static bool shown(const bool *visible, const struct endpoint *ep)
{
	return !visible || !ep->c || (ep->svc >= 0 && visible[ep->svc]);
}

/* visible (NULL: all): the services whose containers may be named */
static int resolve(const struct compiler *cc, const struct policy *p,
		   const struct inventory *inv, const char *arg,
		   const bool *visible, struct endpoint *ep)
{
	const struct inv_container *best = NULL;
	long a, b, si;
	size_t i, j;

	memset(ep, 0, sizeof(*ep));
	ep->arg = arg;
	if (!strcmp(arg, "host")) {
		ep->kind = EP_HOST;
		return 0;
	}
	if (!addr_parse(arg, &ep->family, &ep->addr)) {
		ep->kind = EP_EXTERNAL;
		for (i = 0; i < inv->n; i++)
			for (j = 0; j < inv->c[i].nnets; j++) {
				const struct inv_net *n = &inv->c[i].nets[j];

				if ((ep->family == AF_INET && n->has4 &&
				     n->ip4 == ep->addr) ||
				    (ep->family == AF_INET6 && n->has6 &&
				     n->ip6 == ep->addr) ||
				    (ep->family == AF_INET6 && n->has_ll6 &&
				     n->ll6 == ep->addr)) {
					ep->kind = EP_CONTAINER;
					ep->c = &inv->c[i];
					ep->net = n;
				}
			}
		if (ep->c)
			ep->svc = compile_assign(cc, ep->c, &a, &b);
		return 0;
	}
	ep->kind = EP_CONTAINER;
	ep->c = inventory_find(inv, arg);
	if (ep->c)
		ep->svc = compile_assign(cc, ep->c, &a, &b);
	if (!shown(visible, ep))
		ep->c = NULL; /* another team's: as if there were none */
	if (!ep->c && (si = policy_service_index(p, arg)) >= 0) {
		for (i = 0; i < inv->n; i++)
			if (compile_assign(cc, &inv->c[i], &a, &b) == si &&
			    (!best || strcmp(inv->c[i].name, best->name) < 0))
				best = &inv->c[i];
		if (!best)
			return -ENOENT;
		ep->c = best;
	}
	if (!ep->c)
		return -EINVAL;
	ep->svc = compile_assign(cc, ep->c, &a, &b);
	return 0;
}

static bool in_cidrs(const struct pol_peer *peer, int fam, u128 a)
{
	size_t i;

	for (i = 0; i < peer->ncidrs; i++)
		if (peer->cidrs[i].family == fam && a >= peer->cidrs[i].lo &&
		    a <= peer->cidrs[i].hi)
			return true;
	return false;
}

/* Does endpoint ep (managed when its container is placed) fit peer? */
static bool peer_fits(const struct pol_peer *peer, const struct endpoint *ep,
		      bool managed)
{
	switch (peer->kind) {
	case PEER_SERVICE:
		return managed && ep->svc == (long)peer->service;
	case PEER_WORLD:
		return ep->kind == EP_EXTERNAL || (!managed && ep->c);
	case PEER_HOST:
		return ep->kind == EP_HOST;
	case PEER_CIDR:
		return (ep->kind == EP_EXTERNAL || (!managed && ep->c)) &&
		       in_cidrs(peer, ep->family, ep->addr);
	case PEER_FQDN:
		return false; /* answered from the IR: needs resolution */
	}
	return false;
}

static bool port_fits(const struct pol_edge *e, uint8_t proto, uint16_t port,
		      int fam)
{
	size_t i;

	for (i = 0; i < e->nports; i++) {
		const struct pol_port *pp = &e->ports[i];

		if (proto < pp->proto_lo || proto > pp->proto_hi ||
		    port < pp->lo || port > pp->hi)
			continue;
		if (pp->proto_lo == pp->proto_hi &&
		    ((pp->proto_lo == IPPROTO_ICMP && fam != AF_INET) ||
		     (pp->proto_lo == IPPROTO_ICMPV6 && fam != AF_INET6)))
			continue;
		return true;
	}
	return false;
}

/* Which ends are managed: a placed container on a managed network
 * (unmatched ones too when settings.unmatched denies them). */
static void managed(const struct compiler *cc, const struct policy *p,
		    const struct inventory *inv, const struct endpoint *s,
		    const struct endpoint *t, const struct inv_net *sn,
		    const struct inv_net *dn, bool *s_managed, bool *t_managed)
{
	*s_managed = sn && s->svc != COMPILE_UNMATCHED;
	*s_managed |= sn && !p->unmatched_allow;
	*t_managed = dn && (t->svc != COMPILE_UNMATCHED || !p->unmatched_allow);
	if (sn && !compile_net_managed(cc, inv, sn->name))
		*s_managed = false;
}

/* The model's answer: the first edge that allows it, or the default and
 * the reason it denies. */
/* An end known by its IPv6 link-local address: the kernel's chains know
 * containers by their addresses on the network, so nothing but
 * neighbour discovery (and to the host router solicitations and MLD)
 * passes from or to it, whatever the policy says. */
static bool link_local(const struct endpoint *ep)
{
	return ep->c && ep->net && ep->family == AF_INET6 && ep->net->has_ll6 &&
	       ep->addr == ep->net->ll6 &&
	       !(ep->net->has6 && ep->net->ip6 == ep->addr);
}

static void decide(const struct policy *p, const struct endpoint *s,
		   const struct endpoint *t, const struct inv_net *sn,
		   const struct inv_net *dn, bool s_managed, bool t_managed,
		   uint8_t proto, uint16_t port, int fam, const size_t *cand,
		   size_t ncand, struct trace_decision *out)
{
	bool port_other = false;
	size_t k, ci;

	memset(out, 0, sizeof(*out));
	out->edge = -1;
	out->src = s->c;
	out->dst = t->c;
	out->src_net = sn;
	out->dst_net = dn;
	out->src_svc = s->c ? s->svc : COMPILE_UNMATCHED;
	out->dst_svc = t->c ? t->svc : COMPILE_UNMATCHED;
	if (!s_managed && !t_managed) {
		out->allowed = true;
		out->why = "touches no managed container, not filtered";
		return;
	}
	if ((s_managed && link_local(s)) || (t_managed && link_local(t))) {
		out->why = "a container's link-local address: only neighbour "
			   "discovery passes";
		out->reason = "link-local";
		return;
	}
	if ((s_managed && s->svc == COMPILE_UNMATCHED) ||
	    (t_managed && t->svc == COMPILE_UNMATCHED)) {
		out->why = "a container that matches no service "
			   "(settings.unmatched: deny)";
		out->reason = "unmatched-container";
		return;
	}
	if (s->svc == COMPILE_CONFLICT || t->svc == COMPILE_CONFLICT) {
		out->why = "a container that matches two services is denied";
		out->reason = "unmatched-container";
		return;
	}
	/* cand: the edges that can fit this source, in order (all when
	 * NULL) */
	for (ci = 0; ci < (cand ? ncand : p->nedges); ci++) {
		const struct pol_edge *e;

		k = cand ? cand[ci] : ci;
		e = &p->edges[k];
		if (!peer_fits(&e->src, s, s_managed) ||
		    !peer_fits(&e->dst, t, t_managed))
			continue;
		if (s_managed && t_managed && sn && dn &&
		    strcmp(sn->name, dn->name))
			continue; /* no shared network */
		if (!port_fits(e, proto, port, fam)) {
			port_other = true;
			continue;
		}
		out->edge = (long)k;
		out->allowed = true;
		return;
	}
	if (s_managed && t_managed && sn && dn && strcmp(sn->name, dn->name)) {
		out->why = "the two containers share no managed network";
		out->reason = "no-edge";
		return;
	}
	/* what one scope declared and the other did not accept */
	for (k = 0; k < p->ncross; k++) {
		const struct pol_edge *e = &p->cross[k];

		if (peer_fits(&e->src, s, s_managed) &&
		    peer_fits(&e->dst, t, t_managed) &&
		    port_fits(e, proto, port, fam)) {
			out->cross = e;
			out->why = "an edge between two scopes that only one "
				   "side declares (on this port)";
			out->reason = "not-accepted";
			return;
		}
	}
	out->why = "deny";
	out->reason = port_other ? "port-not-allowed" : "no-edge";
}

int trace_decide(const struct compiler *cc, const struct policy *p,
		 const struct inventory *inv, int family, u128 saddr,
		 u128 daddr, bool to_host, uint8_t proto, uint16_t port,
		 struct trace_decision *out)
{
	struct endpoint s, t;
	char a[64];
	bool sm, tm;

	addr_format(family, saddr, a, sizeof(a));
	resolve(cc, p, inv, a, NULL, &s);
	addr_format(family, daddr, a, sizeof(a));
	resolve(cc, p, inv, to_host ? "host" : a, NULL, &t);
	t.family = family;
	t.addr = daddr;
	managed(cc, p, inv, &s, &t, s.net, t.net, &sm, &tm);
	decide(p, &s, &t, s.net, t.net, sm, tm, proto, port, family, NULL, 0,
	       out);
	return 0;
}

/* --- the same for many packets: addresses indexed --------------------- */

/* An address and who holds it: the container by its id (the string the
 * inventory holds, looked up at each decision: the inventory moves its
 * entries), the network by its entry (which does not move). */
struct slot {
	int family; /* 0: empty */
	u128 addr;
	const char *id;
	const struct inv_net *net;
	long svc;
};

/* Per service, the edges a source of it can fit (its own and those
 * whose source is not a service), in order; then those of a source that
 * is no managed service. */
struct cands {
	size_t *v;
	size_t n, cap;
};

/* A network and how many matched containers are on it (in auto mode it
 * is managed while there is one). */
struct netcount {
	char *name;
	size_t matched;
};

struct trace_index {
	const struct compiler *cc;
	const struct inventory *inv;
	struct slot *v;
	size_t mask, used;
	struct cands *by_svc; /* nservices + 1: the last for the others */
	size_t nsvc;
	struct netcount *nets;
	size_t nnets, capnets;
};

static size_t slot_hash(int family, u128 a)
{
	uint64_t h = (uint64_t)a ^ (uint64_t)(a >> 64) ^ (uint64_t)family;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (size_t)h;
}

static size_t slot_at(const struct trace_index *ix, int family, u128 a)
{
	size_t i = slot_hash(family, a) & ix->mask;

	for (; ix->v[i].family; i = (i + 1) & ix->mask)
		if (ix->v[i].family == family && ix->v[i].addr == a)
			break;
	return i;
}

static const struct slot *slot_find(const struct trace_index *ix, int family,
				    u128 a)
{
	const struct slot *sl = &ix->v[slot_at(ix, family, a)];

	return sl->family ? sl : NULL;
}

/* Returns false when the address had another holder (who loses it). */
static bool slot_put(struct trace_index *ix, const struct slot *sl);

static void slots_grow(struct trace_index *ix)
{
	struct slot *old = ix->v;
	size_t n = ix->mask + 1, i;

	ix->v = xcalloc(2 * n, sizeof(*ix->v));
	ix->mask = 2 * n - 1;
	ix->used = 0;
	for (i = 0; i < n; i++)
		if (old[i].family)
			slot_put(ix, &old[i]);
	free(old);
}

static bool slot_put(struct trace_index *ix, const struct slot *sl)
{
	size_t i;
	bool had;

	if (2 * (ix->used + 1) > ix->mask + 1)
		slots_grow(ix);
	i = slot_at(ix, sl->family, sl->addr);
	had = ix->v[i].family && strcmp(ix->v[i].id, sl->id);
	ix->used += !ix->v[i].family;
	ix->v[i] = *sl; /* the last holder wins, as in resolve() */
	return !had;
}

/* The address leaves, when id holds it: the slots after it in its run
 * move back (linear probing keeps no holes). */
static void slot_del(struct trace_index *ix, int family, u128 a, const char *id)
{
	size_t i = slot_at(ix, family, a), j, home;

	if (!ix->v[i].family || strcmp(ix->v[i].id, id))
		return;
	ix->v[i].family = 0;
	ix->used--;
	for (j = (i + 1) & ix->mask; ix->v[j].family; j = (j + 1) & ix->mask) {
		home = slot_hash(ix->v[j].family, ix->v[j].addr) & ix->mask;
		/* j stays when its home lies cyclically in (i, j] */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		ix->v[i] = ix->v[j];
		ix->v[j].family = 0;
		i = j;
	}
}

static struct netcount *netcount(struct trace_index *ix, const char *net)
{
	size_t i;

	for (i = 0; i < ix->nnets; i++)
		if (!strcmp(ix->nets[i].name, net))
			return &ix->nets[i];
	return NULL;
}

/* c's addresses in (in) or out, and its matched networks counted. */
static bool index_container(struct trace_index *ix,
			    const struct inv_container *c, bool in)
{
	long a, b, svc = compile_assign(ix->cc, c, &a, &b);
	bool exact = true;
	size_t j;

	for (j = 0; j < c->nnets; j++) {
		const struct inv_net *net = &c->nets[j];
		struct slot sl = {.id = c->id, .net = net, .svc = svc};
		struct netcount *nc;

		if (net->has4) {
			sl.family = AF_INET;
			sl.addr = net->ip4;
			if (in)
				exact &= slot_put(ix, &sl);
			else
				slot_del(ix, AF_INET, net->ip4, c->id);
		}
		if (net->has6) {
			sl.family = AF_INET6;
			sl.addr = net->ip6;
			if (in)
				exact &= slot_put(ix, &sl);
			else
				slot_del(ix, AF_INET6, net->ip6, c->id);
		}
		/* its link-local address (router and neighbour
		 * solicitations come from it): the container's too */
		if (net->has_ll6 && !(net->has6 && net->ll6 == net->ip6)) {
			sl.family = AF_INET6;
			sl.addr = net->ll6;
			if (in)
				exact &= slot_put(ix, &sl);
			else
				slot_del(ix, AF_INET6, net->ll6, c->id);
		}
		if (svc < 0)
			continue;
		nc = netcount(ix, net->name);
		if (!nc && in) {
			nc = PUSH(ix->nets, ix->nnets, ix->capnets);
			nc->name = xstrdup(net->name);
			nc->matched = 0;
		}
		if (nc && in)
			nc->matched++;
		else if (nc && nc->matched)
			nc->matched--;
	}
	return exact;
}

struct trace_index *trace_index_new(const struct compiler *cc,
				    const struct policy *p,
				    const struct inventory *inv)
{
	struct trace_index *ix = xcalloc(1, sizeof(*ix));
	size_t i, j;

	ix->cc = cc;
	ix->inv = inv;
	ix->nsvc = p->nservices;
	ix->by_svc = xcalloc(p->nservices + 1, sizeof(*ix->by_svc));
	for (i = 0; i < p->nedges; i++) {
		const struct pol_peer *src = &p->edges[i].src;

		for (j = 0; j <= p->nservices; j++) {
			struct cands *c = &ix->by_svc[j];

			if (src->kind != PEER_SERVICE ||
			    (j < p->nservices && src->service == j))
				*PUSH(c->v, c->n, c->cap) = i;
		}
	}
	ix->v = xcalloc(16, sizeof(*ix->v));
	ix->mask = 15;
	for (i = 0; i < inv->n; i++)
		index_container(ix, &inv->c[i], true);
	return ix;
}

bool trace_index_add(struct trace_index *ix, const struct inv_container *c)
{
	return index_container(ix, c, true);
}

void trace_index_del(struct trace_index *ix, const struct inv_container *c)
{
	index_container(ix, c, false);
}

void trace_index_free(struct trace_index *ix)
{
	size_t i;

	if (!ix)
		return;
	for (i = 0; i <= ix->nsvc; i++)
		free(ix->by_svc[i].v);
	for (i = 0; i < ix->nnets; i++)
		free(ix->nets[i].name);
	free(ix->nets);
	free(ix->by_svc);
	free(ix->v);
	free(ix);
}

static void from_slot(const struct trace_index *ix, struct endpoint *ep,
		      const struct slot *sl, int family, u128 a)
{
	long i = sl && ix ? inventory_index(ix->inv, sl->id) : -1;

	memset(ep, 0, sizeof(*ep));
	ep->family = family;
	ep->addr = a;
	ep->kind = i >= 0 ? EP_CONTAINER : EP_EXTERNAL;
	if (i >= 0) {
		ep->c = &ix->inv->c[i];
		ep->net = sl->net;
		ep->svc = sl->svc;
	}
}

const struct inv_container *trace_index_find(const struct trace_index *ix,
					     int family, u128 addr,
					     const struct inv_net **net,
					     long *svc)
{
	struct endpoint ep;

	from_slot(ix, &ep, ix ? slot_find(ix, family, addr) : NULL, family,
		  addr);
	*net = ep.net;
	*svc = ep.svc;
	return ep.c;
}

int trace_decide_ix(const struct compiler *cc, const struct policy *p,
		    const struct trace_index *ix, int family, u128 saddr,
		    u128 daddr, bool to_host, uint8_t proto, uint16_t port,
		    struct trace_decision *out)
{
	const struct slot *ss = slot_find(ix, family, saddr);
	const struct slot *ts = to_host ? NULL : slot_find(ix, family, daddr);
	const struct cands *c;
	struct netcount *nc;
	struct endpoint s, t;
	bool sm, tm;

	from_slot(ix, &s, ss, family, saddr);
	from_slot(ix, &t, ts, family, daddr);
	if (to_host)
		t.kind = EP_HOST;
	/* managed() with the network's count from the index */
	nc = s.c ? netcount((struct trace_index *)ix, s.net->name) : NULL;
	sm = s.c && (s.svc != COMPILE_UNMATCHED || !p->unmatched_allow) &&
	     compile_net_managed_n(cc, s.net->name, nc ? nc->matched : 0);
	tm = t.c && (t.svc != COMPILE_UNMATCHED || !p->unmatched_allow);
	c = &ix->by_svc[sm && s.svc >= 0 ? (size_t)s.svc : ix->nsvc];
	decide(p, &s, &t, s.net, t.net, sm, tm, proto, port, family, c->v, c->n,
	       out);
	return 0;
}

/* What the bridge table holds the source to: a packet claiming its
 * address from another port never gets this far. */
static void identity(struct strbuf *o, const struct inv_container *c,
		     const struct inv_net *n)
{
	char mac[24];

	if (!n->port) {
		sb_printf(o,
			  "  identity: %s is bound to no bridge port on this "
			  "host (a port nobody is bound to passes nothing)\n",
			  c->name);
		return;
	}
	mac_format(n->mac, mac, sizeof(mac));
	sb_printf(o,
		  "  identity: %s's frames enter by port %s, bound to %s and "
		  "its addresses (any other source from there is dropped)\n",
		  c->name, n->port, mac);
}

static void describe(struct strbuf *o, const char *label,
		     const struct endpoint *ep, const struct policy *p,
		     const char *bridge_net, bool hide)
{
	char a[64];

	addr_format(ep->family, ep->addr, a, sizeof(a));
	sb_printf(o, "  %-5s ", label);
	if (ep->kind == EP_HOST) {
		sb_puts(o, "host (the Docker host's own addresses)\n");
		return;
	}
	if (ep->c && hide) {
		sb_printf(o, "%s (another scope's service)\n",
			  ep->svc >= 0 ? p->services[ep->svc].name
				       : "a container outside your scope");
		return;
	}
	if (ep->c) {
		sb_printf(o, "%s (", ep->c->name);
		if (ep->svc >= 0)
			sb_printf(o, "service %s", p->services[ep->svc].name);
		else
			sb_puts(o, ep->svc == COMPILE_CONFLICT
				       ? "matches two services"
				       : "matches no service");
		sb_printf(o, ", %s%s%s)\n", a, bridge_net ? " on " : "",
			  bridge_net ? bridge_net : "");
		return;
	}
	sb_printf(o, "%s (outside: world)\n", a);
}

/* First managed network of c with an address of family fam (any family
 * when fam is 0), preferring one shared with other. */
static const struct inv_net *pick_net(const struct compiler *cc,
				      const struct inventory *inv,
				      const struct inv_container *c, int fam,
				      const struct inv_container *other)
{
	const struct inv_net *first = NULL;
	size_t i, j;

	for (i = 0; i < c->nnets; i++) {
		const struct inv_net *n = &c->nets[i];

		if (!compile_net_managed(cc, inv, n->name))
			continue;
		if ((fam == AF_INET && !n->has4) ||
		    (fam == AF_INET6 && !n->has6))
			continue;
		if (!first)
			first = n;
		for (j = 0; other && j < other->nnets; j++)
			if (!strcmp(other->nets[j].name, n->name))
				return n;
	}
	return first;
}

static void set_addr(struct endpoint *ep, const struct inv_net *n, int fam)
{
	if (!n || ep->kind != EP_CONTAINER || ep->net)
		return;
	ep->family = fam ? fam : n->has4 ? AF_INET : AF_INET6;
	ep->addr = ep->family == AF_INET ? n->ip4 : n->ip6;
}

/* One trace: both ends, the port, and the path a packet takes. */
struct query {
	struct endpoint s, t;
	const struct inv_net *sn, *dn; /* the ends' networks, when containers */
	struct pol_port pp;
	int fam;
};

/* SRC and DST as endpoints; 0, or -EINVAL with a diagnostic. */
static int resolve_ends(const struct compiler *cc, const struct policy *p,
			const struct inventory *inv, const char *src,
			const char *dst, const bool *visible, struct query *q,
			struct diags *d)
{
	const char *args[2] = {src, dst};
	struct endpoint *eps[2] = {&q->s, &q->t};
	int i, r;

	for (i = 0; i < 2; i++) {
		r = resolve(cc, p, inv, args[i], visible, eps[i]);
		if (r == -ENOENT) {
			diags_add(d, DIAG_ERROR, "trace", 0, 0,
				  "service '%s' has no container in the "
				  "inventory",
				  args[i]);
			return -EINVAL;
		}
		if (r) {
			diags_add(d, DIAG_ERROR, "trace", 0, 0,
				  "'%s' is not a container, service, IP "
				  "address or 'host'",
				  args[i]);
			return -EINVAL;
		}
	}
	if (q->s.kind == EP_HOST) {
		diags_add(d, DIAG_ERROR, "trace", 0, 0,
			  "'host' is a destination only: the host's own "
			  "traffic to containers is not filtered");
		return -EINVAL;
	}
	if (visible && !(q->s.c && shown(visible, &q->s)) &&
	    !(q->t.c && shown(visible, &q->t))) {
		diags_add(d, DIAG_ERROR, "trace", 0, 0,
			  "neither %s nor %s is a container of your scope", src,
			  dst);
		return -EINVAL;
	}
	return 0;
}

/* PORT/PROTO as one protocol and one port (ICMP: none); 0, or -EINVAL
 * with a diagnostic. */
static int parse_port(const char *port, struct query *q, struct diags *d)
{
	struct pol_port *pp = &q->pp;
	const char *why = policy_port_parse(port, pp);

	if (!why &&
	    (pp->proto_lo == IPPROTO_ICMP || pp->proto_lo == IPPROTO_ICMPV6))
		pp->hi = pp->lo = 0; /* the datapath sees some value here */
	if (why || pp->proto_lo != pp->proto_hi || pp->lo != pp->hi) {
		if (!why && pp->proto_lo == pp->proto_hi)
			why = "must be one port, not a range";
		diags_add(d, DIAG_ERROR, "trace", 0, 0, "port '%s' %s", port,
			  why ? why : "must name one protocol (not any)");
		return -EINVAL;
	}
	if (pp->proto_lo == IPPROTO_ICMP || pp->proto_lo == IPPROTO_ICMPV6)
		q->fam = pp->proto_lo == IPPROTO_ICMP ? AF_INET : AF_INET6;
	return 0;
}

/* The family and the ends' networks: as named, else what the protocol,
 * an external end or the containers' networks say; IPv4 by default. */
static void choose_path(const struct compiler *cc, const struct inventory *inv,
			struct query *q)
{
	if (q->s.kind == EP_EXTERNAL || q->s.net)
		q->fam = q->s.family;
	if (q->t.kind == EP_EXTERNAL || q->t.net)
		q->fam = q->fam ? q->fam : q->t.family;
	if (q->s.kind == EP_CONTAINER)
		q->sn = q->s.net ? q->s.net
				 : pick_net(cc, inv, q->s.c, q->fam, q->t.c);
	if (!q->fam && q->sn)
		q->fam = q->sn->has4 ? AF_INET : AF_INET6;
	if (q->t.kind == EP_CONTAINER)
		q->dn = q->t.net ? q->t.net
				 : pick_net(cc, inv, q->t.c, q->fam, q->s.c);
	if (!q->fam && q->dn)
		q->fam = q->dn->has4 ? AF_INET : AF_INET6;
	if (!q->fam)
		q->fam = AF_INET;
	set_addr(&q->s, q->sn, q->fam);
	set_addr(&q->t, q->dn, q->fam);
}

/* The packet through the ruleset: res says what the kernel would do. */
static void evaluate(const struct ir_ruleset *rs, const struct query *q,
		     struct ir_result *res)
{
	struct ir_packet pkt = {0};

	pkt.family = q->fam;
	pkt.saddr = q->s.addr;
	pkt.daddr = q->t.addr;
	pkt.proto = q->pp.proto_lo;
	pkt.dport = q->pp.lo;
	snprintf(pkt.iif, sizeof(pkt.iif), "%s",
		 q->sn ? q->sn->bridge : UPLINK);
	if (q->t.kind == EP_HOST) {
		pkt.hook = IRH_INPUT;
	} else {
		pkt.hook = IRH_FORWARD;
		snprintf(pkt.oif, sizeof(pkt.oif), "%s",
			 q->dn ? q->dn->bridge : UPLINK);
	}
	ir_eval(rs, &pkt, res);
}

/* What decides: the edge (file:line) or the default and its reason. */
static void print_decision(const struct policy *p,
			   const struct trace_decision *dec, struct strbuf *o)
{
	if (dec->edge >= 0) {
		const struct pol_edge *e = &p->edges[dec->edge];

		sb_printf(
		    o, "  edge: %s:%u:%u (%s of service %s)\n", e->file,
		    e->loc.line, e->loc.col, e->ingress ? "ingress" : "egress",
		    p->services[e->ingress ? e->dst.service : e->src.service]
			.name);
		if (e->accepted_file)
			sb_printf(o, "  accepted: %s:%u:%u\n", e->accepted_file,
				  e->accepted.line, e->accepted.col);
		return;
	}
	sb_printf(o, "  default: %s", dec->why);
	if (dec->reason)
		sb_printf(o, " (reason: %s)", dec->reason);
	sb_putc(o, '\n');
	if (dec->cross) {
		const struct pol_edge *e = dec->cross;
		const struct pol_peer *o2 = e->ingress ? &e->src : &e->dst;

		sb_printf(o, "  declared: %s:%u:%u; %s does not accept it\n",
			  e->file, e->loc.line, e->loc.col,
			  p->services[o2->service].name);
	}
}

/* The chains the packet went through, with the element each set matched
 * and the ports the rule itself checks. */
static void print_path(const struct ir_ruleset *rs, const struct ir_result *res,
		       struct strbuf *o)
{
	int i, m;

	sb_puts(o, "  path:");
	for (i = 0; i < res->ntrail; i++) {
		const struct ir_step *st = &res->trail[i];
		const struct ir_chain *c = ir_chain_find(rs, st->chain);

		sb_printf(o, " %s%s", i ? "> " : "", st->chain);
		if (!st->set || (st->set->flags & IRS_MAP))
			continue;
		sb_printf(o, " (@%s has ", st->set->name);
		render_elem(st->set, st->elem, o);
		for (m = 0; c && st->rule < c->n && m < c->r[st->rule].nm; m++)
			if (c->r[st->rule].m[m].kind == IRM_RANGE) {
				sb_puts(o, ", ");
				render_match(&c->r[st->rule].m[m], o);
			}
		sb_putc(o, ')');
	}
	if (res->by_policy)
		sb_puts(o, " (no rule: policy accept)");
	sb_printf(o, ": %s\n", res->verdict == IRV_ACCEPT ? "accept" : "drop");
}

int trace_run(const struct compiler *cc, const struct policy *p,
	      const struct ir_ruleset *rs, const struct inventory *inv,
	      const char *src, const char *dst, const char *port,
	      struct strbuf *o, struct diags *d)
{
	return trace_run_view(cc, p, rs, inv, src, dst, port, NULL, o, d);
}

int trace_run_view(const struct compiler *cc, const struct policy *p,
		   const struct ir_ruleset *rs, const struct inventory *inv,
		   const char *src, const char *dst, const char *port,
		   const bool *visible, struct strbuf *o, struct diags *d)
{
	struct query q = {0};
	struct ir_result res;
	struct trace_decision dec;
	bool s_managed, t_managed, audit_deny, accept;

	if (resolve_ends(cc, p, inv, src, dst, visible, &q, d) ||
	    parse_port(port, &q, d))
		return -EINVAL;
	choose_path(cc, inv, &q);
	managed(cc, p, inv, &q.s, &q.t, q.sn, q.dn, &s_managed, &t_managed);
	evaluate(rs, &q, &res);
	/* the model's answer */
	decide(p, &q.s, &q.t, q.sn, q.dn, s_managed, t_managed, q.pp.proto_lo,
	       q.pp.lo, q.fam, NULL, 0, &dec);
	accept = res.verdict == IRV_ACCEPT;
	/* in audit mode the deny chain logs and accepts */
	audit_deny = !dec.allowed && res.logged && accept;
	sb_printf(o, "%s %s -> %s %s\n",
		  audit_deny ? "would-deny"
		  : accept   ? "allowed"
			     : "denied",
		  src, dst, port);
	describe(o, "from:", &q.s, p, q.sn ? q.sn->name : NULL,
		 !shown(visible, &q.s));
	describe(o, "to:", &q.t, p, q.dn ? q.dn->name : NULL,
		 !shown(visible, &q.t));
	if (q.s.c && q.sn && shown(visible, &q.s))
		identity(o, q.s.c, q.sn);
	print_decision(p, &dec, o);
	if (!visible)
		print_path(rs, &res, o); /* its elements name every team's */
	if (audit_deny)
		sb_puts(o, "  note: audit mode logs this as would-deny and "
			   "lets it through\n");
	/* FQDN edges are only in the IR (resolved addresses) */
	if (dec.allowed != accept && !audit_deny &&
	    !(q.t.kind == EP_EXTERNAL && accept)) {
		diags_add(d, DIAG_ERROR, "trace", 0, 0,
			  "internal error: the policy says %s but the ruleset "
			  "says %s",
			  dec.allowed ? "allowed" : "denied",
			  accept ? "accept" : "drop");
		return -EFAULT;
	}
	return accept && !audit_deny ? TRACE_ALLOWED : TRACE_DENIED;
}
