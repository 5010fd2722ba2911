/* Policy x inventory -> ruleset IR (design §5), and per-container deltas.
 * Pure: no I/O and no clock. The layout (chains and sets) depends on the
 * policy alone, so that containers coming and going are element changes
 * only, never a rebuild. */
#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bulkhead/compile.h"

/* --- boxes: (address interval) x (protocol range) x (port range) ---------- */

struct box {
	u128 addr_lo, addr_hi;
	unsigned proto_lo, proto_hi, port_lo, port_hi;
	uint32_t timeout_ms; /* fqdn answers: the element's timeout */
};

struct boxes {
	struct box *v;
	size_t n, cap;
};

static int u32cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

static size_t uniq(unsigned *v, size_t n)
{
	size_t i, k = 0;

	qsort(v, n, sizeof(*v), u32cmp);
	for (i = 0; i < n; i++)
		if (!k || v[k - 1] != v[i])
			v[k++] = v[i];
	return k;
}

static int ivcmp(const void *a, const void *b)
{
	const struct box *x = a, *y = b;

	if (x->addr_lo != y->addr_lo)
		return x->addr_lo < y->addr_lo ? -1 : 1;
	return x->addr_hi < y->addr_hi ? -1 : x->addr_hi > y->addr_hi;
}

static int cell_cmp_port(const void *a, const void *b)
{
	const struct box *x = a, *y = b;

	if (x->proto_lo != y->proto_lo)
		return x->proto_lo < y->proto_lo ? -1 : 1;
	if (x->addr_lo != y->addr_lo)
		return x->addr_lo < y->addr_lo ? -1 : 1;
	if (x->addr_hi != y->addr_hi)
		return x->addr_hi < y->addr_hi ? -1 : 1;
	return x->port_lo < y->port_lo ? -1 : x->port_lo > y->port_lo;
}

/* Rewrites b as disjoint boxes covering the same union, so that no two
 * elements of an interval set overlap: decompose along protocol, then
 * port, union the address intervals, then merge adjacent port ranges. */
static void boxes_normalize(struct boxes *b)
{
	struct boxes out = {0}, act = {0};
	unsigned *pb, *qb;
	size_t npb = 0, nqb, i, j, k, m;

	if (b->n <= 1)
		return;
	pb = xmalloc(sizeof(*pb) * b->n * 2);
	qb = xmalloc(sizeof(*qb) * b->n * 2);
	for (i = 0; i < b->n; i++) {
		pb[npb++] = b->v[i].proto_lo;
		pb[npb++] = b->v[i].proto_hi + 1;
	}
	npb = uniq(pb, npb);
	for (i = 0; i + 1 < npb; i++) {
		unsigned plo = pb[i], phi = pb[i + 1] - 1;

		nqb = 0;
		for (j = 0; j < b->n; j++)
			if (b->v[j].proto_lo <= plo &&
			    b->v[j].proto_hi >= phi) {
				qb[nqb++] = b->v[j].port_lo;
				qb[nqb++] = b->v[j].port_hi + 1;
			}
		nqb = uniq(qb, nqb);
		for (j = 0; j + 1 < nqb; j++) {
			unsigned lo = qb[j], hi = qb[j + 1] - 1;

			act.n = 0;
			for (k = 0; k < b->n; k++) {
				const struct box *x = &b->v[k];

				if (x->proto_lo <= plo && x->proto_hi >= phi &&
				    x->port_lo <= lo && x->port_hi >= hi)
					*PUSH(act.v, act.n, act.cap) = *x;
			}
			if (!act.n)
				continue;
			qsort(act.v, act.n, sizeof(*act.v), ivcmp);
			for (k = 0; k < act.n; k = m) {
				struct box cell = {act.v[k].addr_lo,
						   act.v[k].addr_hi,
						   plo,
						   phi,
						   lo,
						   hi,
						   act.v[k].timeout_ms};

				for (m = k + 1; m < act.n; m++) {
					if (cell.addr_hi != ~(u128)0 &&
					    act.v[m].addr_lo > cell.addr_hi + 1)
						break;
					if (act.v[m].addr_hi > cell.addr_hi)
						cell.addr_hi = act.v[m].addr_hi;
					/* merged answers: the longest */
					if (act.v[m].timeout_ms >
					    cell.timeout_ms)
						cell.timeout_ms =
						    act.v[m].timeout_ms;
				}
				*PUSH(out.v, out.n, out.cap) = cell;
			}
		}
	}
	/* merge port-adjacent cells with the same protocol and addresses */
	if (out.n > 1)
		qsort(out.v, out.n, sizeof(*out.v), cell_cmp_port);
	for (i = k = 0; i < out.n; i++) {
		struct box *prev = k ? &out.v[k - 1] : NULL;

		if (prev && prev->proto_lo == out.v[i].proto_lo &&
		    prev->proto_hi == out.v[i].proto_hi &&
		    prev->addr_lo == out.v[i].addr_lo &&
		    prev->addr_hi == out.v[i].addr_hi &&
		    prev->port_hi + 1 == out.v[i].port_lo) {
			prev->port_hi = out.v[i].port_hi;
			if (out.v[i].timeout_ms > prev->timeout_ms)
				prev->timeout_ms = out.v[i].timeout_ms;
		} else
			out.v[k++] = out.v[i];
	}
	out.n = k;
	free(pb);
	free(qb);
	free(act.v);
	free(b->v);
	*b = out;
}

/* Adds the port boxes of edge e with address interval [alo, ahi]. */
static void boxes_add_ports(struct boxes *b, const struct pol_edge *e, u128 alo,
			    u128 ahi)
{
	size_t i;

	for (i = 0; i < e->nports; i++) {
		const struct pol_port *pp = &e->ports[i];

		*PUSH(b->v, b->n, b->cap) = (struct box){
		    alo, ahi, pp->proto_lo, pp->proto_hi, pp->lo, pp->hi, 0};
	}
}

/* An ICMP box belongs to IPv4 sets only, ICMPv6 to IPv6 only. */
static bool box_in_family(const struct box *x, int fam)
{
	if (x->proto_lo == x->proto_hi && x->proto_lo == IPPROTO_ICMPV6)
		return fam == AF_INET6;
	if (x->proto_lo == x->proto_hi && x->proto_lo == IPPROTO_ICMP)
		return fam == AF_INET;
	return true;
}

/* --- layout ----------------------------------------------------------------
 */

enum gset {
	G_BRIDGES,
	G_UNM4,
	G_UNM6,
	G_RL4,
	G_RL6,
	G_SAME,
	G_SELF4, /* (a . a) for each container address on a managed bridge */
	G_SELF6,
	/* table bridge: identity */
	G_ID_PORTS, /* every port of a managed bridge: frames checked */
	G_ID_MAC,   /* port . the MAC its endpoint has */
	G_ID_ADDR4, /* port . its IPv4 address */
	G_ID_ADDR6, /* port . its IPv6 addresses, link-local too */
	G_ID_ND6,   /* the same, as the target of its advertisements */
	G_NSETS
};

/* Per service. A peer tuple with one protocol and one port is exact and
 * goes into a hash set (peer4/6: constant-time lookups and updates). A
 * port or protocol range to another service becomes a rule of its own,
 * "destination in D's members set and port in range", so that no
 * interval set grows with containers (interval sets cost the kernel a
 * copy of their tables on every change). Only ranges to unmanaged
 * containers (as "world") go into an interval set, peer4/6_ranges. */
enum sset {
	S_PEER4,
	S_PEER6,
	S_RPEER4,
	S_RPEER6,
	S_MEMB4,
	S_MEMB6,
	S_OUT4,
	S_OUT6,
	S_FQDN4,
	S_FQDN6,
	S_IN4,
	S_IN6,
	S_HOST,
	S_NSETS
};

enum schain { C_SVC, C_IN, C_HOST, C_NCHAINS };

#define NO_SET ((size_t)-1)

static const char *const gset_names[G_NSETS] = {
    "bridges",	   "unmanaged4", "unmanaged6", "rl4",	   "rl6",
    "same_bridge", "self4",	 "self6",      "id_ports", "id_mac",
    "id_addr4",	   "id_addr6",	 "id_nd6"};
/* The keys of the per-service sets. */
static const enum ir_type k_peer4[] = {IRT_IFNAME, IRT_IPV4, IRT_PROTO,
				       IRT_PORT};
static const enum ir_type k_peer6[] = {IRT_IFNAME, IRT_IPV6, IRT_PROTO,
				       IRT_PORT};
static const enum ir_type k_memb4[] = {IRT_IFNAME, IRT_IPV4};
static const enum ir_type k_memb6[] = {IRT_IFNAME, IRT_IPV6};
static const enum ir_type k_net4[] = {IRT_IPV4, IRT_PROTO, IRT_PORT};
static const enum ir_type k_net6[] = {IRT_IPV6, IRT_PROTO, IRT_PORT};
static const enum ir_type k_host[] = {IRT_PROTO, IRT_PORT};

/* What each per-service set is: its name's suffix, the address family
 * of its elements (0: none, the host's ports), its key and its flags.
 * DNS answers expire on their own should the daemon stop refreshing
 * them. */
