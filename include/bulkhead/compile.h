/* The compiler: policy x inventory -> ruleset IR, and the delta for one
 * container arriving or leaving. Pure: no I/O, no clock; FQDN answers are
 * passed in by the caller. */
#ifndef BULKHEAD_COMPILE_H
#define BULKHEAD_COMPILE_H

#include "bulkhead/diag.h"
#include "bulkhead/inventory.h"
#include "bulkhead/ir.h"
#include "bulkhead/policy.h"

#define COMPILE_TABLE "bulkhead"
#define COMPILE_UNMATCHED (-1)
#define COMPILE_CONFLICT (-2)

/* One resolved address of an fqdn peer, and how long the kernel keeps
 * it (0: for good). */
struct compile_fqdn {
	const char *name;
	int family;
	u128 addr;
	uint32_t timeout_ms;
};

struct compile_opts {
	bool audit; /* overrides settings.mode */
	/* a container matching two services is a warning and gets nothing
	 * (denied), not an error that stops the compile: the daemon must
	 * keep enforcing everything else */
	bool conflicts_deny;
	const struct compile_fqdn *fqdn;
	size_t nfqdn;
};

struct compiler;

/* Precomputes everything that depends on the policy alone. The compiler
 * borrows p, which must outlive it. */
struct compiler *compile_new(const struct policy *p,
			     const struct compile_opts *opts);
void compile_free(struct compiler *cc);

/* The service container c belongs to: an index, COMPILE_UNMATCHED or
 * COMPILE_CONFLICT (then *first and *second name the two services). */
long compile_assign(const struct compiler *cc, const struct inv_container *c,
		    long *first, long *second);

/* Whether network net (of container c, in inv) is managed. */
bool compile_net_managed(const struct compiler *cc, const struct inventory *inv,
			 const char *net);

/* The same rule, told how many matched containers are on net (in auto
 * mode a network is managed while one is). */
bool compile_net_managed_n(const struct compiler *cc, const char *net,
			   size_t matched);

/* Every container's service (compile_assign), and in *managed one flag
 * per (container, network), in order, saying whether that network is
 * managed: in one pass. The caller frees both. */
long *compile_classify(const struct compiler *cc, const struct inventory *inv,
		       bool **managed);

/* Reports containers matching two services (errors) and containers on a
 * managed network matching none (warnings), against inventory file name.
 * Returns the number of errors added. */
size_t compile_check(const struct compiler *cc, const struct inventory *inv,
		     const char *inv_name, struct diags *d);

/* Warnings for the ports container c publishes on the host that its
 * service opens to no one outside (the check above reports them for a
 * whole inventory; this, for a container just placed). Returns how
 * many. */
size_t compile_published(const struct compiler *cc,
			 const struct inv_container *c, struct diags *d);

/* The whole ruleset, elements sorted. NULL (diags filled) when a container
 * matches two services. */
struct ir_ruleset *compile_ruleset(const struct compiler *cc,
				   const struct inventory *inv,
				   const char *inv_name, struct diags *d);

/* The element changes for container idx of inv arriving (inv holds it
 * and everything else running) or leaving (inv still holds it). The
 * elements depend on the container's own edges, not on the size of inv.
 * Two things still look at inv: whether a network's bridge stays known
 * scans for another container on it (a matched one when networks are
 * left out of the policy), stopping at the first; and a network that
 * becomes managed or unmanaged brings every container on it along. */
int compile_delta(const struct compiler *cc, const struct inventory *inv,
		  size_t idx, bool arriving, struct ir_delta *out);

/* A port of bridge that no container is bound to (inv_bport), arriving
 * or leaving: its id_ports element, so that nothing from it passes,
 * when bridge is a managed one of inv. */
void compile_bport(const struct compiler *cc, const struct inventory *inv,
		   const char *bridge, const char *port, bool arriving,
		   struct ir_delta *out);

/* The name of service's FQDN set of family (AF_INET, AF_INET6), or NULL
 * when the policy gives it none. */
const char *compile_fqdn_set(const struct compiler *cc, size_t service,
			     int family);

/* The whole content of the fqdn sets that fqdn peer name (any case)
 * fills, under cc's answers: their ruleset indexes in *sets (the caller
 * frees it; the count is returned), every element as an addition in
 * out. What DNS says changes these sets alone. */
size_t compile_fqdn_sets(const struct compiler *cc, const char *name,
			 struct ir_delta *out, size_t **sets);

#endif
