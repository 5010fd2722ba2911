/* Prometheus metrics (see metrics.h): series found by their labels in an
 * open-addressed table, and the text format written by hand (it is a
 * few lines of printf; the parsing side is Prometheus's). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/metrics.h"

/* Series of one family, each named by its labels written out
 * (`verdict="denied",src_service="nginx",...`), in the order first
 * counted; the table finds them. */
struct family {
	struct series {
		char *labels;
		uint64_t v[2];
	} * s;
	size_t n, cap;
	uint32_t *slot; /* index + 1, 0 empty; a power of two of them */
	size_t nslot;
};

struct metrics {
	struct family flows, bytes;
};

struct metrics *metrics_new(void)
{
	return xcalloc(1, sizeof(struct metrics));
}

static void family_free(struct family *f)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		free(f->s[i].labels);
	free(f->s);
	free(f->slot);
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	family_free(&m->flows);
	family_free(&m->bytes);
	free(m);
}

static void rehash(struct family *f)
{
	size_t i, j;

	free(f->slot);
	f->nslot = f->nslot ? f->nslot * 2 : 64;
	f->slot = xcalloc(f->nslot, sizeof(*f->slot));
	for (i = 0; i < f->n; i++) {
		j = str_hash(f->s[i].labels) & (f->nslot - 1);
		while (f->slot[j])
			j = (j + 1) & (f->nslot - 1);
		f->slot[j] = (uint32_t)i + 1;
	}
}

/* The series labelled so, added at zero when new. */
static struct series *series(struct family *f, const char *labels)
{
	size_t j;
	struct series *s;

	if ((f->n + 1) * 2 > f->nslot)
		rehash(f);
	j = str_hash(labels) & (f->nslot - 1);
	for (; f->slot[j]; j = (j + 1) & (f->nslot - 1))
		if (!strcmp(f->s[f->slot[j] - 1].labels, labels))
			return &f->s[f->slot[j] - 1];
	s = PUSH(f->s, f->n, f->cap);
	s->labels = xstrdup(labels);
	s->v[0] = s->v[1] = 0;
	f->slot[j] = (uint32_t)f->n;
	return s;
}

/* A label value: backslash, double quote and line feed escaped. */
static void label(struct strbuf *b, const char *name, const char *value)
{
	if (b->len)
		sb_putc(b, ',');
	sb_puts(b, name);
	sb_puts(b, "=\"");
	for (; *value; value++) {
		if (*value == '\\' || *value == '"')
			sb_putc(b, '\\');
		if (*value == '\n')
			sb_puts(b, "\\n");
		else
			sb_putc(b, *value);
	}
	sb_putc(b, '"');
}

void metrics_flow(struct metrics *m, const char *verdict, const char *src,
		  const char *dst, const char *reason)
{
	struct strbuf b = {0};

	label(&b, "verdict", verdict);
	label(&b, "src_service", src);
	label(&b, "dst_service", dst);
	label(&b, "reason", reason);
	series(&m->flows, b.s)->v[0]++;
	sb_free(&b);
}

uint32_t metrics_pair(struct metrics *m, const char *src, const char *dst)
{
	struct strbuf b = {0};
	struct series *s;

	label(&b, "src_service", src);
	label(&b, "dst_service", dst);
	s = series(&m->bytes, b.s);
	sb_free(&b);
	return (uint32_t)(s - m->bytes.s) + 1;
}

void metrics_bytes(struct metrics *m, uint32_t pair, uint64_t sent,
		   uint64_t received)
{
	if (!pair || pair > m->bytes.n)
		return;
	m->bytes.s[pair - 1].v[0] += sent;
	m->bytes.s[pair - 1].v[1] += received;
}

/* --- the exposition ---------------------------------------------------- */

