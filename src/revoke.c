/* Revocation: conntrack entries read through libnetfilter_conntrack,
 * judged by trace's decision under the state in force, the refused ones
 * deleted. Touches conntrack only; never an entry that no managed
 * container is an end of. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "bulkhead/revoke.h"

struct revoke {
	struct nfct_handle *h;
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
	free(rv);
}

/* --- the judge (pure) ------------------------------------------------------ */

static bool addr_in(const struct revoke_addr *v, size_t n, int family, u128 a)
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

bool revoke_keep(const struct revoke_judge *j, const struct revoke_flow *f,
		 char *why, size_t whylen)
{
	bool to_host = addr_in(j->host, j->nhost, f->family, f->daddr);
	bool gone = addr_in(j->gone, j->ngone, f->family, f->saddr) ||
		    addr_in(j->gone, j->ngone, f->family, f->daddr);
	struct trace_decision d;
	struct strbuf b = {0};
	char proto[16];

	if (trace_decide_ix(j->cc, j->p, j->ix, f->family, f->saddr, f->daddr,
			    to_host, f->proto, f->dport, &d))
		return true;
	if (!gone && (d.allowed || (!d.src && !d.dst)))
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

/* --- the sweep ------------------------------------------------------------- */

struct sweep {
	const struct revoke_judge *j;
	struct nf_conntrack **end;
	size_t nend, capend, seen;
	/* the pairs ended, each once, with a count */
	char **why;
	size_t *nwhy, nwhys, capwhys, capn;
};

static u128 get_addr(const struct nf_conntrack *ct, int family, int a4,
		     int a6)
{
	const uint8_t *p;
	u128 v = 0;
	int i;

	if (family == AF_INET)
		return ntohl(nfct_get_attr_u32(ct, a4));
	p = nfct_get_attr(ct, a6);
	for (i = 0; p && i < 16; i++)
		v = (v << 8) | p[i];
	return v;
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

static int sweep_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct,
		    void *data)
{
	struct sweep *s = data;
	struct revoke_flow f = {0};
	bool dnat;
	char why[256];

	(void)type;
	s->seen++;
	f.family = nfct_get_attr_u8(ct, ATTR_L3PROTO);
	if (f.family != AF_INET && f.family != AF_INET6)
		return NFCT_CB_CONTINUE;
	f.proto = nfct_get_attr_u8(ct, ATTR_L4PROTO);
	f.saddr = get_addr(ct, f.family, ATTR_IPV4_SRC, ATTR_IPV6_SRC);
	/* after DNAT (a published port) the flow reached what its reply
	 * comes from */
	dnat = nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_DST_NAT;
	f.daddr = dnat ? get_addr(ct, f.family, ATTR_REPL_IPV4_SRC,
				  ATTR_REPL_IPV6_SRC)
		       : get_addr(ct, f.family, ATTR_IPV4_DST, ATTR_IPV6_DST);
	if (f.proto == IPPROTO_TCP || f.proto == IPPROTO_UDP ||
	    f.proto == IPPROTO_SCTP) {
		f.sport = ntohs(nfct_get_attr_u16(ct, ATTR_PORT_SRC));
		f.dport = ntohs(nfct_get_attr_u16(
		    ct, dnat ? ATTR_REPL_PORT_SRC : ATTR_PORT_DST));
	}
	if (revoke_keep(s->j, &f, why, sizeof(why)))
		return NFCT_CB_CONTINUE;
	note_why(s, why);
	*PUSH(s->end, s->nend, s->capend) = nfct_clone(ct);
	return NFCT_CB_CONTINUE;
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int revoke_sweep(struct revoke *rv, const struct revoke_judge *j,
		 struct revoke_result *res, char *err, size_t errlen)
{
	static const uint32_t families[] = {AF_INET, AF_INET6};
	struct sweep s = {.j = j};
	double t0 = mono_ms();
	size_t i;
	int r = 0;

	memset(res, 0, sizeof(*res));
	nfct_callback_register(rv->h, NFCT_T_ALL, sweep_cb, &s);
	for (i = 0; i < 2 && !r; i++) {
		uint32_t fam = families[i];

		if (nfct_query(rv->h, NFCT_Q_DUMP, &fam) < 0) {
			r = -errno;
			snprintf(err, errlen, "reading conntrack: %s",
				 strerror(errno));
		}
	}
	nfct_callback_unregister(rv->h);
	/* an entry gone meanwhile (its flow closed) is what we wanted */
	for (i = 0; i < s.nend; i++) {
		if (!r && nfct_query(rv->h, NFCT_Q_DESTROY, s.end[i]) == 0)
			res->ended++;
		nfct_destroy(s.end[i]);
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
		int k;

		if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET &&
				     i->ifa_addr->sa_family != AF_INET6))
			continue;
		a = PUSH(v, *n, cap);
		a->family = i->ifa_addr->sa_family;
		if (a->family == AF_INET) {
			a->addr = ntohl(((const struct sockaddr_in *)(const void *)
					     i->ifa_addr)
					    ->sin_addr.s_addr);
			continue;
		}
		p = ((const struct sockaddr_in6 *)(const void *)i->ifa_addr)
			->sin6_addr.s6_addr;
		a->addr = 0;
		for (k = 0; k < 16; k++)
			a->addr = (a->addr << 8) | p[k];
	}
	freeifaddrs(ifa);
	return v;
}
