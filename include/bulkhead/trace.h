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
/* The same as a scope's owners see it: visible[svc] says which
 * services' containers they may name and see; at least one end must be
 * one of them, and the other, when not, shows as its service alone
 * (no container, address or path through the kernel's sets). */
int trace_run_view(const struct compiler *cc, const struct policy *p,
		   const struct ir_ruleset *rs, const struct inventory *inv,
		   const char *src, const char *dst, const char *port,
		   const bool *visible, struct strbuf *out, struct diags *d);

/* The policy model's answer for a new connection between two addresses
 * (to_host: to the host's own address, the input hook): allowed by an
 * edge (index into p->edges) or denied, with the reason: "no-edge",
 * "port-not-allowed" (an edge exists for other ports),
 * "not-accepted" (an edge between scopes only one side declares),
 * "unmatched-container" or "link-local". The containers and networks found for
 * each address (NULL: world or host) are borrowed from inv. */
struct trace_decision {
	bool allowed;
	long edge;
	const char *reason, *why;
	const struct inv_container *src, *dst;
	const struct inv_net *src_net, *dst_net;
	long src_svc, dst_svc; /* service indexes, or COMPILE_* */
	/* "not-accepted": the edge one scope declared, the other not */
	const struct pol_edge *cross;
};
int trace_decide(const struct compiler *cc, const struct policy *p,
		 const struct inventory *inv, int family, u128 saddr,
		 u128 daddr, bool to_host, uint8_t proto, uint16_t port,
		 struct trace_decision *out);

/* Every address of inv with its container's service, and the matched
 * containers each network has, built in one pass, for many decisions in
 * a row (the denied-flow log, revocation). As inv changes, the caller
 * says so: a container added after it joined inv, deleted before it
 * leaves (its entry may move in inv meanwhile; its id and nets may not).
 * cc, p and inv itself are the index's for as long as it lives. */
struct trace_index;
struct trace_index *trace_index_new(const struct compiler *cc,
				    const struct policy *p,
				    const struct inventory *inv);
/* False when c took an address another container of the index held:
 * the index is then no longer exact when c leaves (build it anew). */
bool trace_index_add(struct trace_index *ix, const struct inv_container *c);
void trace_index_del(struct trace_index *ix, const struct inv_container *c);
void trace_index_free(struct trace_index *ix);
/* The container of the index holding addr (its net and service into
 * *net and *svc), or NULL. */
const struct inv_container *trace_index_find(const struct trace_index *ix,
					     int family, u128 addr,
					     const struct inv_net **net,
					     long *svc);
/* trace_decide, answered from the index: the same decision. */
int trace_decide_ix(const struct compiler *cc, const struct policy *p,
		    const struct trace_index *ix, int family, u128 saddr,
		    u128 daddr, bool to_host, uint8_t proto, uint16_t port,
		    struct trace_decision *out);

#endif
