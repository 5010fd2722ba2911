/* The denied-flow log read back: filters, readable lines, counts per
 * pair and port, and the edges that would allow what was denied. Pure:
 * records come in as JSON objects, text goes out into buffers. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "bulkhead/denials.h"

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

int64_t denials_time_ms(const char *iso)
{
	struct tm tm = {0};
	const char *rest;
	int64_t ms = 0, scale = 100;

	if (!iso || !(rest = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm)))
		return -1;
	if (*rest == '.')
		for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
			ms += (*rest - '0') * scale;
			scale /= 10;
		}
	if (*rest && strcmp(rest, "Z"))
		return -1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

int denials_since(const char *arg, int64_t now_ms, int64_t *out_ms)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);
	int64_t unit = 0;

	if (end != arg && end[0] && !end[1]) {
		unit = end[0] == 's'   ? 1000
		       : end[0] == 'm' ? 60000
		       : end[0] == 'h' ? 3600000
		       : end[0] == 'd' ? 86400000
				       : 0;
		if (unit) {
			*out_ms = now_ms - (int64_t)v * unit;
			return 0;
		}
	}
	*out_ms = denials_time_ms(arg);
	return *out_ms < 0 ? -EINVAL : 0;
}

static bool end_is(json_t *e, const char *key, const char *want)
{
	const char *v = str(e, key);

	return v && !strcmp(v, want);
}

static unsigned verdict_bit(const char *v)
{
	return !v			  ? 0
	       : !strcmp(v, "allowed")	  ? FLOWS_ALLOWED
	       : !strcmp(v, "denied")	  ? FLOWS_DENIED
	       : !strcmp(v, "would-deny") ? FLOWS_WOULD_DENY
					  : 0;
}

unsigned denials_verdicts(const char *list)
{
	char *copy = xstrdup(list), *save = NULL, *w;
	unsigned bits = 0, b;

	for (w = strtok_r(copy, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		if (!(b = verdict_bit(w))) {
			bits = 0;
			break;
		}
		bits |= b;
	}
	free(copy);
	return bits;
}

static bool end_in(json_t *end, char *const *scopes, size_t n)
{
	return policy_in_scopes(
	    json_string_value(json_object_get(end, "service")), scopes, n);
}

/* An end of another team's: its service and port, nothing else. */
static void cut_end(json_t *rec, const char *which)
{
	json_t *end = json_object_get(rec, which), *cut;

	if (!json_is_object(end) || !json_object_get(end, "container"))
		return; /* world or host: nobody's */
	cut = json_object();
	if (json_object_get(end, "service"))
		json_object_set(cut, "service",
				json_object_get(end, "service"));
	else
		json_object_set_new(cut, "peer", json_string("unmatched"));
	if (json_object_get(end, "port"))
		json_object_set(cut, "port", json_object_get(end, "port"));
	json_object_set_new(rec, which, cut);
}

bool denials_scope(json_t *rec, char *const *scopes, size_t nscopes)
{
	bool s = end_in(json_object_get(rec, "src"), scopes, nscopes),
	     t = end_in(json_object_get(rec, "dst"), scopes, nscopes);

	if (!s && !t)
		return false;
	if (!s)
		cut_end(rec, "src");
	if (!t)
		cut_end(rec, "dst");
	return true;
}

bool denials_match(json_t *rec, const struct denials_filter *f)
{
	json_t *s = json_object_get(rec, "src"),
	       *d = json_object_get(rec, "dst");

	if (!json_is_object(s) || !json_is_object(d))
		return false; /* a summary record */
	if (f->verdicts && !(f->verdicts & verdict_bit(str(rec, "verdict"))))
		return false;
	if (f->since_ms && denials_time_ms(str(rec, "ts")) < f->since_ms)
		return false;
	if (f->service && !end_is(s, "service", f->service) &&
	    !end_is(d, "service", f->service))
		return false;
	if (f->container && !end_is(s, "container", f->container) &&
	    !end_is(d, "container", f->container))
		return false;
	return true;
}

/* "bh-nginx (nginx) 172.18.0.3", "world 203.0.113.9", "host 10.0.0.1" */
static void label(json_t *e, struct strbuf *sb)
{
	const char *c = str(e, "container"), *sv = str(e, "service");

	if (c)
		sb_printf(sb, "%s (%s) %s", c, sv ? sv : "no service",
			  str(e, "ip") ?: "?");
	else
		sb_printf(sb, "%s %s", str(e, "peer") ?: "world",
			  str(e, "ip") ?: "?");
}

