/* The kernel interface: IR -> libnftnl objects -> one netlink batch,
 * committed atomically, with kernel errors mapped back to the object that
 * caused them. The only module that talks nftables netlink. It touches
 * tables inet bulkhead and bridge bulkhead and nothing else. */
#ifndef BULKHEAD_KERNEL_H
#define BULKHEAD_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "bulkhead/compile.h"
#include "bulkhead/ir.h"

struct kernel;

/* A netlink socket for batches and dumps, kept open across them (closing
 * one after deleting elements waits for the kernel to free them). NULL,
 * with a message in err, on failure. */
struct kernel *kernel_open(char *err, size_t errlen);
void kernel_close(struct kernel *k);

/* Replaces our table with rs in one transaction: create it if missing,
 * delete it, and create it anew with every chain, set, element and rule.
 * No packet sees a half-built or empty table; on any error nothing
 * changes. Returns 0 or a negative errno, with a message in err. */
int kernel_apply(struct kernel *k, const struct ir_ruleset *rs, char *err,
		 size_t errlen);

/* Applies the element changes of a delta (compile_delta, ir_diff) to the
 * table that rs describes, in one transaction: additions and deletions in
 * the delta's order, grouped per set. rs gives the sets' key layout only.
 * gen, when not 0, is the generation the delta was computed against
 * (kernel_read): if the ruleset changed since, nothing is applied and
 * -EAGAIN is returned. */
int kernel_apply_delta(struct kernel *k, const struct ir_ruleset *rs,
		       const struct ir_delta *delta, uint32_t gen, char *err,
		       size_t errlen);

/* Empties the sets of rs with the given indexes and fills them with the
 * additions in adds, in one transaction: what a set holds is replaced
 * without a window (the fqdn sets, refreshed with new timeouts). */
int kernel_refill(struct kernel *k, const struct ir_ruleset *rs,
		  const size_t *sets, size_t nsets, const struct ir_delta *adds,
		  char *err, size_t errlen);

/* Reads tables inet NAME and bridge NAME back into a new IR (elements
 * sorted, those of dynamic sets left out): *out is NULL when the inet
 * table does not exist (rs->bridge says whether the bridge one does).
 * A consistent snapshot: read again when the ruleset changed meanwhile;
 * *gen (may be NULL) receives its generation.
 * Returns 0 or a negative errno, with a message in err. */
int kernel_read(struct kernel *k, const char *table, struct ir_ruleset **out,
		uint32_t *gen, char *err, size_t errlen);

/* The messages kernel_apply sends for rs, batch frame included, in a
 * new buffer (*buf, *len) the caller frees: what the read-back decodes,
 * for tests and the fuzzer's seeds. */
void kernel_encode(const struct ir_ruleset *rs, char **buf, size_t *len);

/* Decodes netlink messages as the kernel's dumps of tables TABLE
 * return them (table, chains, sets, elements, rules; anything else is
 * skipped) into rs, the way kernel_read does. Never fails: what does not
 * parse is left out, a rule that is not bulkhead's is kept as foreign. */
void kernel_decode(const char *table, const void *buf, size_t len,
		   struct ir_ruleset *rs);

/* What kernel_sync did. */
struct kernel_sync {
	bool replaced; /* the whole table, else elements only */
	size_t nadd, ndel;
};

/* Converges the kernel on want: reads our table back and, when its
 * chains, rules and sets already match, changes only the elements that
 * differ, in one batch tied to the generation it read; otherwise (or
 * with replace, or when the table changed meanwhile) replaces the table
 * in one transaction. Never a flush and a refill: no window. */
int kernel_sync(struct kernel *k, const struct ir_ruleset *want, bool replace,
		struct kernel_sync *res, char *err, size_t errlen);

/* A socket on nftables' event group: readable when any process changes
 * the ruleset. NULL, with a message in err, on failure. */
struct kernel_watch;
struct kernel_watch *kernel_watch_open(char *err, size_t errlen);
void kernel_watch_close(struct kernel_watch *w);
int kernel_watch_fd(const struct kernel_watch *w);

/* Reads every pending event. Returns 1 when one changed the table that rs
 * describes and came from another socket than k's (our own batches are
 * not news; nor are the elements the packet path puts in dynamic sets),
 * or when events were lost: anything may have happened; what says which.
 * 0 otherwise. */
int kernel_watch_read(struct kernel_watch *w, const struct kernel *k,
		      const struct ir_ruleset *rs, char *what, size_t whatlen);

/* The pure part: the same, for the netlink messages in buf (one datagram
 * of events), self being our batches' port id. Returns 0, or how much the
 * weightiest foreign event says (a deleted table more than its rules),
 * which what names. */
int kernel_event_foreign(const void *buf, size_t len, uint32_t self,
			 const struct ir_ruleset *rs, char *what,
			 size_t whatlen);

/* The port id our batches go out from, as events name it. */
uint32_t kernel_portid(const struct kernel *k);

/* Deletes tables inet NAME and bridge NAME; 0 when they were not there. */
int kernel_flush(struct kernel *k, const char *table, char *err, size_t errlen);

#endif
