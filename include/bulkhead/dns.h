/* Asks DNS for names' A and AAAA records, with their TTLs, without
 * blocking: c-ares, its sockets behind one epoll fd of the module's own
 * that the caller's loop watches. Besides kernel, docker and flowlog,
 * the one module that talks to the outside world. */
#ifndef BULKHEAD_DNS_H
#define BULKHEAD_DNS_H

#include <stddef.h>

#include "bulkhead/fqdn.h"

struct dns;

/* An answer: n addresses and the smallest TTL of the records that led
 * to them (CNAMEs included); or err, and n == 0. */
typedef void (*dns_cb)(void *ctx, const char *name, const struct fqdn_addr *a,
		       size_t n, unsigned ttl_s, const char *err);

/* servers: "ADDR[:PORT],..." ([ADDR]:PORT for IPv6), or NULL for the
 * system's (/etc/resolv.conf). Names are asked as given (no search
 * domains): they are fully qualified. NULL, with a message in err, on
 * failure. */
struct dns *dns_new(const char *servers, char *err, size_t errlen);
void dns_free(struct dns *d); /* pending questions are dropped unanswered */

/* Readable when dns_process has answers to read. */
int dns_fd(const struct dns *d);
/* Reads answers and handles timeouts; callbacks run from here (or from
 * dns_ask, when the answer is at hand, e.g. from /etc/hosts). */
void dns_process(struct dns *d);
/* Milliseconds until dns_process must run for a timeout; -1 when no
 * question is pending. */
int dns_timeout_ms(const struct dns *d);

void dns_ask(struct dns *d, const char *name, dns_cb cb, void *ctx);
/* Blocks until every question asked has its answer (one-shot commands). */
void dns_wait(struct dns *d);

#endif