/* "5432/tcp", "icmp", "47" */
static void port(json_t *rec, char *buf, size_t len)
{
	const char *proto = str(rec, "proto") ?: "?";
	json_t *p = json_object_get(json_object_get(rec, "dst"), "port");

	if (json_is_integer(p))
		snprintf(buf, len, "%lld/%s", (long long)json_integer_value(p),
			 proto);
	else
		snprintf(buf, len, "%s", proto);
}

void denials_header(struct strbuf *out)
{
	sb_printf(out, "%-24s %-10s %-40s %-40s %-10s %s", "TIME", "VERDICT",
		  "SOURCE", "DESTINATION", "PORT", "REASON");
}

static long long num(json_t *o, const char *k1, const char *k2)
{
	return json_integer_value(json_object_get(json_object_get(o, k1), k2));
}

/* An allowed flow's record says what a denied one's reason would: "open
 * by FILE:LINE:COL", "closed after 2.5 s: 1500 B sent, 900 B received". */
static void allowed_what(json_t *rec, struct strbuf *sb)
{
	const char *ev = str(rec, "event") ?: "?";

	if (strcmp(ev, "close")) {
		sb_printf(sb, "%s by %s", ev, str(rec, "edge") ?: "?");
		return;
	}
	sb_printf(
	    sb, "%s after %.1f s", str(rec, "end") ?: "ended",
	    (double)json_integer_value(json_object_get(rec, "duration_ms")) /
		1e3);
	if (json_is_object(json_object_get(rec, "bytes")))
		sb_printf(sb, ": %lld B sent, %lld B received",
			  num(rec, "bytes", "sent"),
			  num(rec, "bytes", "received"));
}

void denials_format(json_t *rec, struct strbuf *out)
{
	struct strbuf s = {0}, d = {0}, w = {0};
	char p[32];

	label(json_object_get(rec, "src"), &s);
	label(json_object_get(rec, "dst"), &d);
	port(rec, p, sizeof(p));
	if (verdict_bit(str(rec, "verdict")) == FLOWS_ALLOWED)
		allowed_what(rec, &w);
	else
		sb_puts(&w, str(rec, "reason") ?: "");
	sb_printf(out, "%-24s %-10s %-40s %-40s %-10s %s", str(rec, "ts") ?: "",
		  str(rec, "verdict") ?: "", s.s, d.s, p, w.s);
	sb_free(&w);
	sb_free(&s);
	sb_free(&d);
}

/* --- counting ---------------------------------------------------------- */

enum end_kind { K_SERVICE, K_WORLD, K_HOST, K_UNMATCHED };

struct entry {
	enum end_kind sk, dk;
	char *src, *dst; /* service, container or address */
	char port[32], *reason;
	char verdict[16];
	unsigned long count;
	unsigned long long sent, received; /* allowed: their close records' */
	char first[32], last[32];
	int64_t first_ms, last_ms;
};

struct denials_summary {
	struct entry *v;
	size_t n, cap;
};

struct denials_summary *denials_summary_new(void)
{
	return xcalloc(1, sizeof(struct denials_summary));
}

void denials_summary_free(struct denials_summary *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++) {
		free(s->v[i].src);
		free(s->v[i].dst);
		free(s->v[i].reason);
	}
	free(s->v);
	free(s);
}

/* A service by name; else the container that matches none; else the
 * peer (world, host) by address. */
static enum end_kind end_of(json_t *e, const char **name)
{
	const char *peer = str(e, "peer");

	if ((*name = str(e, "service")))
		return K_SERVICE;
	if ((*name = str(e, "container")))
		return K_UNMATCHED;
	*name = str(e, "ip") ?: "?";
	return peer && !strcmp(peer, "host") ? K_HOST : K_WORLD;
}

