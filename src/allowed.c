/* Allowed flows on record (see allowed.h): the decision trace makes, the
 * record's ends as the denied path writes them, and for each flow told
 * as open what its close record repeats. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/allowed.h"
#include "bulkhead/flowlog.h"
#include "bulkhead/metrics.h"
#include "bulkhead/policy.h"

/* Flows told as open at once, at most: past it an opening is counted as
 * suppressed (memory stays bounded whatever the host's connections). */
#define ALLOWED_OPEN_MAX (1u << 20)

/* What a close record repeats of its open one, and where its bytes
 * are counted. */
struct open_flow {
	char *ends; /* "proto":...,"src":{...},"dst":{...},"edge":"F:L:C";
		       NULL when no record is written */
	uint64_t opened_ms;
	uint32_t pair;	    /* its bytes' series in the metrics, or 0 */
	uint32_t next_free; /* a free entry's successor, as a tag */
	bool live;
};

struct allowed {
	struct open_flow *v;
	size_t n, cap;
	uint32_t free_tag; /* 0: none */
	/* the rate limit: settings.log_rate openings a unit, a unit's
	 * worth at once */
	double tokens;
	uint64_t refilled_ms;
	struct allowed_stats st;
};

struct allowed *allowed_new(void)
{
	return xcalloc(1, sizeof(struct allowed));
}

void allowed_free(struct allowed *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->n; i++)
		free(a->v[i].ends);
	free(a->v);
	free(a);
}

const struct allowed_stats *allowed_stats(const struct allowed *a)
{
	return &a->st;
}

/* One token for an opening, refilled at the policy's log_rate. */
static bool take_token(struct allowed *a, const struct policy *p,
		       uint64_t now_ms)
{
	double unit_ms = !strcmp(p->log_rate_unit, "minute") ? 60e3
			 : !strcmp(p->log_rate_unit, "hour") ? 3600e3
							     : 1e3;
	double burst = p->log_rate;

	if (!a->refilled_ms) {
		a->tokens = burst;
	} else if (now_ms > a->refilled_ms) {
		a->tokens +=
		    (double)(now_ms - a->refilled_ms) * burst / unit_ms;
		if (a->tokens > burst)
			a->tokens = burst;
	}
	a->refilled_ms = now_ms;
	if (a->tokens < 1)
		return false;
	a->tokens -= 1;
	return true;
}

static uint32_t tag_new(struct allowed *a, char *ends, uint32_t pair,
			uint64_t now_ms)
{
	uint32_t tag = a->free_tag;
	struct open_flow *o;

	if (tag) {
		o = &a->v[tag - 1];
		a->free_tag = o->next_free;
	} else {
		o = PUSH(a->v, a->n, a->cap);
		tag = (uint32_t)a->n;
	}
	o->ends = ends;
	o->opened_ms = now_ms;
	o->pair = pair;
	o->next_free = 0;
	o->live = true;
	a->st.open++;
	return tag;
}

/* What metrics call an end of an allowed flow: its container's
 * service, else the kind of peer the edge names there. */
static const char *end_label(const struct policy *p,
			     const struct trace_decision *d, bool src,
			     const struct pol_peer *peer)
{
	static const char *const kind[] = {
	    [PEER_WORLD] = "world",
	    [PEER_HOST] = "host",
	    [PEER_CIDR] = "cidr",
	    [PEER_FQDN] = "fqdn",
	};
	long svc = src ? d->src_svc : d->dst_svc;

	if (src ? d->src : d->dst)
		return svc >= 0 ? p->services[svc].name : METRICS_UNMATCHED;
	return peer->kind != PEER_SERVICE ? kind[peer->kind] : "world";
}

static void record_start(struct strbuf *out, const char *ts, const char *event)
{
	sb_puts(out, "{\"ts\":");
	flowlog_jstr(out, ts);
	sb_printf(out, ",\"verdict\":\"allowed\",\"event\":\"%s\",", event);
}

