/* Revocation: the connections that a change no longer allows end. The
 * kernel's conntrack table is read (libnetfilter_conntrack), each entry
 * judged by the decision `trace` makes under the state now in force, and
 * the entries it denies are deleted; the next packet of such a flow, in
 * either direction, is a new connection that the ruleset drops. Touches
 * conntrack and nothing else; never an entry between two addresses that
 * no managed container holds. */
#ifndef BULKHEAD_REVOKE_H
#define BULKHEAD_REVOKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/compile.h"
#include "bulkhead/trace.h"
#include "bulkhead/util.h"

/* A connection as its initiator opened it (after DNAT: to the address
 * and port it reached). */
struct revoke_flow {
	int family;
	u128 saddr, daddr;
	uint8_t proto;
	uint16_t sport, dport;
};

/* An address a container held that it holds no more: its flows end,
 * whatever the policy says (another container may take the address). */
struct revoke_addr {
	int family;
	u128 addr;
};

/* What a sweep judged and ended (entries it deleted: one the kernel no
 * longer held is not counted), and one line naming the pairs ended
 * ("backend_1 -> db_1 5432/tcp (no-edge)", comma-separated). */
struct revoke_result {
	size_t seen, ended;
	struct strbuf pairs;
	double ms;
};

struct revoke;

struct revoke *revoke_new(char *err, size_t errlen);
void revoke_free(struct revoke *rv);

/* The verdict on one flow, pure: false (with the reason in why) when
 * the flow must end. A flow neither end of which is a container of inv
 * is kept; one that touches a gone address ends. host_addrs: the host's
 * own addresses (a flow to one of them is judged at the input hook). */
struct revoke_judge {
	const struct compiler *cc;
	const struct policy *p;
	const struct inventory *inv;
	const struct trace_index *ix;
	/* the ruleset in force: what FQDN peers resolve to now (the policy
	 * model knows names, not addresses); NULL, none */
	const struct ir_ruleset *rs;
	const struct revoke_addr *gone, *host; /* host: sorted */
	size_t ngone, nhost;
	/* only the flows with an end in gone are judged (the others' right
	 * has not changed), not every flow; tracking, they are found by
	 * address, without a look at the others */
	bool only_gone;
};
bool revoke_keep(const struct revoke_judge *j, const struct revoke_flow *f,
		 char *why, size_t whylen);

/* Reads every conntrack entry (IPv4 and IPv6), ends those revoke_keep
 * refuses. Returns 0 or a negative errno (message in err); res filled.
 * res->pairs is the caller's to free (sb_free). */
int revoke_sweep(struct revoke *rv, const struct revoke_judge *j,
		 struct revoke_result *res, char *err, size_t errlen);

/* Tracking, for a daemon: the table read once into an index of ours,
 * then kept by conntrack's events (revoke_fd readable: revoke_events),
 * so that a sweep judges memory instead of reading the kernel. Events
 * lost: the next sweep reads the table anew. */
int revoke_track(struct revoke *rv, char *err, size_t errlen);

/* A flow as conntrack's events tell it, once tracking: opened, or ended
 * (closed: FIN or RST seen; timeout: conntrack let it go; revoked: a
 * sweep ended it; unknown: it went while events were lost). An end is
 * told only for a flow its opening tagged. */
enum revoke_end {
	REVOKE_END_CLOSED,
	REVOKE_END_TIMEOUT,
	REVOKE_END_REVOKED,
	REVOKE_END_UNKNOWN
};
struct revoke_event {
	bool open;
	const struct revoke_flow *f;
	enum revoke_end end;
	/* the entry's counters, when conntrack keeps them
	 * (nf_conntrack_acct): [0] from the source, [1] back to it; whole
	 * IP packets, headers included */
	bool counted;
	uint64_t packets[2], bytes[2];
	uint32_t tag;
};
/* At an opening, returns the flow's tag (0: its end is of no interest). */
typedef uint32_t revoke_event_fn(void *ctx, const struct revoke_event *ev);
void revoke_on_events(struct revoke *rv, revoke_event_fn *fn, void *ctx);
/* The kernel tells no end of an entry made before anyone listened
 * (nf_conntrack_events=2): the flows a read of the table put in the
 * index may have ended untold. Reads the table (only while the index
 * holds such flows) and drops those no longer in it; returns how many.
 * Errors (in err) leave the index as it was. */
size_t revoke_prune(struct revoke *rv, char *err, size_t errlen);
int revoke_fd(const struct revoke *rv);
void revoke_events(struct revoke *rv);
size_t revoke_tracked(const struct revoke *rv);
/* How often conntrack's events overran (lost: the table is read anew,
 * and flows opened meanwhile are not on record). */
unsigned long revoke_overruns(const struct revoke *rv);
/* Tracking, with nothing lost and (the events read) no flow tracked: a
 * sweep would judge nothing, so its judge need not be made. */
bool revoke_idle(struct revoke *rv);

/* The host's own addresses (getifaddrs), in a new array, sorted. */
struct revoke_addr *revoke_host_addrs(size_t *n);
/* Whether family/a is among v[0..n). */
bool revoke_addr_in(const struct revoke_addr *v, size_t n, int family, u128 a);
/* The order of sorted address lists (by family, then address), and
 * whether family/a is in one: a binary search (the host's addresses,
 * one per container's veth). */
int revoke_addr_cmp(const void *a, const void *b);
bool revoke_addr_has(const struct revoke_addr *sorted, size_t n, int family,
		     u128 a);

#endif