void denials_summary_add(struct denials_summary *s, json_t *rec)
{
	const char *sn, *dn, *reason = str(rec, "reason") ?: "";
	const char *ts = str(rec, "ts") ?: "", *verdict = str(rec, "verdict");
	bool close = verdict_bit(verdict) == FLOWS_ALLOWED &&
		     !strcmp(str(rec, "event") ?: "", "close");
	enum end_kind sk = end_of(json_object_get(rec, "src"), &sn);
	enum end_kind dk = end_of(json_object_get(rec, "dst"), &dn);
	int64_t ms = denials_time_ms(ts);
	struct entry *e;
	char p[32];
	size_t i;

	port(rec, p, sizeof(p));
	/* the host is one peer, whichever of its addresses was asked */
	if (dk == K_HOST)
		dn = "host";
	for (i = 0; i < s->n; i++) {
		e = &s->v[i];
		if (e->sk == sk && e->dk == dk && !strcmp(e->src, sn) &&
		    !strcmp(e->dst, dn) && !strcmp(e->port, p) &&
		    !strcmp(e->reason, reason) &&
		    !strcmp(e->verdict, verdict ?: ""))
			break;
	}
	if (i == s->n) {
		e = PUSH(s->v, s->n, s->cap);
		memset(e, 0, sizeof(*e));
		e->sk = sk;
		e->dk = dk;
		e->src = xstrdup(sn);
		e->dst = xstrdup(dn);
		e->reason = xstrdup(reason);
		snprintf(e->port, sizeof(e->port), "%s", p);
		snprintf(e->verdict, sizeof(e->verdict), "%s", verdict ?: "");
		e->first_ms = INT64_MAX;
	}
	/* a connection is counted at its opening; its close adds bytes */
	if (close) {
		e->sent += (unsigned long long)num(rec, "bytes", "sent");
		e->received +=
		    (unsigned long long)num(rec, "bytes", "received");
	} else {
		e->count++;
	}
	if (ms < e->first_ms) {
		e->first_ms = ms;
		snprintf(e->first, sizeof(e->first), "%s", ts);
	}
	if (ms >= e->last_ms) {
		e->last_ms = ms;
		snprintf(e->last, sizeof(e->last), "%s", ts);
	}
}

static void end_label(enum end_kind k, const char *name, struct strbuf *sb)
{
	switch (k) {
	case K_SERVICE:
		sb_puts(sb, name);
		break;
	case K_UNMATCHED:
		sb_printf(sb, "%s (no service)", name);
		break;
	case K_HOST:
		sb_puts(sb, "host");
		break;
	case K_WORLD:
		sb_printf(sb, "world %s", name);
		break;
	}
}

static int by_count(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->first_ms < y->first_ms ? -1 : x->first_ms > y->first_ms;
}

void denials_summary_print(const struct denials_summary *s, bool flows,
			   struct strbuf *out)
{
	struct entry *v = xmalloc(sizeof(*v) * (s->n + 1));
	struct strbuf a = {0}, b = {0};
	char sent[24], recv[24], vr[64];
	size_t i;

	memcpy(v, s->v, sizeof(*v) * s->n);
	qsort(v, s->n, sizeof(*v), by_count);
	if (flows)
		sb_printf(out,
			  "%8s  %-28s %-28s %-10s %-20s %12s %12s %-24s %s\n",
			  "CONNS", "SOURCE", "DESTINATION", "PORT", "VERDICT",
			  "SENT", "RECEIVED", "FIRST", "LAST");
	else
		sb_printf(out, "%8s  %-28s %-28s %-10s %-20s %-24s %s\n",
			  "COUNT", "SOURCE", "DESTINATION", "PORT", "REASON",
			  "FIRST", "LAST");
	for (i = 0; i < s->n; i++) {
		a.len = b.len = 0;
		end_label(v[i].sk, v[i].src, &a);
		end_label(v[i].dk, v[i].dst, &b);
		if (!flows) {
			sb_printf(out,
				  "%8lu  %-28s %-28s %-10s %-20s %-24s %s\n",
				  v[i].count, a.s, b.s, v[i].port, v[i].reason,
				  v[i].first, v[i].last);
			continue;
		}
		/* denied ones carry their reason beside the verdict */
		snprintf(sent, sizeof(sent), "%llu", v[i].sent);
		snprintf(recv, sizeof(recv), "%llu", v[i].received);
		snprintf(vr, sizeof(vr), "%s%s%s", v[i].verdict,
			 *v[i].reason ? ": " : "", v[i].reason);
		sb_printf(
		    out, "%8lu  %-28s %-28s %-10s %-20s %12s %12s %-24s %s\n",
		    v[i].count, a.s, b.s, v[i].port, vr,
		    verdict_bit(v[i].verdict) == FLOWS_ALLOWED ? sent : "-",
		    verdict_bit(v[i].verdict) == FLOWS_ALLOWED ? recv : "-",
		    v[i].first, v[i].last);
	}
	sb_free(&a);
	sb_free(&b);
	free(v);
}