#define KEY(k) (int)(sizeof(k) / sizeof((k)[0])), k
static const struct sset_kind {
	const char *suffix;
	int family;
	int nkey;
	const enum ir_type *key;
	unsigned flags;
} sset_kinds[S_NSETS] = {
    [S_PEER4] = {"peer4", AF_INET, KEY(k_peer4), 0},
    [S_PEER6] = {"peer6", AF_INET6, KEY(k_peer6), 0},
    [S_RPEER4] = {"peer4_ranges", AF_INET, KEY(k_peer4), IRS_INTERVAL},
    [S_RPEER6] = {"peer6_ranges", AF_INET6, KEY(k_peer6), IRS_INTERVAL},
    [S_MEMB4] = {"members4", AF_INET, KEY(k_memb4), 0},
    [S_MEMB6] = {"members6", AF_INET6, KEY(k_memb6), 0},
    [S_OUT4] = {"out4", AF_INET, KEY(k_net4), IRS_INTERVAL},
    [S_OUT6] = {"out6", AF_INET6, KEY(k_net6), IRS_INTERVAL},
    [S_FQDN4] = {"fqdn4", AF_INET, KEY(k_net4), IRS_INTERVAL | IRS_TIMEOUT},
    [S_FQDN6] = {"fqdn6", AF_INET6, KEY(k_net6), IRS_INTERVAL | IRS_TIMEOUT},
    [S_IN4] = {"in4", AF_INET, KEY(k_net4), IRS_INTERVAL},
    [S_IN6] = {"in6", AF_INET6, KEY(k_net6), IRS_INTERVAL},
    [S_HOST] = {"host", 0, KEY(k_host), IRS_INTERVAL},
};
#undef KEY

/* The destination address of a per-service set's family. */
static enum ir_expr sset_daddr(size_t i)
{
	return sset_kinds[i].family == AF_INET6 ? IRX_DADDR6 : IRX_DADDR4;
}

static const char *const schain_prefix[C_NCHAINS] = {"svc", "in", "host"};

/* Chains before the per-service ones, in ruleset order. */
static const char *const base_chains[] = {"forward",
					  "input",
					  "from_container",
					  "to_container",
					  "host_from_container",
					  "deny",
					  "unmanaged"};
enum { B_FORWARD, B_INPUT, B_FROM, B_TO, B_HOST, B_DENY, B_UNMANAGED };
#define NBASE (sizeof(base_chains) / sizeof(base_chains[0]))

/* A service T and the boxes (address unused) T may open to another. */
struct into {
	size_t from;
	struct boxes b;
};

/* A range this service may reach on the containers of service to. */
struct rrule {
	size_t to;
	struct box b;
};

struct svcinfo {
	struct into *into; /* who may reach this service, and how */
	size_t ninto, capinto;
	struct rrule *rr; /* ranges this service may reach, a rule each */
	size_t nrr, caprr;
	struct boxes set[S_NSETS]; /* container-independent set contents */
};

/* Exact-value index from a match key to the services to check. */
struct index {
	struct ientry {
		char *key;
		long *svc;
		size_t n, cap;
	} * v;
	size_t cap, n; /* open addressing, cap a power of two */
};

struct compiler {
	const struct policy *p;
	bool audit, conflicts_deny;
	struct svcinfo *svc;
	struct into *world_from; /* services with egress to world */
	size_t nworld, capworld;
	/* Only the sets the policy can ever fill exist: the layout depends
	 * on the policy alone, so containers never change it, and the
	 * kernel is not burdened with thousands of empty sets. */
	size_t *sidx;	    /* nservices * S_NSETS: ruleset index or NO_SET */
	size_t nsets;	    /* sets in the ruleset */
	char **set_names;   /* nsets, in ruleset order */
	char **chain_names; /* nservices * C_NCHAINS */
	struct index idx;
	long *scan; /* services that no exact key indexes */
	size_t nscan, capscan;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static struct ientry *index_slot(struct index *ix, const char *key, bool add)
{
	size_t i, mask;

	if (add && (ix->n + 1) * 2 > ix->cap) {
		struct index big = {
		    xcalloc(ix->cap ? ix->cap * 2 : 64, sizeof(struct ientry)),
		    ix->cap ? ix->cap * 2 : 64, 0};

		for (i = 0; i < ix->cap; i++)
			if (ix->v[i].key) {
				*index_slot(&big, ix->v[i].key, true) =
				    ix->v[i];
				big.n++;
			}
		free(ix->v);
		*ix = big;
	}
	if (!ix->cap)
		return NULL;
	mask = ix->cap - 1;
	for (i = hash(key) & mask;; i = (i + 1) & mask) {
		if (!ix->v[i].key)
			return add ? &ix->v[i] : NULL;
		if (!strcmp(ix->v[i].key, key))
			return &ix->v[i];
	}
}

static void index_add(struct index *ix, const char *key, long svc)
{
	struct ientry *e = index_slot(ix, key, true);

	if (!e->key) {
		e->key = xstrdup(key);
		ix->n++;
	}
	*PUSH(e->svc, e->n, e->cap) = svc;
}

static bool all_exact(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (policy_is_glob(v[i]))
			return false;
	return n > 0;
}

/* Index each service under its most selective exact key, so that
 * assigning a container checks a handful of services, not all of them. */
static void build_index(struct compiler *cc)
{
	const struct policy *p = cc->p;
	char key[512];
	size_t s, i;

	for (s = 0; s < p->nservices; s++) {
		const struct pol_match *m = &p->services[s].match;

		if (all_exact(m->compose, m->ncompose)) {
			for (i = 0; i < m->ncompose; i++) {
				snprintf(key, sizeof(key), "c\1%s",
					 m->compose[i]);
				index_add(&cc->idx, key, (long)s);
			}
			continue;
		}
		if (all_exact(m->names, m->nnames)) {
			for (i = 0; i < m->nnames; i++) {
				snprintf(key, sizeof(key), "n\1%s",
					 m->names[i]);
				index_add(&cc->idx, key, (long)s);
			}
			continue;
		}
		if (m->nlabels) {
			snprintf(key, sizeof(key), "l\1%s\1%s",
				 m->labels[0].key, m->labels[0].value);
			index_add(&cc->idx, key, (long)s);
			continue;
		}
		*PUSH(cc->scan, cc->nscan, cc->capscan) = (long)s;
	}
}

static bool any_glob(char **pat, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!fnmatch(pat[i], s, 0))
			return true;
	return false;
}

static bool image_match(const struct pol_match *m, const char *image)
{
	const char *slash = strrchr(image, '/');
	const char *base = slash ? slash + 1 : image;
	char buf[512];

	if (any_glob(m->images, m->nimages, image))
		return true;
	/* "redis" is "redis:latest" to Docker */
	if (strchr(base, ':') || strchr(base, '@'))
		return false;
	snprintf(buf, sizeof(buf), "%s:latest", image);
	return any_glob(m->images, m->nimages, buf);
}

static bool service_matches(const struct pol_match *m,
			    const struct inv_container *c)
{
	const char *v;
	size_t i;

	if (m->nnames && !any_glob(m->names, m->nnames, c->name))
		return false;
	if (m->nimages && !image_match(m, c->image))
		return false;
	if (m->ncompose &&
	    (!c->compose_service ||
	     !any_glob(m->compose, m->ncompose, c->compose_service)))
		return false;
	if (m->nprojects &&
	    (!c->compose_project ||
	     !any_glob(m->projects, m->nprojects, c->compose_project)))
		return false;
	for (i = 0; i < m->nlabels; i++) {
		v = inv_label(c, m->labels[i].key);
		if (!v || (strcmp(m->labels[i].value, "*") &&
			   strcmp(m->labels[i].value, v)))
			return false;
	}
	return m->nnames || m->nimages || m->ncompose || m->nprojects ||
	       m->nlabels;
}

static void consider(const struct compiler *cc, const struct inv_container *c,
		     long s, long *first, long *second)
{
	if (s == *first || s == *second)
		return;
	const struct pol_service *sv = &cc->p->services[s];

	if (!service_matches(&sv->match, c))
		return;
	/* a scoped file's service holds what its scope takes, only */
	if (sv->scope >= 0 &&
	    !service_matches(&cc->p->scopes[sv->scope].match, c))
		return;
	if (*first < 0 || s < *first) {
		*second = *first;
		*first = s;
	} else if (*second < 0 || s < *second) {
		*second = s;
	}
}

static void consider_key(const struct compiler *cc,
			 const struct inv_container *c, const char *key,
			 long *first, long *second)
{
	const struct ientry *e =
	    index_slot((struct index *)&cc->idx, key, false);
	size_t i;

	for (i = 0; e && i < e->n; i++)
		consider(cc, c, e->svc[i], first, second);
}

