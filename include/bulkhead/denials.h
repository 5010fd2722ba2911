/* The query side of the flow log (`bulkhead flows`, and `denials`, its
 * denied part): filters, a readable line per record, counts per
 * (source, destination, port, verdict or reason), and the policy edges
 * that would allow what was denied. Pure: the caller reads the files and
 * gives records one at a time. */
#ifndef BULKHEAD_DENIALS_H
#define BULKHEAD_DENIALS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "bulkhead/policy.h"
#include "bulkhead/util.h"

/* Milliseconds since the epoch of an ISO 8601 UTC time
 * ("2026-11-22T16:01:02.123Z", fraction optional), or -1. */
int64_t denials_time_ms(const char *iso);

/* --since: "90s", "10m", "2h", "7d" before now_ms, or an ISO time.
 * 0, or -EINVAL. */
int denials_since(const char *arg, int64_t now_ms, int64_t *out_ms);

enum {
	FLOWS_ALLOWED = 1,
	FLOWS_DENIED = 2,
	FLOWS_WOULD_DENY = 4,
};

struct denials_filter {
	int64_t since_ms;		 /* 0: all */
	const char *service, *container; /* on either end */
	unsigned verdicts;		 /* FLOWS_*; 0: all */
};

/* --verdict's list ("allowed,denied"): the FLOWS_* bits, or 0 for a word
 * that is none of allowed, denied and would-deny. */
unsigned denials_verdicts(const char *list);

/* Whether rec is a flow record (not a summary) that passes f. */
bool denials_match(json_t *rec, const struct denials_filter *f);

/* A record as the owners of scopes may see it: false when neither end
 * is in one of them; else true, the other end (when a container) cut
 * to its service ({"service":"billing/api"}, or {"peer":"unmatched"})
 * and its port: no container, address or network of another team's. */
bool denials_scope(json_t *rec, char *const *scopes, size_t nscopes);

/* One readable line (no newline) for a flow record. */
void denials_format(json_t *rec, struct strbuf *out);
void denials_header(struct strbuf *out);

struct denials_summary;
struct denials_summary *denials_summary_new(void);
void denials_summary_free(struct denials_summary *s);
void denials_summary_add(struct denials_summary *s, json_t *rec);
/* Counts per (source, destination, port, reason), most first, with the
 * first and last time seen. With flows, per (source, destination, port,
 * verdict): connections (allowed: their openings; denied: the records)
 * and the bytes each way the allowed ones' close records counted. */
void denials_summary_print(const struct denials_summary *s, bool flows,
			   struct strbuf *out);
/* The edges that would allow exactly the counted flows, as YAML to paste
 * under `services:`; with p, the whole policy with them added instead
 * (p gains them). Flows no edge can allow (a container that matches no
 * service) are listed as comments. */
void denials_suggest(const struct denials_summary *s, struct policy *p,
		     struct strbuf *out);

/* The counted flows per pair of graph nodes (a service's name, "world",
 * "host", "container NAME"), with the ports seen and the total. */
typedef void (*denials_pair_fn)(void *ctx, const char *src, const char *dst,
				const char *ports, unsigned long count);
void denials_summary_pairs(const struct denials_summary *s, denials_pair_fn fn,
			   void *ctx);

#endif