static void head(struct strbuf *out, const char *name, const char *type,
		 const char *help)
{
	sb_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(struct strbuf *out, const char *name, const char *type,
		const char *help, double v)
{
	head(out, name, type, help);
	sb_printf(out, "%s %.17g\n", name, v);
}

static int by_labels(const void *a, const void *b)
{
	const struct series *const *x = a, *const *y = b;

	return strcmp((*x)->labels, (*y)->labels);
}

/* A family's series in the order of their labels (a scrape reads the
 * same order each time). */
static const struct series **sorted(const struct family *f)
{
	const struct series **v = xcalloc(f->n + 1, sizeof(*v));
	size_t i;

	for (i = 0; i < f->n; i++)
		v[i] = &f->s[i];
	qsort(v, f->n, sizeof(*v), by_labels);
	return v;
}

static void counts(struct strbuf *out, const char *name, const char *type,
		   const char *help, const char *key,
		   const struct metrics_count *c, size_t n)
{
	struct strbuf l = {0};
	size_t i;

	head(out, name, type, help);
	for (i = 0; i < n; i++) {
		l.len = 0;
		label(&l, key, c[i].label);
		sb_printf(out, "%s{%s} %lu\n", name, l.s, c[i].n);
	}
	sb_free(&l);
}

static void le(struct strbuf *out, double bound, unsigned long n)
{
	if (isinf(bound))
		sb_printf(out,
			  "bulkhead_placement_seconds_bucket{le=\"+Inf\"} "
			  "%lu\n",
			  n);
	else
		sb_printf(out,
			  "bulkhead_placement_seconds_bucket{le=\"%g\"} %lu\n",
			  bound, n);
}

void metrics_render(const struct metrics *m, const struct metrics_state *st,
		    struct strbuf *out)
{
	const struct series **v;
	struct strbuf l = {0};
	size_t i;

	head(out, "bulkhead_flows_total", "counter",
	     "Flows decided: each denied connection attempt logged and each "
	     "allowed connection opened, by verdict, the services on both "
	     "ends and the reason.");
	v = sorted(&m->flows);
	for (i = 0; v[i]; i++)
		sb_printf(out, "bulkhead_flows_total{%s} %llu\n", v[i]->labels,
			  (unsigned long long)v[i]->v[0]);
	free(v);
	head(out, "bulkhead_flow_bytes_total", "counter",
	     "Bytes of allowed flows that ended (whole IP packets, as "
	     "conntrack counts them), by the services on both ends and "
	     "direction: sent from the source, received by it.");
	v = sorted(&m->bytes);
	for (i = 0; v[i]; i++)
		sb_printf(out,
			  "bulkhead_flow_bytes_total{%s,direction=\"sent\"} "
			  "%llu\n"
			  "bulkhead_flow_bytes_total{%s,direction=\"received\"}"
			  " %llu\n",
			  v[i]->labels, (unsigned long long)v[i]->v[0],
			  v[i]->labels, (unsigned long long)v[i]->v[1]);
	free(v);
	if (st->denied_packets >= 0)
		one(out, "bulkhead_denied_packets_total", "counter",
		    "Packets the deny chain dropped (or, in audit mode, would "
		    "have), logged or not, since our table was last replaced.",
		    (double)st->denied_packets);
	head(out, "bulkhead_log_suppressed_total", "counter",
	     "Flow records the rate limit (settings.log_rate) or a cap kept "
	     "out of the flow log, by verdict.");
	sb_printf(out,
		  "bulkhead_log_suppressed_total{verdict=\"denied\"} %lu\n"
		  "bulkhead_log_suppressed_total{verdict=\"allowed\"} %lu\n",
		  st->suppressed_denied, st->suppressed_allowed);
	one(out, "bulkhead_log_records_total", "counter",
	    "Records written to the flow log, each line whole.",
	    (double)st->records);
	one(out, "bulkhead_log_lost_total", "counter",
	    "Records the flow log could not write (a write failed: a full "
	    "disk, an I/O error; or the writer was too far behind).",
	    (double)st->log_lost);
	head(out, "bulkhead_events_lost_total", "counter",
	     "Batches of events the kernel dropped before we read them "
	     "(socket overrun), by source: counted, recovered by a resync "
	     "where that can.");
	sb_printf(out,
		  "bulkhead_events_lost_total{source=\"nflog\"} %lu\n"
		  "bulkhead_events_lost_total{source=\"conntrack\"} %lu\n",
		  st->log_overruns, st->ct_overruns);
	counts(out, "bulkhead_containers", "gauge",
	       "Running containers placed, by the service that holds them.",
	       "service", st->containers, st->ncontainers);
	one(out, "bulkhead_elements", "gauge",
	    "Elements in our sets (addresses, ports, peers), as the kernel "
	    "holds them.",
	    (double)st->elements);
	head(out, "bulkhead_kernel_commits_total", "counter",
	     "Transactions committed to the kernel, by kind: a container's "
	     "delta, the whole table converged on, an fqdn peer's sets "
	     "refilled.");
	sb_printf(out,
		  "bulkhead_kernel_commits_total{kind=\"delta\"} %lu\n"
		  "bulkhead_kernel_commits_total{kind=\"full\"} %lu\n"
		  "bulkhead_kernel_commits_total{kind=\"refill\"} %lu\n",
		  st->commits_delta, st->commits_full, st->commits_refill);
	one(out, "bulkhead_restores_total", "counter",
	    "Changes another process made to our tables, put back.",
	    (double)st->restores);
	one(out, "bulkhead_revoked_flows_total", "counter",
	    "Established flows ended because what is in force no longer "
	    "allows them.",
	    (double)st->revoked);
	one(out, "bulkhead_allowed_flows_open", "gauge",
	    "Allowed flows opened and not ended yet.", (double)st->flows_open);
	one(out, "bulkhead_errors_total", "counter",
	    "Failures the daemon logged (a retry that fails alike counts "
	    "again).",
	    (double)st->errors);
	one(out, "bulkhead_docker_connected", "gauge",
	    "1 while the daemon follows Docker's events, 0 while it is "
	    "reconnecting (the rules in force stay).",
	    st->docker_connected ? 1 : 0);
	head(out, "bulkhead_placement_seconds", "histogram",
	     "Seconds from a container's network connect event read to its "
	     "elements committed.");
	for (i = 0; i < st->nbuckets; i++)
		le(out, st->le[i], st->buckets[i]);
	le(out, INFINITY, st->placements);
	sb_printf(out,
		  "bulkhead_placement_seconds_sum %.9g\n"
		  "bulkhead_placement_seconds_count %lu\n",
		  st->placement_sum_s, st->placements);
	counts(out, "bulkhead_fqdn_up", "gauge",
	       "1 when an fqdn peer's name has addresses in force, 0 when it "
	       "has none (DNS failed, or no answer yet).",
	       "name", st->fqdn, st->nfqdn);
	head(out, "bulkhead_build_info", "gauge",
	     "The build of bulkhead serving these metrics (always 1).");
	label(&l, "version", st->version ? st->version : "");
	sb_printf(out, "bulkhead_build_info{%s} 1\n", l.s);
	sb_free(&l);
}