long compile_assign(const struct compiler *cc, const struct inv_container *c,
		    long *first, long *second)
{
	char key[512];
	size_t i;

	*first = *second = -1;
	if (c->compose_service) {
		snprintf(key, sizeof(key), "c\1%s", c->compose_service);
		consider_key(cc, c, key, first, second);
	}
	snprintf(key, sizeof(key), "n\1%s", c->name);
	consider_key(cc, c, key, first, second);
	for (i = 0; i < c->nlabels; i++) {
		snprintf(key, sizeof(key), "l\1%s\1%s", c->labels[i].key,
			 c->labels[i].value);
		consider_key(cc, c, key, first, second);
		snprintf(key, sizeof(key), "l\1%s\1*", c->labels[i].key);
		consider_key(cc, c, key, first, second);
	}
	for (i = 0; i < cc->nscan; i++)
		consider(cc, c, cc->scan[i], first, second);
	if (*second >= 0)
		return COMPILE_CONFLICT;
	return *first >= 0 ? *first : COMPILE_UNMATCHED;
}

static struct into *into_for(struct into **v, size_t *n, size_t *cap,
			     size_t from)
{
	size_t i;
	struct into *x;

	for (i = 0; i < *n; i++)
		if ((*v)[i].from == from)
			return &(*v)[i];
	x = PUSH(*v, *n, *cap);
	memset(x, 0, sizeof(*x));
	x->from = from;
	return x;
}

static void add_cidrs(struct boxes *b4, struct boxes *b6,
		      const struct pol_edge *e, const struct pol_peer *peer)
{
	size_t i;

	if (peer->kind == PEER_WORLD) {
		boxes_add_ports(b4, e, 0, 0xffffffffu);
		boxes_add_ports(b6, e, 0, ~(u128)0);
		return;
	}
	for (i = 0; i < peer->ncidrs; i++)
		boxes_add_ports(peer->cidrs[i].family == AF_INET ? b4 : b6, e,
				peer->cidrs[i].lo, peer->cidrs[i].hi);
}

static void build_edges(struct compiler *cc, const struct compile_opts *o)
{
	const struct policy *p = cc->p;
	size_t i, j, s;

	for (i = 0; i < p->nedges; i++) {
		const struct pol_edge *e = &p->edges[i];
		struct svcinfo *src = e->src.kind == PEER_SERVICE
					  ? &cc->svc[e->src.service]
					  : NULL;
		struct svcinfo *dst = e->dst.kind == PEER_SERVICE
					  ? &cc->svc[e->dst.service]
					  : NULL;
		struct into *x;

		if (src && dst) {
			x = into_for(&dst->into, &dst->ninto, &dst->capinto,
				     e->src.service);
			boxes_add_ports(&x->b, e, 0, 0);
		} else if (src && e->dst.kind == PEER_WORLD) {
			x = into_for(&cc->world_from, &cc->nworld,
				     &cc->capworld, e->src.service);
			boxes_add_ports(&x->b, e, 0, 0);
			add_cidrs(&src->set[S_OUT4], &src->set[S_OUT6], e,
				  &e->dst);
		} else if (src && e->dst.kind == PEER_CIDR) {
			add_cidrs(&src->set[S_OUT4], &src->set[S_OUT6], e,
				  &e->dst);
		} else if (src && e->dst.kind == PEER_HOST) {
			boxes_add_ports(&src->set[S_HOST], e, 0, 0);
		} else if (src && e->dst.kind == PEER_FQDN) {
			for (j = 0; j < o->nfqdn; j++) {
				const struct compile_fqdn *f = &o->fqdn[j];
				struct boxes *b = f->family == AF_INET
						      ? &src->set[S_FQDN4]
						      : &src->set[S_FQDN6];
				size_t from = b->n;

				if (strcasecmp(f->name, e->dst.fqdn))
					continue;
				boxes_add_ports(b, e, f->addr, f->addr);
				while (from < b->n)
					b->v[from++].timeout_ms = f->timeout_ms;
			}
		} else if (dst) {
			add_cidrs(&dst->set[S_IN4], &dst->set[S_IN6], e,
				  &e->src);
		}
	}
	for (s = 0; s < p->nservices; s++) {
		struct svcinfo *si = &cc->svc[s];

		for (i = 0; i < si->ninto; i++)
			boxes_normalize(&si->into[i].b);
		for (i = 0; i < S_NSETS; i++)
			boxes_normalize(&si->set[i]);
	}
	for (i = 0; i < cc->nworld; i++)
		boxes_normalize(&cc->world_from[i].b);
}

static bool box_exact(const struct box *x)
{
	return x->proto_lo == x->proto_hi && x->port_lo == x->port_hi;
}

/* Whether boxes b hold anything for family fam (0: any), exact or
 * ranges as asked. */
static bool boxes_have(const struct boxes *b, int fam, int exact)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if ((!fam || box_in_family(&b->v[i], fam)) &&
		    (exact < 0 || box_exact(&b->v[i]) == (exact > 0)))
			return true;
	return false;
}

/* The peer sets (of the service whose needs nd are) that boxes b fill. */
static void need_peer(bool *nd, const struct boxes *b)
{
	int fi;

	for (fi = 0; fi < 2; fi++) {
		int fam = fi ? AF_INET6 : AF_INET;

		nd[S_PEER4 + fi] |= boxes_have(b, fam, 1);
		nd[S_RPEER4 + fi] |= boxes_have(b, fam, 0);
	}
}

/* Service to may be reached as x says: exact tuples in the peer sets of
 * x->from, ranges as rules of x->from over the members of to. */
static void need_into(struct compiler *cc, bool *need, size_t to,
		      const struct into *x)
{
	size_t j;
	int fi;

	for (j = 0; j < x->b.n; j++) {
		const struct box *b = &x->b.v[j];

		for (fi = 0; fi < 2; fi++) {
			if (!box_in_family(b, fi ? AF_INET6 : AF_INET))
				continue;
			if (box_exact(b))
				need[x->from * S_NSETS + S_PEER4 + fi] = true;
			else
				need[to * S_NSETS + S_MEMB4 + fi] = true;
		}
		if (!box_exact(b))
			*PUSH(cc->svc[x->from].rr, cc->svc[x->from].nrr,
			      cc->svc[x->from].caprr) = (struct rrule){to, *b};
	}
}

/* Which per-service sets can ever hold an element, from the policy
 * alone, and their place in the ruleset. */
static void plan_sets(struct compiler *cc)
{
	const struct policy *p = cc->p;
	bool *need = xcalloc(p->nservices * S_NSETS + 1, sizeof(*need));
	size_t s, i, k, n = 0;
	int fi;

	for (s = 0; s < p->nservices; s++) {
		const struct svcinfo *si = &cc->svc[s];

		for (i = 0; i < si->ninto; i++)
			need_into(cc, need, s, &si->into[i]);
		for (k = S_OUT4; k < S_NSETS; k++)
			need[s * S_NSETS + k] |=
			    boxes_have(&si->set[k], sset_kinds[k].family, -1);
	}
	for (i = 0; i < cc->nworld; i++)
		need_peer(&need[cc->world_from[i].from * S_NSETS],
			  &cc->world_from[i].b);
	/* fqdn sets exist with the edge, whatever DNS answers today */
	for (i = 0; i < p->nedges; i++)
		if (p->edges[i].dst.kind == PEER_FQDN &&
		    p->edges[i].src.kind == PEER_SERVICE) {
			need[p->edges[i].src.service * S_NSETS + S_FQDN4] =
			    true;
			need[p->edges[i].src.service * S_NSETS + S_FQDN6] =
			    true;
		}
	/* containers are dispatched to their service's chains by their
	 * members set: a set of addresses, no verdicts, so that adding one
	 * never makes the kernel validate the whole table (as an element
	 * with a jump in a verdict map does) */
	for (s = 0; s < p->nservices; s++)
		for (fi = 0; fi < 2; fi++) {
			bool *nd = &need[s * S_NSETS];
			bool any = nd[S_PEER4 + fi] || nd[S_RPEER4 + fi] ||
				   nd[S_OUT4 + fi] || nd[S_FQDN4 + fi] ||
				   nd[S_IN4 + fi] || nd[S_HOST];

			for (i = 0; i < cc->svc[s].nrr && !any; i++)
				any = box_in_family(&cc->svc[s].rr[i].b,
						    fi ? AF_INET6 : AF_INET);
			nd[S_MEMB4 + fi] |= any;
		}
	cc->sidx = xcalloc(p->nservices * S_NSETS + 1, sizeof(*cc->sidx));
	cc->set_names =
	    xcalloc(G_NSETS + p->nservices * S_NSETS, sizeof(*cc->set_names));
	for (k = 0; k < G_NSETS; k++)
		cc->set_names[n++] = xstrdup(gset_names[k]);
	for (s = 0; s < p->nservices; s++)
		for (k = 0; k < S_NSETS; k++) {
			cc->sidx[s * S_NSETS + k] = NO_SET;
			if (!need[s * S_NSETS + k])
				continue;
			cc->sidx[s * S_NSETS + k] = n;
			cc->set_names[n++] = xasprintf(
			    "%s_%s", p->services[s].name, sset_kinds[k].suffix);
		}
	cc->nsets = n;
	free(need);
}