/* --- suggesting -------------------------------------------------------- */

/* One proposed edge: owner's egress (or ingress, from the world) to peer,
 * with the ports seen. */
struct proposal {
	const struct entry *e;
	bool ingress;
	char *ports[64];
	size_t nports;
};

static bool suggestible(const struct entry *e)
{
	/* a container the model placed too late, or one known by its
	 * link-local address, is no missing edge: none would let it by */
	if (!strcmp(e->reason, "not-placed-yet") ||
	    !strcmp(e->reason, "link-local"))
		return false;
	if (e->sk == K_SERVICE)
		return e->dk != K_UNMATCHED;
	return e->sk == K_WORLD && e->dk == K_SERVICE;
}

static void peer_yaml(const struct entry *e, bool ingress, struct strbuf *sb)
{
	enum end_kind k = ingress ? e->sk : e->dk;
	const char *n = ingress ? e->src : e->dst;

	if (k == K_SERVICE)
		sb_puts(sb, n);
	else if (k == K_HOST)
		sb_puts(sb, "host");
	else
		sb_printf(sb, "{ cidr: [\"%s/%d\"] }", n,
			  strchr(n, ':') ? 128 : 32);
}

static bool same_pair(const struct entry *a, const struct entry *b)
{
	return a->sk == b->sk && a->dk == b->dk && !strcmp(a->src, b->src) &&
	       !strcmp(a->dst, b->dst);
}

static size_t propose(const struct denials_summary *s, struct proposal **out)
{
	struct proposal *v = NULL;
	size_t n = 0, cap = 0, i, j, k;

	for (i = 0; i < s->n; i++) {
		const struct entry *e = &s->v[i];

		if (!suggestible(e))
			continue;
		for (j = 0; j < n && !same_pair(v[j].e, e); j++)
			;
		if (j == n) {
			struct proposal *pr = PUSH(v, n, cap);

			memset(pr, 0, sizeof(*pr));
			pr->e = e;
			pr->ingress = e->sk == K_WORLD;
		}
		for (k = 0; k < v[j].nports; k++)
			if (!strcmp(v[j].ports[k], e->port))
				break;
		if (k == v[j].nports && k < 64)
			v[j].ports[v[j].nports++] = (char *)e->port;
	}
	*out = v;
	return n;
}

static const char *owner(const struct proposal *pr)
{
	return pr->ingress ? pr->e->dst : pr->e->src;
}

static void snippet(const struct proposal *v, size_t n, struct strbuf *out)
{
	size_t i, j, k;

	sb_puts(out, "services:\n");
	for (i = 0; i < n; i++) {
		for (j = 0; j < i && strcmp(owner(&v[j]), owner(&v[i])); j++)
			;
		if (j < i)
			continue; /* printed with its owner */
		sb_printf(out, "  %s:\n", owner(&v[i]));
		for (int in = 0; in < 2; in++) {
			bool head = false;

			for (j = i; j < n; j++) {
				if (strcmp(owner(&v[j]), owner(&v[i])) ||
				    v[j].ingress != in)
					continue;
				if (!head)
					sb_puts(out, in ? "    ingress:\n"
							: "    egress:\n");
				head = true;
				sb_printf(out,
					  "      - %s: ", in ? "from" : "to");
				peer_yaml(v[j].e, in, out);
				sb_puts(out, "\n        ports: [");
				for (k = 0; k < v[j].nports; k++)
					sb_printf(out, "%s%s", k ? ", " : "",
						  v[j].ports[k]);
				sb_puts(out, "]\n");
			}
		}
	}
}

/* The proposal as an edge of p; false (said in out) when p lacks a
 * service it names or a port does not parse. */
static bool to_edge(const struct proposal *pr, struct policy *p,
		    struct strbuf *out)
{
	const struct entry *e = pr->e;
	struct pol_edge edge = {.ingress = pr->ingress, .log = -1};
	struct pol_port ports[64];
	struct pol_cidr cidr;
	struct pol_peer *peer;
	const char *why;
	size_t k;
	long si;

