/* FQDN peers' addresses, kept fresh by their DNS TTL: which names to
 * ask about and when, what to program and for how long, and what to keep
 * when DNS fails. Pure: the caller asks DNS and passes its clock in
 * (milliseconds, monotonic), so that tests run on a fake one.
 *
 * An answer's TTL is clamped to [min_ttl, max_ttl] (its effective TTL,
 * E). The name is asked again at E less a margin (a quarter of E, at
 * least 10 s, at most half of E), and its elements are programmed with
 * a timeout of E plus that margin: refreshed in time, they never lapse,
 * and should the daemon stop they expire on their own. A failure keeps
 * the last good addresses (programmed again, with the same timeout) and
 * asks again after 1 s, doubling to at most a minute or E. */
#ifndef BULKHEAD_FQDN_H
#define BULKHEAD_FQDN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/compile.h"
#include "bulkhead/policy.h"
#include "bulkhead/util.h"

#define FQDN_MIN_TTL_S 30u
#define FQDN_MAX_TTL_S 3600u
#define FQDN_MAX_ADDRS 64u
#define FQDN_NEVER UINT64_MAX

struct fqdn_addr {
	int family;
	u128 addr;
};

enum fqdn_state {
	FQDN_PENDING, /* not answered yet */
	FQDN_OK,
	FQDN_STALE,   /* failing; the last good addresses stay */
	FQDN_FAILING, /* failing, and never answered: nothing allowed */
};

struct fqdn_name {
	char *name;
	struct fqdn_addr *a; /* the last good answer, sorted */
	size_t n;
	enum fqdn_state state;
	unsigned ttl_s, eff_s; /* the last answer's TTL; clamped */
	uint64_t answered_at;  /* the last good answer */
	uint64_t next_at;      /* ask again then */
	uint64_t expires_at;   /* the programmed elements lapse then */
	uint64_t failing_since;
	bool asking;
	unsigned failures; /* in a row */
	char error[128];   /* the last failure */
	unsigned long asked, answered, changed, failed;
};

struct fqdn_cache {
	struct fqdn_name *v;
	size_t n, cap;
	unsigned min_ttl_s, max_ttl_s;
};

/* What an answer or a failure did. */
enum {
	FQDN_CHANGED = 1 << 0,	 /* the addresses differ */
	FQDN_RECOVERED = 1 << 1, /* answered after failures */
	FQDN_OUTAGE = 1 << 2,	 /* the first failure of a run */
	FQDN_PROGRAM = 1 << 3,	 /* addresses to (re)program */
};

void fqdn_init(struct fqdn_cache *c, unsigned min_ttl_s, unsigned max_ttl_s);
void fqdn_free(struct fqdn_cache *c);

/* The names p's edges reach, once each (case folded): names kept keep
 * their state, new ones are due at once, others are dropped. */
void fqdn_set_names(struct fqdn_cache *c, const struct policy *p);
long fqdn_find(const struct fqdn_cache *c, const char *name);

/* Whether name i should be asked about now, and that it is. */
bool fqdn_due(const struct fqdn_cache *c, size_t i, uint64_t now);
void fqdn_asking(struct fqdn_cache *c, size_t i);

/* Name i answered n addresses (duplicates and order do not matter; past
 * FQDN_MAX_ADDRS are dropped) with the smallest TTL of the answer's
 * records; n == 0 is a failure ("no address"). Returns FQDN_* flags. */
unsigned fqdn_answer(struct fqdn_cache *c, size_t i, uint64_t now,
		     const struct fqdn_addr *a, size_t n, unsigned ttl_s);
/* Name i could not be resolved (err says why). Returns FQDN_* flags. */
unsigned fqdn_failed(struct fqdn_cache *c, size_t i, uint64_t now,
		     const char *err);

/* The earliest time a name not being asked about is due: FQDN_NEVER
 * when none. */
uint64_t fqdn_next(const struct fqdn_cache *c);
/* Whether some name has neither answered nor failed yet. */
bool fqdn_first_round(const struct fqdn_cache *c);
/* The timeout name i's elements are programmed with. */
uint32_t fqdn_timeout_ms(const struct fqdn_name *f);

/* Every address held, for the compiler: names borrowed from c, a new
 * array (*out, the caller frees it) of the returned length. */
size_t fqdn_compile_list(const struct fqdn_cache *c, struct compile_fqdn **out);

#endif