struct compiler *compile_new(const struct policy *p,
			     const struct compile_opts *opts)
{
	static const struct compile_opts none;
	struct compiler *cc = xcalloc(1, sizeof(*cc));
	size_t s, k;

	if (!opts)
		opts = &none;
	cc->p = p;
	cc->audit = opts->audit || p->mode == POL_AUDIT;
	cc->conflicts_deny = opts->conflicts_deny;
	cc->svc = xcalloc(p->nservices ? p->nservices : 1, sizeof(*cc->svc));
	cc->chain_names = xcalloc(p->nservices * C_NCHAINS + 1, sizeof(char *));
	for (s = 0; s < p->nservices; s++) {
		for (k = 0; k < C_NCHAINS; k++)
			cc->chain_names[s * C_NCHAINS + k] = xasprintf(
			    "%s_%s", schain_prefix[k], p->services[s].name);
	}
	build_index(cc);
	build_edges(cc, opts);
	plan_sets(cc);
	return cc;
}

void compile_free(struct compiler *cc)
{
	size_t s, k;

	if (!cc)
		return;
	for (s = 0; s < cc->p->nservices; s++) {
		struct svcinfo *si = &cc->svc[s];

		for (k = 0; k < si->ninto; k++)
			free(si->into[k].b.v);
		for (k = 0; k < S_NSETS; k++)
			free(si->set[k].v);
		free(si->into);
		free(si->rr);
		for (k = 0; k < C_NCHAINS; k++)
			free(cc->chain_names[s * C_NCHAINS + k]);
	}
	for (k = 0; k < cc->nsets; k++)
		free(cc->set_names[k]);
	free(cc->sidx);
	for (k = 0; k < cc->nworld; k++)
		free(cc->world_from[k].b.v);
	for (k = 0; k < cc->idx.cap; k++) {
		free(cc->idx.v[k].key);
		free(cc->idx.v[k].svc);
	}
	free(cc->idx.v);
	free(cc->scan);
	free(cc->world_from);
	free(cc->set_names);
	free(cc->chain_names);
	free(cc->svc);
	free(cc);
}

/* --- managed networks --------------------------------------------------------
 */

static bool auto_candidate(const char *net)
{
	return strcmp(net, "bridge") && strcmp(net, "host") &&
	       strcmp(net, "none");
}

static bool listed(const struct policy *p, const char *net)
{
	return any_glob(p->networks, p->nnetworks, net);
}

/* In auto mode a network is managed while a matched container joins it;
 * skip excludes one container (the one leaving). */
static bool net_managed(const struct compiler *cc, const struct inventory *inv,
			const char *net, const struct inv_container *skip)
{
	long a, b;
	size_t i, j;

	if (cc->p->networks_set)
		return listed(cc->p, net);
	if (!auto_candidate(net))
		return false;
	for (i = 0; i < inv->n; i++) {
		const struct inv_container *c = &inv->c[i];

		if (c == skip)
			continue;
		for (j = 0; j < c->nnets; j++)
			if (!strcmp(c->nets[j].name, net) &&
			    compile_assign(cc, c, &a, &b) >= 0)
				return true;
	}
	return false;
}

bool compile_net_managed(const struct compiler *cc, const struct inventory *inv,
			 const char *net)
{
	return net_managed(cc, inv, net, NULL);
}

bool compile_net_managed_n(const struct compiler *cc, const char *net,
			   size_t matched)
{
	if (cc->p->networks_set)
		return listed(cc->p, net);
	return auto_candidate(net) && matched > 0;
}

/* Managed networks of the whole inventory: one flag per (container,
 * network), computed in one pass. */
static bool *managed_flags(const struct compiler *cc,
			   const struct inventory *inv, const long *assign)
{
	size_t i, j, k, total = 0, *off;
	bool *f;

	off = xcalloc(inv->n + 1, sizeof(*off));
	for (i = 0; i < inv->n; i++) {
		off[i] = total;
		total += inv->c[i].nnets;
	}
	off[inv->n] = total;
	f = xcalloc(total + 1, sizeof(*f));
	for (i = 0; i < inv->n; i++)
		for (j = 0; j < inv->c[i].nnets; j++) {
			const char *net = inv->c[i].nets[j].name;

			if (cc->p->networks_set) {
				f[off[i] + j] = listed(cc->p, net);
				continue;
			}
			if (assign[i] < 0 || !auto_candidate(net) ||
			    f[off[i] + j])
				continue;
			/* mark this network everywhere it appears */
			for (k = 0; k < inv->n; k++) {
				size_t m;

				for (m = 0; m < inv->c[k].nnets; m++)
					if (!strcmp(inv->c[k].nets[m].name,
						    net))
						f[off[k] + m] = true;
			}
		}
	free(off);
	return f;
}

/* --- emission ----------------------------------------------------------------
 */

struct sink {
	struct ir_ruleset *rs; /* full compile */
	struct ir_delta *delta;
	bool add;
	const struct compiler *cc;
};

static struct ir_elem *emit(struct sink *k, size_t set)
{
	struct ir_change *ch;

	if (k->rs)
		return ir_elem_add(&k->rs->sets[set]);
	ch = PUSH(k->delta->v, k->delta->n, k->delta->cap);
	memset(ch, 0, sizeof(*ch));
	ch->add = k->add;
	ch->set = set;
	ch->set_name = k->cc->set_names[set];
	return &ch->e;
}

/* The ruleset index of service s's set k, or NO_SET. */
static size_t service_set(const struct compiler *cc, size_t s, int k)
{
	return cc->sidx[s * S_NSETS + (size_t)k];
}

/* (bridge . address) into a members set. */
static void emit_member(struct sink *k, size_t set, const char *bridge, u128 a)
{
	struct ir_elem *e = emit(k, set);

	e->lo[0] = e->hi[0] = ir_ifname(bridge);
	e->lo[1] = e->hi[1] = a;
}

/* Service from may reach address a on bridge through boxes b: exact
 * tuples into its hash set; ranges into its interval set when asked (to
 * a managed container, ranges are rules over its service's members). */
static void emit_peer(struct sink *k, size_t from, const char *bridge, u128 a,
		      const struct boxes *b, int fi, bool ranges)
{
	int fam = fi ? AF_INET6 : AF_INET;
	struct ir_elem *e;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (!box_in_family(&b->v[i], fam) ||
		    (!ranges && !box_exact(&b->v[i])))
			continue;
		e = emit(k,
			 service_set(
			     k->cc, from,
			     (box_exact(&b->v[i]) ? S_PEER4 : S_RPEER4) + fi));
		e->lo[0] = e->hi[0] = ir_ifname(bridge);
		e->lo[1] = e->hi[1] = a;
		e->lo[2] = b->v[i].proto_lo;
		e->hi[2] = b->v[i].proto_hi;
		e->lo[3] = b->v[i].port_lo;
		e->hi[3] = b->v[i].port_hi;
	}
}

/* Whether svc_S has a rule for family fi besides the final jump to deny
 * (as the layout writes them). */
/* The members set a range rule of family fi looks destinations up in,
 * or NO_SET when the layout writes no such rule. */
static size_t range_members(const struct compiler *cc, const struct rrule *rr,
			    int fi)
{
	if (!box_in_family(&rr->b, fi ? AF_INET6 : AF_INET))
		return NO_SET;
	return service_set(cc, rr->to, S_MEMB4 + fi);
}