uint32_t allowed_open(struct allowed *a, const struct allowed_judge *j,
		      const struct revoke_flow *f, const char *ts,
		      uint64_t now_ms, struct strbuf *out)
{
	bool to_host = revoke_addr_has(j->host, j->nhost, f->family, f->daddr);
	struct flow_pkt pkt = {.family = f->family,
			       .saddr = f->saddr,
			       .daddr = f->daddr,
			       .proto = f->proto,
			       .sport = f->sport,
			       .dport = f->dport,
			       .input = to_host,
			       .icmp_type = -1,
			       .icmp_code = -1};
	struct trace_decision d;
	struct strbuf ends = {0};
	const struct pol_edge *e;
	uint32_t pair = 0;
	bool logged;
	char *where;

	pkt.has_ports = f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP ||
			f->proto == IPPROTO_SCTP || f->proto == IPPROTO_UDPLITE;
	if (trace_decide_ix(j->cc, j->p, j->ix, f->family, f->saddr, f->daddr,
			    to_host, f->proto, f->dport, &d) ||
	    !d.allowed || d.edge < 0 || (size_t)d.edge >= j->p->nedges)
		return 0; /* not an edge's: nobody's flow, or not allowed */
	e = &j->p->edges[d.edge];
	logged = policy_edge_logged(j->p, e);
	if (j->m) {
		const char *src = end_label(j->p, &d, true, &e->src);
		const char *dst = end_label(j->p, &d, false, &e->dst);

		metrics_flow(j->m, "allowed", src, dst, "edge");
		pair = metrics_pair(j->m, src, dst);
	}
	if (a->st.open >= ALLOWED_OPEN_MAX ||
	    (logged && !take_token(a, j->p, now_ms))) {
		a->st.suppressed += logged;
		logged = false;
		if (a->st.open >= ALLOWED_OPEN_MAX)
			return 0;
	}
	if (!logged)
		return pair ? tag_new(a, NULL, pair, now_ms) : 0;
	flowlog_ends(&pkt, &d, j->p, j->gone, &ends);
	where = xasprintf("%s:%u:%u", e->file, e->loc.line, e->loc.col);
	sb_puts(&ends, ",\"edge\":");
	flowlog_jstr(&ends, where);
	free(where);
	record_start(out, ts, "open");
	sb_putn(out, ends.s, ends.len);
	sb_putc(out, '}');
	a->st.opened++;
	return tag_new(a, ends.s, pair, now_ms);
}

void allowed_close(struct allowed *a, struct metrics *m,
		   const struct revoke_event *ev, const char *ts,
		   uint64_t now_ms, struct strbuf *out)
{
	static const char *const how[] = {"closed", "timeout", "revoked",
					  "unknown"};
	struct open_flow *o;

	if (!ev->tag || ev->tag > a->n || !a->v[ev->tag - 1].live)
		return;
	o = &a->v[ev->tag - 1];
	if (ev->counted && m)
		metrics_bytes(m, o->pair, ev->bytes[0], ev->bytes[1]);
	o->live = false;
	o->next_free = a->free_tag;
	a->free_tag = ev->tag;
	a->st.open--;
	if (!o->ends)
		return;
	record_start(out, ts, "close");
	sb_puts(out, o->ends);
	sb_printf(out, ",\"duration_ms\":%llu",
		  (unsigned long long)(now_ms > o->opened_ms
					   ? now_ms - o->opened_ms
					   : 0));
	if (ev->counted)
		sb_printf(out,
			  ",\"packets\":{\"sent\":%llu,\"received\":%llu},"
			  "\"bytes\":{\"sent\":%llu,\"received\":%llu}",
			  (unsigned long long)ev->packets[0],
			  (unsigned long long)ev->packets[1],
			  (unsigned long long)ev->bytes[0],
			  (unsigned long long)ev->bytes[1]);
	else
		sb_puts(out, ",\"packets\":null,\"bytes\":null");
	sb_printf(out, ",\"end\":\"%s\"}", how[ev->end]);
	free(o->ends);
	o->ends = NULL;
	a->st.closed++;
}
