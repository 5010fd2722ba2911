/* Allowed flows on record: each connection that a policy edge allows and
 * that is logged (settings.log_allowed, or the edge's own log:) gets an
 * open record when conntrack says it opened, naming both ends and the
 * edge, and a close record when it ends, with how long it lasted, its
 * packets and bytes each way and how it ended. The records are lines of
 * the flow log, beside the denied ones. Pure: the caller passes the
 * clock, the state in force and conntrack's events; records go to out. */
#ifndef BULKHEAD_ALLOWED_H
#define BULKHEAD_ALLOWED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/metrics.h"
#include "bulkhead/revoke.h"
#include "bulkhead/trace.h"
#include "bulkhead/util.h"

/* What an opening is judged by: the state in force (as revocation's
 * judge has it). */
struct allowed_judge {
	const struct compiler *cc;
	const struct policy *p;
	const struct trace_index *ix;
	const struct trace_index *gone; /* to name ends that left lately */
	const struct revoke_addr *host;
	size_t nhost;
	/* every allowed opening counted here, logged or not, and its
	 * bytes at its end (NULL: no metrics) */
	struct metrics *m;
};

struct allowed_stats {
	unsigned long opened, closed;
	/* openings over settings.log_rate, or over the open flows kept:
	 * neither record written, counted here and in the log's summary */
	unsigned long suppressed;
	size_t open; /* flows told as open, not ended yet */
};

struct allowed;
struct allowed *allowed_new(void);
void allowed_free(struct allowed *a);

/* Flow f opened at now_ms (monotonic; ts the wall clock, ISO 8601): when
 * an edge that logs allows it, its open record is appended to out and
 * its tag (> 0) returned, for its end; else 0 and nothing written. One
 * record, one line of JSON text without its line end. With j->m, every
 * flow an edge allows is counted there and tagged, logged or not. */
uint32_t allowed_open(struct allowed *a, const struct allowed_judge *j,
		      const struct revoke_flow *f, const char *ts,
		      uint64_t now_ms, struct strbuf *out);

/* The flow tagged ev->tag ended: its close record appended to out (when
 * its opening was written), its bytes counted in m (when not NULL). */
void allowed_close(struct allowed *a, struct metrics *m,
		   const struct revoke_event *ev, const char *ts,
		   uint64_t now_ms, struct strbuf *out);

const struct allowed_stats *allowed_stats(const struct allowed *a);

#endif
