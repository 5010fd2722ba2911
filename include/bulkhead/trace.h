/* `trace`: would a new connection SRC -> DST PORT/PROTO be allowed, and
 * what decides? Answers from the policy model (the edge, file:line) and
 * checks the answer by walking the packet through the compiled IR. Pure. */
#ifndef BULKHEAD_TRACE_H
#define BULKHEAD_TRACE_H

#include "bulkhead/compile.h"

enum trace_verdict { TRACE_ALLOWED, TRACE_DENIED };

/* Resolves src and dst (container name or id, service name, IP address,
 * "host" as a destination) against inv, writes the report to out and
 * returns TRACE_ALLOWED or TRACE_DENIED; -EINVAL with diags on bad
 * arguments; -EFAULT when the model and the IR disagree (a bug). */
int trace_run(const struct compiler *cc, const struct policy *p,
	      const struct ir_ruleset *rs, const struct inventory *inv,
	      const char *src, const char *dst, const char *port,
	      struct strbuf *out, struct diags *d);

#endif
