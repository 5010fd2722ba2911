/* The kernel interface: IR -> libnftnl objects -> one netlink batch,
 * committed atomically, with kernel errors mapped back to the object that
 * caused them. The only module that talks nftables netlink. It touches
 * table inet bulkhead and nothing else. */
#ifndef BULKHEAD_KERNEL_H
#define BULKHEAD_KERNEL_H

#include <stddef.h>

#include "bulkhead/compile.h"
#include "bulkhead/ir.h"

/* Replaces our table with rs in one transaction: create it if missing,
 * delete it, and create it anew with every chain, set, element and rule.
 * No packet sees a half-built or empty table; on any error nothing
 * changes. Returns 0 or a negative errno, with a message in err. */
int kernel_apply(const struct ir_ruleset *rs, char *err, size_t errlen);

/* Applies the element changes of a delta (compile_delta) to the table
 * that rs describes, in one transaction: additions and deletions in the
 * delta's order, grouped per set. rs gives the sets' key layout only. */
int kernel_apply_delta(const struct ir_ruleset *rs,
		       const struct ir_delta *delta, char *err, size_t errlen);

/* Deletes table inet NAME; 0 when it was not there. */
int kernel_flush(const char *table, char *err, size_t errlen);

#endif