static bool svc_egress(const struct compiler *cc, size_t s, int fi)
{
	static const int sets[] = {S_PEER4, S_RPEER4, S_OUT4, S_FQDN4};
	size_t i;

	for (i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
		if (service_set(cc, s, sets[i] + fi) != NO_SET)
			return true;
	for (i = 0; i < cc->svc[s].nrr; i++)
		if (range_members(cc, &cc->svc[s].rr[i], fi) != NO_SET)
			return true;
	return false;
}

static void emit_port_addr(struct sink *k, size_t set, const char *port, u128 a)
{
	struct ir_elem *e = emit(k, set);

	e->lo[0] = e->hi[0] = ir_ifname(port);
	e->lo[1] = e->hi[1] = a;
}

/* The endpoint's frames bound to its bridge port: its MAC and its
 * addresses, whatever its service (what it may reach is the inet
 * table's business; who it is, this one's). */
static void emit_identity(struct sink *k, const struct inv_net *n)
{
	if (!n->port)
		return; /* not bound: its port, if known, drops everything */
	emit_port_addr(k, G_ID_PORTS, n->port, 0);
	if (n->has_mac)
		emit_port_addr(k, G_ID_MAC, n->port, n->mac);
	if (n->has4)
		emit_port_addr(k, G_ID_ADDR4, n->port, n->ip4);
	if (n->has6) {
		emit_port_addr(k, G_ID_ADDR6, n->port, n->ip6);
		emit_port_addr(k, G_ID_ND6, n->port, n->ip6);
	}
	if (n->has_ll6) {
		emit_port_addr(k, G_ID_ADDR6, n->port, n->ll6);
		emit_port_addr(k, G_ID_ND6, n->port, n->ll6);
	}
}

/* Everything one container on one managed network brings. */
static void emit_container_net(struct sink *k, long svc,
			       const struct inv_net *n)
{
	const struct compiler *cc = k->cc;
	int fi;
	size_t i;

	emit_identity(k, n);
	for (fi = 0; fi < 2; fi++) {
		u128 a = fi ? n->ip6 : n->ip4;
		struct ir_elem *e;

		if (!(fi ? n->has6 : n->has4))
			continue;
		/* it may send ICMP errors about its own connections */
		e = emit(k, G_SELF4 + (size_t)fi);
		e->lo[0] = e->hi[0] = e->lo[1] = e->hi[1] = a;
		if (svc >= 0) {
			const struct svcinfo *si = &cc->svc[svc];

			/* the members set is the dispatch: a service with
			 * nothing to go to nor to be reached on has none,
			 * and its containers fall through to deny */
			for (i = 0; i < si->ninto; i++)
				emit_peer(k, si->into[i].from, n->bridge, a,
					  &si->into[i].b, fi, false);
			if (service_set(cc, (size_t)svc, S_MEMB4 + fi) !=
			    NO_SET)
				emit_member(
				    k,
				    service_set(cc, (size_t)svc, S_MEMB4 + fi),
				    n->bridge, a);
		} else if (svc == COMPILE_UNMATCHED && cc->p->unmatched_allow) {
			/* not managed: free to go, and "world" to others */
			emit_member(k, G_UNM4 + (size_t)fi, n->bridge, a);
			for (i = 0; i < cc->nworld; i++)
				emit_peer(k, cc->world_from[i].from, n->bridge,
					  a, &cc->world_from[i].b, fi, true);
		}
		/* unmatched (deny) and conflicting containers get nothing:
		 * every path ends in the deny chain */
	}
}

/* A managed bridge; same_bridge holds (bridge . bridge) so that peer
 * traffic must stay on one network: a container routing through another
 * network's bridge gains nothing. */
static void emit_bridge(struct sink *k, const char *bridge)
{
	struct ir_elem *e = emit(k, G_BRIDGES);

	e->lo[0] = e->hi[0] = ir_ifname(bridge);
	e = emit(k, G_SAME);
	e->lo[0] = e->hi[0] = e->lo[1] = e->hi[1] = ir_ifname(bridge);
}

/* --- the layout
 * ------------------------------------------------------------------ */

static void lookup_match(struct ir_rule *r, const char *set, bool neg, int nkey,
			 ...)
{
	struct ir_match *m = &r->m[r->nm++];
	va_list ap;
	int i;

	m->kind = IRM_LOOKUP;
	m->set = set;
	m->neg = neg;
	m->nkey = nkey;
	va_start(ap, nkey);
	for (i = 0; i < nkey; i++)
		m->key[i] = (enum ir_expr)va_arg(ap, int);
	va_end(ap);
}

static void rule_verdict(struct ir_rule *r, enum ir_stmt st, const char *target)
{
	r->stmt = st;
	r->target = target;
}

/* (bridge . address) @set, then a jump to chain (or accept, NULL). */
static void member_rule(struct ir_chain *c, const char *set, bool src, int fi,
			const char *chain)
{
	struct ir_rule *r = ir_rule_add(c);

	lookup_match(r, set, false, 2, src ? IRX_IIFNAME : IRX_OIFNAME,
		     src ? (fi ? IRX_SADDR6 : IRX_SADDR4)
			 : (fi ? IRX_DADDR6 : IRX_DADDR4));
	rule_verdict(r, chain ? IRST_JUMP : IRST_ACCEPT, chain);
}

/* Chain c sends a packet on to the service chain `which` (C_SVC, C_IN or
 * C_HOST) of the service whose members set holds its source (C_SVC,
 * C_HOST) or destination (C_IN), where that chain would do more than
 * deny; an unmanaged container's packet to unmanaged (NULL: accept). */
static void dispatch_rules(const struct compiler *cc, struct ir_ruleset *rs,
			   struct ir_chain *c, int which, const char *unmanaged)
{
	bool src = which != C_IN;
	size_t s;
	int fi;

	for (fi = 0; fi < 2; fi++) {
		for (s = 0; s < cc->p->nservices; s++) {
			size_t memb = service_set(cc, s, S_MEMB4 + fi);
			bool more =
			    which == C_SVC ? svc_egress(cc, s, fi)
			    : which == C_IN
				? service_set(cc, s, S_IN4 + fi) != NO_SET
				: service_set(cc, s, S_HOST) != NO_SET;

			if (memb != NO_SET && more)
				member_rule(c, rs->sets[memb].name, src, fi,
					    rs->chains[NBASE + s * C_NCHAINS +
						       (size_t)which]
						.name);
		}
		member_rule(c, rs->sets[G_UNM4 + (size_t)fi].name, src, fi,
			    unmanaged);
	}
}

static void jump_rule(struct ir_chain *c, const char *to)
{
	rule_verdict(ir_rule_add(c), IRST_JUMP, to);
}

/* ICMPv6 that keeps a link working, from addresses bulkhead never places
 * (link-local, unspecified) to link-scope multicast: MLD queries, reports
 * and done (130-132), router and neighbour solicitations and
 * advertisements (133-136), MLDv2 reports (143). Redirects (137) are not
 * among them. */
static void range_match(struct ir_rule *r, enum ir_expr x, unsigned lo,
			unsigned hi, unsigned max);

/* ICMPv6 that keeps a link working and carries nothing else: neighbour
 * solicitations and advertisements between neighbours (hop limit 255:
 * never routed), no longer than one link-layer option (an NA's target
 * is its sender's own, the bridge table makes sure); to the host also
 * router solicitations and MLD reports (hop limit 1). Router
 * advertisements, redirects and MLD queries from a container are not
 * among them; nor is anything from container to container but ND. */
static const struct link_icmpv6 {
	uint32_t lo, hi, hoplimit, minlen, maxlen;
} forward_icmpv6[] = {{135, 136, 255, 24, 32}},
  input_icmpv6[] = {{133, 133, 255, 0, 0},
		    {135, 136, 255, 24, 32},
		    {131, 132, 1, 0, 0},
		    {143, 143, 1, 0, 0}};

static void ct_match(struct ir_rule *r, unsigned mask)
{
	r->m[r->nm].kind = IRM_CT_ESTABLISHED;
	r->m[r->nm++].lo = mask;
}

static void base_rules(struct ir_chain *c, const struct ir_ruleset *rs,
		       bool input)
{
	static const enum ir_expr ends[2][2] = {
	    {IRX_CT_OSADDR4, IRX_CT_ODADDR4}, {IRX_CT_OSADDR6, IRX_CT_ODADDR6}};
	const struct link_icmpv6 *l = input ? input_icmpv6 : forward_icmpv6;
	size_t i, n = input
			  ? sizeof(input_icmpv6) / sizeof(input_icmpv6[0])
			  : sizeof(forward_icmpv6) / sizeof(forward_icmpv6[0]);
	struct ir_rule *r = ir_rule_add(c);
	int fi, e;

	ct_match(r, IR_CT_ESTABLISHED);
	rule_verdict(r, IRST_ACCEPT, NULL);
	/* a related packet (an ICMP error about a connection) from a
	 * container comes from one end of that connection: else any
	 * container could forge one about anybody's connection */
	r = ir_rule_add(c);
	ct_match(r, IR_CT_RELATED);
	lookup_match(r, rs->sets[G_BRIDGES].name, true, 1, IRX_IIFNAME);
	rule_verdict(r, IRST_ACCEPT, NULL);
	for (fi = 0; fi < 2; fi++)
		for (e = 0; e < 2; e++) {
			r = ir_rule_add(c);
			ct_match(r, IR_CT_RELATED);
			lookup_match(r, rs->sets[G_SELF4 + (size_t)fi].name,
				     false, 2, fi ? IRX_SADDR6 : IRX_SADDR4,
				     ends[fi][e]);
			rule_verdict(r, IRST_ACCEPT, NULL);
		}
	for (i = 0; i < n; i++) {
		r = ir_rule_add(c);
		r->m[r->nm].kind = IRM_ND;
		r->m[r->nm].lo = l[i].lo;
		r->m[r->nm++].hi = l[i].hi;
		range_match(r, IRX_HOPLIMIT, l[i].hoplimit, l[i].hoplimit, 256);
		if (l[i].maxlen)
			range_match(r, IRX_IP6_LEN, l[i].minlen, l[i].maxlen,
				    65536);
		rule_verdict(r, IRST_ACCEPT, NULL);
	}
}

static void range_match(struct ir_rule *r, enum ir_expr x, unsigned lo,
			unsigned hi, unsigned max)
{
	struct ir_match *m;

	if (lo == 0 && hi == max)
		return; /* any */
	m = &r->m[r->nm++];
	m->kind = IRM_RANGE;
	m->key[0] = x;
	m->lo = lo;
	m->hi = hi;
}

/* svc may reach rr->b on the containers of service rr->to, on one
 * bridge: their members set, and the protocol and ports in the rule. */
static void range_rule(const struct compiler *cc, struct ir_ruleset *rs,
		       struct ir_chain *svc, const struct rrule *rr, int fi)
{
	size_t memb = range_members(cc, rr, fi);
	struct ir_rule *r;

	if (memb == NO_SET)
		return;
	r = ir_rule_add(svc);
	lookup_match(r, rs->sets[G_SAME].name, false, 2, IRX_IIFNAME,
		     IRX_OIFNAME);
	lookup_match(r, rs->sets[memb].name, false, 2, IRX_OIFNAME,
		     fi ? IRX_DADDR6 : IRX_DADDR4);
	range_match(r, IRX_L4PROTO, rr->b.proto_lo, rr->b.proto_hi, 255);
	range_match(r, IRX_DPORT, rr->b.port_lo, rr->b.port_hi, 65535);
	rule_verdict(r, IRST_ACCEPT, NULL);
}

/* table bridge: frames from a managed bridge's ports are the endpoint's
 * own, or dropped, before the bridge learns their source MAC and before
 * br_netfilter hands them to the inet hooks; a VLAN tag, in the frame or
 * in the packet's metadata, reads as its ether type (8100, 88a8) and is
 * dropped with every other type but IPv4, IPv6 and ARP */
static struct ir_rule *bridge_drop(struct ir_chain *c)
{
	struct ir_rule *r = ir_rule_add(c);

	r->counter = true;
	rule_verdict(r, IRST_DROP, NULL);
	return r;
}

static void nd_match(struct ir_rule *r, uint32_t type)
{
	r->m[r->nm].kind = IRM_ND;
	r->m[r->nm].lo = r->m[r->nm].hi = type;
	r->nm++;
}

static void cmp_match(struct ir_rule *r, enum ir_expr x, bool neg, u128 v)
{
	struct ir_match *m = &r->m[r->nm++];

	m->kind = IRM_CMP;
	m->key[0] = x;
	m->nkey = 1;
	m->neg = neg;
	m->val = v;
}

static void bridge_layout(struct ir_ruleset *rs)
{
	static const struct {
		uint16_t type;
		const char *chain;
	} l3[] = {{0x0800, "id_ip4"}, {0x86dd, "id_ip6"}, {0x0806, "id_arp"}};
	/* from a container: no router advertisements, redirects or MLD
	 * queries; neighbour advertisements only for its own addresses */
	static const uint32_t icmpv6_drop[] = {134, 137, 130};
	const char *ports = rs->sets[G_ID_PORTS].name,
		   *mac = rs->sets[G_ID_MAC].name,
		   *a4 = rs->sets[G_ID_ADDR4].name,
		   *a6 = rs->sets[G_ID_ADDR6].name,
		   *nd = rs->sets[G_ID_ND6].name;
	struct ir_chain *pre, *port, *ip4, *ip6, *arp;
	struct ir_rule *r;
	size_t i, first = rs->nchains;

	ir_chain_add(rs, "prerouting", IRH_PREROUTING, -10);
	ir_chain_add(rs, "id_port", IRH_NONE, 0);
	ir_chain_add(rs, "id_ip4", IRH_NONE, 0);
	ir_chain_add(rs, "id_ip6", IRH_NONE, 0);
	ir_chain_add(rs, "id_arp", IRH_NONE, 0);
	pre = &rs->chains[first];
	port = pre + 1;
	ip4 = pre + 2;
	ip6 = pre + 3;
	arp = pre + 4;
	for (i = first; i < rs->nchains; i++)
		rs->chains[i].family = IRF_BRIDGE;

	r = ir_rule_add(pre);
	lookup_match(r, ports, false, 1, IRX_IIFNAME);
	rule_verdict(r, IRST_JUMP, port->name);

	/* an unbound port has no MAC in id_mac: nothing passes */
	r = bridge_drop(port);
	lookup_match(r, mac, true, 2, IRX_IIFNAME, IRX_ETHER_SADDR);
	for (i = 0; i < sizeof(l3) / sizeof(l3[0]); i++) {
		r = ir_rule_add(port);
		cmp_match(r, IRX_ETHER_TYPE, false, l3[i].type);
		rule_verdict(r, IRST_JUMP, l3[i].chain);
	}
	bridge_drop(port);

	/* each rule names its protocol as nft writes it (meta protocol
	 * before an IP header field, ether type before ICMPv6 and ARP),
	 * so that our rules are the ones `nft -f` of the plan makes */
	r = ir_rule_add(ip4);
	cmp_match(r, IRX_META_PROTOCOL, false, 0x0800);
	lookup_match(r, a4, false, 2, IRX_IIFNAME, IRX_SADDR4);
	rule_verdict(r, IRST_ACCEPT, NULL);
	bridge_drop(ip4);

	/* duplicate address detection, before the address is its own */
	for (i = 0; i < 2; i++) {
		r = ir_rule_add(ip6);
		cmp_match(r, IRX_META_PROTOCOL, false, 0x86dd);
		cmp_match(r, IRX_SADDR6, false, 0);
		nd_match(r, i ? 143 : 135);
		rule_verdict(r, IRST_ACCEPT, NULL);
	}
	r = bridge_drop(ip6);
	cmp_match(r, IRX_META_PROTOCOL, false, 0x86dd);
	lookup_match(r, a6, true, 2, IRX_IIFNAME, IRX_SADDR6);
	for (i = 0; i < sizeof(icmpv6_drop) / sizeof(icmpv6_drop[0]); i++) {
		r = bridge_drop(ip6);
		cmp_match(r, IRX_ETHER_TYPE, false, 0x86dd);
		nd_match(r, icmpv6_drop[i]);
	}
	r = bridge_drop(ip6);
	cmp_match(r, IRX_ETHER_TYPE, false, 0x86dd);
	nd_match(r, 136);
	lookup_match(r, nd, true, 2, IRX_IIFNAME, IRX_ND_TARGET);
	rule_verdict(ir_rule_add(ip6), IRST_ACCEPT, NULL);

	/* Ethernet and IPv4, 6 and 4 bytes: what the offsets below assume */
	r = bridge_drop(arp);
	cmp_match(r, IRX_ARP_HDR, true, ((u128)0x00010800 << 16) | 0x0604);
	r = bridge_drop(arp);
	cmp_match(r, IRX_ETHER_TYPE, false, 0x0806);
	lookup_match(r, mac, true, 2, IRX_IIFNAME, IRX_ARP_SHA);
	r = ir_rule_add(arp);
	cmp_match(r, IRX_ETHER_TYPE, false, 0x0806);
	lookup_match(r, a4, false, 2, IRX_IIFNAME, IRX_ARP_SPA);
	rule_verdict(r, IRST_ACCEPT, NULL);
	bridge_drop(arp);
}

static void layout(const struct compiler *cc, struct ir_ruleset *rs)
{
	static const enum ir_type tmap4[] = {IRT_IFNAME, IRT_IPV4};
	static const enum ir_type tmap6[] = {IRT_IFNAME, IRT_IPV6};
	static const enum ir_type tif[] = {IRT_IFNAME};
	static const enum ir_type tif2[] = {IRT_IFNAME, IRT_IFNAME};
	static const enum ir_type trl4[] = {IRT_IPV4};
	static const enum ir_type trl6[] = {IRT_IPV6};
	const struct policy *p = cc->p;
	struct ir_chain *c[NBASE];
	struct ir_set *st;
	struct ir_rule *r;
	const char *deny, *bridges;
	size_t s, i;
	int fi;

	/* sets, in set-id order */
	ir_set_add(rs, gset_names[G_BRIDGES], 0, 1, tif);
	ir_set_add(rs, gset_names[G_UNM4], 0, 2, tmap4);
	ir_set_add(rs, gset_names[G_UNM6], 0, 2, tmap6);
	for (i = G_RL4; i <= G_RL6; i++) {
		st = ir_set_add(rs, gset_names[i], IRS_DYNAMIC, 1,
				i == G_RL4 ? trl4 : trl6);
		st->timeout_s = 60;
		st->size = 65536;
	}
	ir_set_add(rs, gset_names[G_SAME], 0, 2, tif2);
	{
		static const enum ir_type tself4[] = {IRT_IPV4, IRT_IPV4};
		static const enum ir_type tself6[] = {IRT_IPV6, IRT_IPV6};

		ir_set_add(rs, gset_names[G_SELF4], 0, 2, tself4);
		ir_set_add(rs, gset_names[G_SELF6], 0, 2, tself6);
	}
	{
		static const enum ir_type tmac[] = {IRT_IFNAME, IRT_ETHER};
		static const enum ir_type tnd[] = {IRT_IFNAME, IRT_RAW128};

		ir_set_add(rs, gset_names[G_ID_PORTS], 0, 1, tif);
		ir_set_add(rs, gset_names[G_ID_MAC], 0, 2, tmac);
		ir_set_add(rs, gset_names[G_ID_ADDR4], 0, 2, tmap4);
		ir_set_add(rs, gset_names[G_ID_ADDR6], 0, 2, tmap6);
		ir_set_add(rs, gset_names[G_ID_ND6], 0, 2, tnd);
		for (i = G_ID_PORTS; i <= G_ID_ND6; i++)
			rs->sets[i].family = IRF_BRIDGE;
	}
	for (s = 0; s < p->nservices; s++)
		for (i = 0; i < S_NSETS; i++)
			if (service_set(cc, s, (int)i) != NO_SET)
				ir_set_add(rs, cc->set_names[rs->nsets],
					   sset_kinds[i].flags,
					   sset_kinds[i].nkey,
					   sset_kinds[i].key);

	/* chains: base, dispatch, deny, then three per service */
	for (i = 0; i < NBASE; i++)
		c[i] = ir_chain_add(rs, base_chains[i],
				    i == 0   ? IRH_FORWARD
				    : i == 1 ? IRH_INPUT
					     : IRH_NONE,
				    -10);
	for (s = 0; s < p->nservices; s++)
		for (i = 0; i < C_NCHAINS; i++)
			ir_chain_add(rs, cc->chain_names[s * C_NCHAINS + i],
				     IRH_NONE, 0);
	/* the chain array is final now: names are stable */
	for (i = 0; i < NBASE; i++)
		c[i] = &rs->chains[i];
	deny = rs->chains[B_DENY].name;
	bridges = rs->sets[G_BRIDGES].name;

	base_rules(c[B_FORWARD], rs, false);
	r = ir_rule_add(c[B_FORWARD]);
	lookup_match(r, bridges, false, 1, IRX_IIFNAME);
	rule_verdict(r, IRST_JUMP, c[B_FROM]->name);
	r = ir_rule_add(c[B_FORWARD]);
	lookup_match(r, bridges, false, 1, IRX_OIFNAME);
	rule_verdict(r, IRST_JUMP, c[B_TO]->name);

	base_rules(c[B_INPUT], rs, true);
	r = ir_rule_add(c[B_INPUT]);
	lookup_match(r, bridges, false, 1, IRX_IIFNAME);
	rule_verdict(r, IRST_JUMP, c[B_HOST]->name);

	/* dispatch: a rule per service and family, on its members set
	 * (one lookup each, for a connection's first packet only) */
	dispatch_rules(cc, rs, c[B_FROM], C_SVC, c[B_UNMANAGED]->name);
	jump_rule(c[B_FROM], deny);
	dispatch_rules(cc, rs, c[B_TO], C_IN, NULL);
	jump_rule(c[B_TO], deny);
	dispatch_rules(cc, rs, c[B_HOST], C_HOST, NULL);
	jump_rule(c[B_HOST], deny);

	/* deny: log (rate-limited per source address), then the verdict */
	for (fi = 0; fi < 2; fi++) {
		r = ir_rule_add(c[B_DENY]);
		r->m[r->nm].kind = IRM_NFPROTO;
		r->m[r->nm++].family = fi ? AF_INET6 : AF_INET;
		r->stmt = IRST_LOG;
		r->rl_set = rs->sets[G_RL4 + (size_t)fi].name;
		r->rl_key = fi ? IRX_SADDR6 : IRX_SADDR4;
		r->rate = p->log_rate;
		r->rate_unit = p->log_rate_unit;
		r->prefix =
		    cc->audit ? "bulkhead would-deny " : "bulkhead deny ";
		r->group = p->log_group;
	}
	/* every denied packet, logged or not: what the rate limit kept
	 * out of the log is this count less the records */
	r = ir_rule_add(c[B_DENY]);
	r->counter = true;
	rule_verdict(r, cc->audit ? IRST_ACCEPT : IRST_DROP, NULL);

	/* A container that matches no service, with unmatched: allow, is
	 * not managed: it goes where it likes, except that a managed
	 * container is reached only as from "world". */
	dispatch_rules(cc, rs, c[B_UNMANAGED], C_IN, NULL);
	r = ir_rule_add(c[B_UNMANAGED]);
	lookup_match(r, bridges, false, 1, IRX_OIFNAME);
	rule_verdict(r, IRST_JUMP, deny);
	rule_verdict(ir_rule_add(c[B_UNMANAGED]), IRST_ACCEPT, NULL);

	for (s = 0; s < p->nservices; s++) {
		struct ir_chain *svc = &rs->chains[NBASE + s * C_NCHAINS];
		struct ir_chain *in = svc + 1, *host = svc + 2;
		const char *sn[S_NSETS];

		for (i = 0; i < S_NSETS; i++) {
			size_t x = service_set(cc, s, (int)i);

			sn[i] = x == NO_SET ? NULL : rs->sets[x].name;
		}
		/* a rule for each set that exists */
		for (i = S_PEER4; i <= S_RPEER6; i++) {
			enum ir_expr da = sset_daddr(i);

			if (!sn[i])
				continue;
			r = ir_rule_add(svc);
			lookup_match(r, rs->sets[G_SAME].name, false, 2,
				     IRX_IIFNAME, IRX_OIFNAME);
			lookup_match(r, sn[i], false, 4, IRX_OIFNAME, da,
				     IRX_L4PROTO, IRX_DPORT);
			rule_verdict(r, IRST_ACCEPT, NULL);
		}
		for (fi = 0; fi < 2; fi++)
			for (i = 0; i < cc->svc[s].nrr; i++)
				range_rule(cc, rs, svc, &cc->svc[s].rr[i], fi);
		for (i = S_OUT4; i <= S_FQDN6; i++) {
			enum ir_expr da = sset_daddr(i);

			if (!sn[i])
				continue;
			r = ir_rule_add(svc);
			lookup_match(r, bridges, true, 1, IRX_OIFNAME);
			lookup_match(r, sn[i], false, 3, da, IRX_L4PROTO,
				     IRX_DPORT);
			rule_verdict(r, IRST_ACCEPT, NULL);
		}
		jump_rule(svc, deny);
		for (fi = 0; fi < 2; fi++) {
			if (!sn[S_IN4 + fi])
				continue;
			r = ir_rule_add(in);
			lookup_match(r, sn[S_IN4 + fi], false, 3,
				     fi ? IRX_SADDR6 : IRX_SADDR4, IRX_L4PROTO,
				     IRX_DPORT);
			rule_verdict(r, IRST_ACCEPT, NULL);
		}
		jump_rule(in, deny);
		if (sn[S_HOST]) {
			r = ir_rule_add(host);
			lookup_match(r, sn[S_HOST], false, 2, IRX_L4PROTO,
				     IRX_DPORT);
			rule_verdict(r, IRST_ACCEPT, NULL);
		}
		jump_rule(host, deny);
	}
	bridge_layout(rs);
}

/* The elements of service s's container-independent set i (S_OUT4 and
 * on), into k. */
static void emit_service_set(struct sink *k, size_t s, size_t i)
{
	const struct boxes *b = &k->cc->svc[s].set[i];
	size_t x = service_set(k->cc, s, (int)i), j;
	int fam = sset_kinds[i].family;
	int off = i == S_HOST ? 0 : 1;

	if (x == NO_SET)
		return;
	for (j = 0; j < b->n; j++) {
		struct ir_elem *e;

		if (fam && !box_in_family(&b->v[j], fam))
			continue;
		e = emit(k, x);
		if (off) {
			e->lo[0] = b->v[j].addr_lo;
			e->hi[0] = b->v[j].addr_hi;
		}
		e->lo[off] = b->v[j].proto_lo;
		e->hi[off] = b->v[j].proto_hi;
		e->lo[off + 1] = b->v[j].port_lo;
		e->hi[off + 1] = b->v[j].port_hi;
		e->timeout_ms = b->v[j].timeout_ms;
	}
}

static void emit_service_sets(struct sink *k)
{
	size_t s, i;

	for (s = 0; s < k->cc->p->nservices; s++)
		for (i = S_OUT4; i < S_NSETS; i++)
			emit_service_set(k, s, i);
}

const char *compile_fqdn_set(const struct compiler *cc, size_t service,
			     int family)
{
	size_t x;

	if (service >= cc->p->nservices)
		return NULL;
	x = service_set(cc, service, family == AF_INET6 ? S_FQDN6 : S_FQDN4);
	return x == NO_SET ? NULL : cc->set_names[x];
}

size_t compile_fqdn_sets(const struct compiler *cc, const char *name,
			 struct ir_delta *out, size_t **sets)
{
	struct sink k = {.delta = out, .add = true, .cc = cc};
	const struct policy *p = cc->p;
	size_t i, n = 0, cap = 0, fi;

	*sets = NULL;
	for (i = 0; i < p->nedges; i++) {
		const struct pol_edge *e = &p->edges[i];
		size_t s = e->src.service, j;
		bool seen = false;

		if (e->dst.kind != PEER_FQDN || e->src.kind != PEER_SERVICE ||
		    strcasecmp(e->dst.fqdn, name))
			continue;
		for (j = 0; j < n && !seen; j++)
			seen = (*sets)[j] == service_set(cc, s, S_FQDN4);
		for (fi = 0; fi < 2 && !seen; fi++) {
			*PUSH(*sets, n, cap) =
			    service_set(cc, s, (int)(S_FQDN4 + fi));
			emit_service_set(&k, s, S_FQDN4 + fi);
		}
	}
	return n;
}

long *compile_classify(const struct compiler *cc, const struct inventory *inv,
		       bool **mf)
{
	long a, b, *assign = xcalloc(inv->n + 1, sizeof(*assign));
	size_t i;

	for (i = 0; i < inv->n; i++)
		assign[i] = compile_assign(cc, &inv->c[i], &a, &b);
	*mf = managed_flags(cc, inv, assign);
	return assign;
}

/* Whether service s lets anything outside the host (world, a CIDR) in
 * on port/proto: what a port published on the host needs. */
static bool opened_outside(const struct compiler *cc, size_t s, unsigned proto,
			   unsigned port)
{
	const struct svcinfo *si = &cc->svc[s];
	size_t f, i;

	for (f = S_IN4; f <= S_IN6; f++)
		for (i = 0; i < si->set[f].n; i++) {
			const struct box *b = &si->set[f].v[i];

			if (proto >= b->proto_lo && proto <= b->proto_hi &&
			    port >= b->port_lo && port <= b->port_hi)
				return true;
		}
	return false;
}

/* Ports a managed container publishes on the host that its service opens
 * to no one outside: Docker forwards them, bulkhead drops what comes. */
static void report_published(const struct compiler *cc,
			     const struct inv_container *c, size_t s,
			     struct diags *d)
{
	const struct pol_service *sv = &cc->p->services[s];
	char num[16];
	size_t i;

	for (i = 0; i < c->nports; i++) {
		const struct inv_port *pp = &c->ports[i];
		size_t k;

		/* once per port: Docker lists 0.0.0.0 and :: bindings apart */
		for (k = 0; k < i; k++)
			if (c->ports[k].port == pp->port &&
			    c->ports[k].proto == pp->proto)
				break;
		if (k < i || opened_outside(cc, s, pp->proto, pp->port))
			continue;
		diags_add(
		    d, DIAG_WARNING, sv->file, sv->loc.line, sv->loc.col,
		    "container '%s' publishes %u/%s on the host (%s:%u), "
		    "but service '%s' opens it to no one outside (no "
		    "ingress from world or a CIDR on that port): what "
		    "comes in is %s",
		    c->name, pp->port, proto_name(pp->proto, num, sizeof(num)),
		    *pp->host_ip ? pp->host_ip : "0.0.0.0", pp->host_port,
		    sv->name, cc->audit ? "logged as would-deny" : "dropped");
	}
}

size_t compile_published(const struct compiler *cc,
			 const struct inv_container *c, struct diags *d)
{
	size_t before = d->n, j;
	long s, a, b;

	if (!c->nports || (s = compile_assign(cc, c, &a, &b)) < 0)
		return 0;
	for (j = 0; j < c->nnets; j++)
		if (cc->p->networks_set ? listed(cc->p, c->nets[j].name)
					: auto_candidate(c->nets[j].name))
			break;
	if (j < c->nnets)
		report_published(cc, c, (size_t)s, d);
	return d->n - before;
}

static size_t report(const struct compiler *cc, const struct inventory *inv,
		     const char *inv_name, const long *assign, const bool *mf,
		     struct diags *d)
{
	const struct policy *p = cc->p;
	size_t i, j, off = 0, before = d->nerrors;
	long a, b;

	for (i = 0; i < inv->n; off += inv->c[i].nnets, i++) {
		const struct inv_container *c = &inv->c[i];

		if (assign[i] == COMPILE_CONFLICT) {
			compile_assign(cc, c, &a, &b);
			diags_add(
			    d, cc->conflicts_deny ? DIAG_WARNING : DIAG_ERROR,
			    p->services[b].file, p->services[b].loc.line,
			    p->services[b].loc.col,
			    "container '%s' matches both service '%s' "
			    "(%s%s%u) and service '%s' (line %u)%s",
			    c->name, p->services[a].name,
			    /* the other's file, if not this diag's */
			    p->services[a].file == p->services[b].file
				? "line "
				: p->services[a].file,
			    p->services[a].file == p->services[b].file ? ""
								       : ":",
			    p->services[a].loc.line, p->services[b].name,
			    p->services[b].loc.line,
			    cc->conflicts_deny ? ": denied until resolved"
					       : "");
			continue;
		}
		if (assign[i] >= 0) {
			for (j = 0; j < c->nnets && !mf[off + j]; j++)
				;
			if (j < c->nnets)
				report_published(cc, c, (size_t)assign[i], d);
			continue;
		}
		if (assign[i] != COMPILE_UNMATCHED)
			continue;
		for (j = 0; j < c->nnets; j++)
			if (mf[off + j]) {
				diags_add(d, DIAG_WARNING, inv_name, 0, 0,
					  "container '%s' on managed network "
					  "'%s' matches no service (%s by "
					  "settings.unmatched)",
					  c->name, c->nets[j].name,
					  p->unmatched_allow ? "allowed"
							     : "denied");
				break;
			}
	}
	return d->nerrors - before;
}

size_t compile_check(const struct compiler *cc, const struct inventory *inv,
		     const char *inv_name, struct diags *d)
{
	bool *mf;
	long *assign = compile_classify(cc, inv, &mf);
	size_t n = report(cc, inv, inv_name, assign, mf, d);

	free(mf);
	free(assign);
	return n;
}

struct ir_ruleset *compile_ruleset(const struct compiler *cc,
				   const struct inventory *inv,
				   const char *inv_name, struct diags *d)
{
	struct ir_ruleset *rs = NULL;
	struct sink k = {0};
	size_t i, j, off = 0;
	bool *mf;
	long *assign = compile_classify(cc, inv, &mf);

	if (report(cc, inv, inv_name, assign, mf, d))
		goto out;
	rs = ir_new(COMPILE_TABLE);
	layout(cc, rs);
	k.rs = rs;
	k.cc = cc;
	for (i = 0; i < inv->n; i++) {
		const struct inv_container *c = &inv->c[i];

		for (j = 0; j < c->nnets; j++, off++) {
			if (!mf[off])
				continue;
			emit_bridge(&k, c->nets[j].bridge);
			emit_container_net(&k, assign[i], &c->nets[j]);
		}
	}
	emit_service_sets(&k);
	/* a managed bridge's ports that no container here is bound to */
	for (i = 0; i < inv->nbports; i++) {
		const struct ir_set *br = &rs->sets[G_BRIDGES];
		u128 name = ir_ifname(inv->bports[i].bridge);

		for (j = 0; j < br->n; j++)
			if (br->e[j].lo[0] == name) {
				emit_port_addr(&k, G_ID_PORTS,
					       inv->bports[i].port, 0);
				break;
			}
	}
	ir_normalize(rs);
out:
	free(mf);
	free(assign);
	return rs;
}

/* Whether a container other than skip is on network net. */
static bool on_net(const struct inventory *inv, const char *net,
		   const struct inv_container *skip)
{
	size_t i, j;

	for (i = 0; i < inv->n; i++)
		for (j = 0; &inv->c[i] != skip && j < inv->c[i].nnets; j++)
			if (!strcmp(inv->c[i].nets[j].name, net))
				return true;
	return false;
}

void compile_bport(const struct compiler *cc, const struct inventory *inv,
		   const char *bridge, const char *port, bool arriving,
		   struct ir_delta *out)
{
	struct sink k = {.delta = out, .add = arriving, .cc = cc};
	size_t i, j;

	for (i = 0; i < inv->n; i++)
		for (j = 0; j < inv->c[i].nnets; j++)
			if (!strcmp(inv->c[i].nets[j].bridge, bridge)) {
				if (net_managed(cc, inv, inv->c[i].nets[j].name,
						NULL))
					emit_port_addr(&k, G_ID_PORTS, port, 0);
				return;
			}
}

int compile_delta(const struct compiler *cc, const struct inventory *inv,
		  size_t idx, bool arriving, struct ir_delta *out)
{
	const struct inv_container *c, *o;
	struct sink k = {.delta = out, .add = arriving, .cc = cc};
	long svc, a, b;
	size_t j, i, m;

	if (idx >= inv->n)
		return -EINVAL;
	c = &inv->c[idx];
	svc = compile_assign(cc, c, &a, &b);
	for (j = 0; j < c->nnets; j++) {
		const struct inv_net *n = &c->nets[j];
		bool without = net_managed(cc, inv, n->name, c);
		/* c itself makes a network managed when it is matched */
		bool with =
		    without ||
		    (cc->p->networks_set ? listed(cc->p, n->name)
					 : svc >= 0 && auto_candidate(n->name));

		if (!with)
			continue;
		emit_container_net(&k, svc, n);
		/* a listed network is managed from the start, but its bridge
		 * is known only while some container is on it */
		if (without && cc->p->networks_set && !on_net(inv, n->name, c))
			emit_bridge(&k, n->bridge);
		if (without)
			continue;
		/* c alone makes this network managed: the bridge and every
		 * other container on it change state with it */
		emit_bridge(&k, n->bridge);
		for (i = 0; i < inv->n; i++) {
			o = &inv->c[i];
			if (o == c)
				continue;
			for (m = 0; m < o->nnets; m++)
				if (!strcmp(o->nets[m].name, n->name))
					emit_container_net(
					    &k, compile_assign(cc, o, &a, &b),
					    &o->nets[m]);
		}
	}
	return 0;
}
