/* Prometheus metrics: the counters the daemon keeps as flows are decided
 * (by verdict, the services on both ends and the reason; allowed flows'
 * bytes by direction) and the text exposition format (version 0.0.4) of
 * those and of the gauges the caller passes at each scrape. Pure: no I/O
 * (scrape.h serves it). Series never leave once counted, as Prometheus
 * wants of counters; their number is bounded by the policy's services
 * (pairs of them), not by containers or flows. */
#ifndef BULKHEAD_METRICS_H
#define BULKHEAD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/util.h"

/* An end of a flow that is no service's container, as labels name it. */
#define METRICS_UNMATCHED "unmatched" /* a container no service matches */

struct metrics;
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* One flow decided: verdict "allowed", "denied" or "would-deny"; src and
 * dst a service's name or world, host, cidr, fqdn, unmatched; reason the
 * record's (no-edge, ...; "edge" for an allowed one). */
void metrics_flow(struct metrics *m, const char *verdict, const char *src,
		  const char *dst, const char *reason);
/* The bytes series of the pair (src, dst), for metrics_bytes: an id that
 * stays valid for m's life. */
uint32_t metrics_pair(struct metrics *m, const char *src, const char *dst);
void metrics_bytes(struct metrics *m, uint32_t pair, uint64_t sent,
		   uint64_t received);

struct metrics_count {
	const char *label; /* a service's name, an fqdn peer's, a kind */
	unsigned long n;
};

/* What a scrape reads of the daemon at that moment. */
struct metrics_state {
	const char *version;
	bool docker_connected;
	struct metrics_count *containers; /* per service (and unmatched) */
	size_t ncontainers;
	unsigned long elements; /* in our sets, as the kernel should hold */
	/* commits to the kernel: a container's delta, the whole table
	 * converged on, an fqdn peer's sets refilled */
	unsigned long commits_delta, commits_full, commits_refill;
	unsigned long restores;	  /* others' changes to our tables put back */
	long long denied_packets; /* the deny chain's counter; < 0: unread */
	unsigned long records;	  /* flow log lines written */
	unsigned long log_lost;	  /* flow log lines not written */
	unsigned long suppressed_denied, suppressed_allowed;
	unsigned long log_overruns, ct_overruns;
	unsigned long revoked, flows_open, errors;
	/* placements, network connect to committed: counts at or under
	 * each bound of le (seconds), ascending; count and sum of all */
	const double *le;
	const unsigned long *buckets;
	size_t nbuckets;
	unsigned long placements;
	double placement_sum_s;
	struct metrics_count *fqdn; /* n: 1 when the name has addresses */
	size_t nfqdn;
};

/* The exposition of m and st, appended to out. */
void metrics_render(const struct metrics *m, const struct metrics_state *st,
		    struct strbuf *out);

#endif