	edge.src.kind = edge.dst.kind = PEER_SERVICE;
	if ((si = policy_service_index(p, owner(pr))) < 0) {
		sb_printf(out, "# no service '%s' in %s: left out\n", owner(pr),
			  p->file);
		return false;
	}
	if (pr->ingress) {
		edge.dst.service = (size_t)si;
		peer = &edge.src;
	} else {
		edge.src.service = (size_t)si;
		peer = &edge.dst;
	}
	if (e->dk == K_SERVICE && !pr->ingress) {
		if ((si = policy_service_index(p, e->dst)) < 0) {
			sb_printf(out, "# no service '%s' in %s: left out\n",
				  e->dst, p->file);
			return false;
		}
		peer->service = (size_t)si;
	} else if (e->dk == K_HOST && !pr->ingress) {
		peer->kind = PEER_HOST;
	} else {
		const char *ip = pr->ingress ? e->src : e->dst;

		peer->kind = PEER_CIDR;
		if (cidr_parse(ip, &cidr.family, &cidr.lo, &cidr.hi,
			       &cidr.plen)) {
			sb_printf(out, "# '%s' is no address: left out\n", ip);
			return false;
		}
		peer->cidrs = &cidr;
		peer->ncidrs = 1;
	}
	for (k = 0; k < pr->nports; k++)
		if ((why = policy_port_parse(pr->ports[k], &ports[k]))) {
			sb_printf(out, "# port %s: %s: left out\n",
				  pr->ports[k], why);
			return false;
		}
	edge.ports = ports;
	edge.nports = pr->nports;
	policy_add_edge(p, &edge);
	return true;
}

void denials_suggest(const struct denials_summary *s, struct policy *p,
		     struct strbuf *out)
{
	struct proposal *v;
	size_t n = propose(s, &v), i;

	for (i = 0; i < s->n; i++)
		if (s->v[i].sk == K_UNMATCHED || s->v[i].dk == K_UNMATCHED)
			sb_printf(out,
				  "# %s matches no service: give it a match "
				  "before an edge can allow it\n",
				  s->v[i].sk == K_UNMATCHED ? s->v[i].src
							    : s->v[i].dst);
	if (!n) {
		sb_puts(out, "# nothing to suggest\n");
	} else if (!p) {
		sb_puts(out, "# edges that would allow the flows counted; "
			     "merge them into the policy\n");
		snippet(v, n, out);
	} else {
		for (i = 0; i < n; i++)
			to_edge(&v[i], p, out);
		sb_printf(out,
			  "# %s with the edges that would allow the "
			  "flows counted\n",
			  p->file);
		policy_dump(p, out);
	}
	free(v);
}

/* --- pairs, for the graph ----------------------------------------------- */

static void node_name(enum end_kind k, const char *name, struct strbuf *sb)
{
	if (k == K_SERVICE)
		sb_puts(sb, name);
	else if (k == K_UNMATCHED)
		sb_printf(sb, "container %s", name);
	else
		sb_puts(sb, k == K_HOST ? "host" : "world");
}

/* Whether tok is one of the ", "-separated items of list. */
static bool has_token(const char *list, const char *tok)
{
	size_t n = strlen(tok);

	while (list && *list) {
		if (!strncmp(list, tok, n) && (!list[n] || list[n] == ','))
			return true;
		list = strchr(list, ',');
		list = list ? list + 2 : NULL;
	}
	return false;
}

void denials_summary_pairs(const struct denials_summary *s, denials_pair_fn fn,
			   void *ctx)
{
	bool *done = xcalloc(s->n + 1, sizeof(*done));
	struct strbuf a = {0}, b = {0}, x = {0}, y = {0}, ports = {0};
	size_t i, j;

	for (i = 0; i < s->n; i++) {
		unsigned long count = 0;

		if (done[i])
			continue;
		a.len = b.len = ports.len = 0;
		node_name(s->v[i].sk, s->v[i].src, &a);
		node_name(s->v[i].dk, s->v[i].dst, &b);
		for (j = i; j < s->n; j++) {
			x.len = y.len = 0;
			node_name(s->v[j].sk, s->v[j].src, &x);
			node_name(s->v[j].dk, s->v[j].dst, &y);
			if (done[j] || strcmp(a.s, x.s) || strcmp(b.s, y.s))
				continue;
			done[j] = true;
			count += s->v[j].count;
			/* each port once */
			if (!has_token(ports.s, s->v[j].port))
				sb_printf(&ports, "%s%s", ports.len ? ", " : "",
					  s->v[j].port);
		}
		fn(ctx, a.s, b.s, ports.s, count);
	}
	sb_free(&a);
	sb_free(&b);
	sb_free(&x);
	sb_free(&y);
	sb_free(&ports);
	free(done);
}
