/* Placement and convergence: what the kernel should hold, kept on what
 * Docker says. It owns the policy in force, the compiler, the inventory,
 * the containers gone lately, the queue of Docker's events and the
 * latencies; it asks Docker nothing and programs nothing itself: the
 * caller fetches what sync_next names, and every commit goes through
 * the callbacks (the daemon's are the kernel; a test's, a recorder). */
#ifndef BULKHEAD_SYNC_H
#define BULKHEAD_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "bulkhead/compile.h"
#include "bulkhead/docker.h"
#include "bulkhead/kernel.h"
#include "bulkhead/ports.h"
#include "bulkhead/revoke.h"
#include "bulkhead/trace.h"

#define SYNC_LAT_N 1024u
#define SYNC_LAT_NLE 12u
#define SYNC_GONE_S 300 /* records still name containers gone this long */

struct sync_ops {
	void *ctx;
	/* the element changes of delta, against the sets of rs, in one
	 * transaction: 0, or nonzero with a message in err */
	int (*apply)(void *ctx, const struct ir_ruleset *rs,
		     const struct ir_delta *delta, char *err, size_t errlen);
	/* the kernel converged on rs whole (kernel_sync) */
	int (*converge)(void *ctx, const struct ir_ruleset *rs,
			struct kernel_sync *res, char *err, size_t errlen);
	/* sets of rs emptied and filled with adds (kernel_refill) */
	int (*refill)(void *ctx, const struct ir_ruleset *rs,
		      const size_t *sets, size_t nsets,
		      const struct ir_delta *adds, char *err, size_t errlen);
	/* one line for the log */
	void (*say)(void *ctx, const char *line);
	/* a failure: counted, logged when it is not the last one again */
	void (*fail)(void *ctx, const char *msg);
	/* call sync_bind in ms milliseconds */
	void (*bind_in)(void *ctx, unsigned ms);
};

/* Microseconds from an event read (v) or from Docker's last answer
 * (own) to the container's elements committed: the last SYNC_LAT_N. */
struct sync_lat {
	double v[SYNC_LAT_N], own[SYNC_LAT_N];
	size_t n, pos;
	/* all of them (v), as a histogram: how many took at most each
	 * bound of sync_lat_le (seconds), their count and sum */
	unsigned long le[SYNC_LAT_NLE], count;
	double sum_s;
};
extern const double sync_lat_le[SYNC_LAT_NLE];

struct sync_stats {
	unsigned long events, deltas, resyncs, restores;
	unsigned long before_start; /* starts placed before they were read */
	unsigned long refills;	    /* fqdn sets refilled */
	unsigned long net_reused;   /* connects answered by a kept object */
	time_t last_sync, last_restore;
	char last_restore_why[160];
	struct sync_lat start, connect;
	struct sync_lat bound; /* start read -> its port bound (identity) */
};

struct sync;

/* Takes p. ports (may be NULL: nothing is bound) and dk (its networks'
 * bridge names, for parsing Docker's answers) are borrowed. */
struct sync *sync_new(struct policy *p, const struct compile_opts *co,
		      struct ports *ports, struct docker *dk,
		      const struct sync_ops *ops);
void sync_free(struct sync *s);

/* --- Docker's events --------------------------------------------------- */

/* One line of Docker's event stream, queued: 0; one that does not parse
 * asks for a resync: -EINVAL. */
int sync_event(struct sync *s, const char *line, size_t len);
/* What the event at the head of the queue needs from Docker: a path to
 * GET, whose answer goes to sync_answer; NULL when the queue is empty.
 * Events that need no answer (a container gone) are placed here. */
const char *sync_next(struct sync *s);
/* Docker's answer to the last sync_next (status 0: err says why). */
void sync_answer(struct sync *s, long status, const char *body, size_t len,
		 const char *err);
/* Docker is gone: the queue is dropped (a resync follows). */
void sync_drop_queue(struct sync *s);
/* Whether something asked for a full resync; cleared by sync_converge
 * and by sync_want_resync(s, false). */
bool sync_wants_resync(const struct sync *s);
void sync_want_resync(struct sync *s, bool want);

/* --- the kernel as a whole -------------------------------------------- */

/* The whole of inv (taken) compiled and converged on; on success it is
 * the inventory. 0, or -1 (the failure said) with the old one kept. */
int sync_converge(struct sync *s, struct inventory *inv,
		  struct kernel_sync *res);
/* Another process changed our table (what says how): what we hold is
 * put back. 1 when something was, 0 when nothing needed it, -1 on a
 * failure (a resync is asked for). */
int sync_restore(struct sync *s, const char *what, struct kernel_sync *res);
/* p (taken on success) in force: compiled and converged on. 0, or -1
 * with the running policy kept. */
int sync_reload(struct sync *s, struct policy *p, struct kernel_sync *res);
/* The fqdn peers' addresses (l taken): returns whether they changed (the
 * compiler is then new). */
bool sync_fqdn(struct sync *s, struct compile_fqdn *l, size_t n);
/* Name's sets refilled in one transaction; changed: its addresses
 * changed, not only their timeouts. */
void sync_refill(struct sync *s, const char *name, bool changed);
/* Binds the containers still waiting for their bridge ports. */
void sync_bind(struct sync *s);
/* Link ifname changed: master is the bridge it is a port of now, NULL
 * when none. A port of a managed bridge no endpoint is bound to is
 * listed (nothing from it passes); one gone, or bound, leaves. */
void sync_link(struct sync *s, const char *ifname, const char *master);

/* --- what it holds ----------------------------------------------------- */

const struct policy *sync_policy(const struct sync *s);
struct compiler *sync_compiler(const struct sync *s);
const struct inventory *sync_inventory(const struct sync *s);
/* Containers gone in the last SYNC_GONE_S seconds, and their addresses'
 * index (made anew after the policy moved), to name a late record's
 * ends. */
const struct inventory *sync_gone(const struct sync *s);
const struct trace_index *sync_gone_index(struct sync *s);
/* How long a container gone is kept there (SYNC_GONE_S unless told):
 * those older leave as the next one comes. */
void sync_keep_gone(struct sync *s, unsigned seconds);
/* The last full compile (its sets name delta's), NULL before one. */
const struct ir_ruleset *sync_ruleset(const struct sync *s);
/* The whole ruleset the kernel should hold now, as a full compile
 * writes it (compiled anew when deltas were committed since). */
const struct ir_ruleset *sync_wanted(struct sync *s);
/* The same elements, for judging (lookups): the last full compile with
 * the deltas since made to it, compiled anew only after a refill. */
const struct ir_ruleset *sync_judged(struct sync *s);
/* The addresses' index, made anew after the inventory or policy moved. */
struct trace_index *sync_index(struct sync *s);
bool sync_audit(const struct sync *s);
const struct sync_stats *sync_stats(const struct sync *s);

/* Whether a change since the last call may have ended flows' right; if
 * so, the addresses containers gave up since go into *gone (the caller
 * frees it), else *gone is NULL. *all: every flow is to be judged (the
 * policy, a full sync, FQDN answers or a port's binding changed), else
 * only those with an end in *gone (containers left, nothing else). */
bool sync_revocation(struct sync *s, struct revoke_addr **gone, size_t *n,
		     bool *all);

#endif
