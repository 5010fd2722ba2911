/* The metrics endpoint: GET /metrics over HTTP, served by libmicrohttpd
 * from the daemon's own epoll loop (its epoll fd and a timerfd for its
 * timeouts are two fds of ours; nothing blocks). Only GET /metrics
 * answers (404 elsewhere, 405 for other methods); connections, their
 * memory and their idle time are capped, so a slow or hostile scraper
 * costs a bounded amount and never stalls the loop. */
#ifndef BULKHEAD_SCRAPE_H
#define BULKHEAD_SCRAPE_H

#include <stddef.h>

#include "bulkhead/util.h"

#define SCRAPE_CONNECTIONS 128u	 /* at once; more are refused */
#define SCRAPE_IDLE_S 10u	 /* an idle connection is closed */
#define SCRAPE_CONN_MEMORY 16384 /* a request's line and headers, at most */

/* Whether addr is one --metrics takes: IPV4:PORT, [IPV6]:PORT or
 * unix:PATH. 0, or -EINVAL with the reason in err. */
int scrape_addr_check(const char *addr, char *err, size_t errlen);

/* The exposition, appended to out, at each scrape. */
typedef void (*scrape_fn)(void *ctx, struct strbuf *out);

struct scrape;
/* Listens on addr (a unix socket: mode 0600, or 0660 and group's when
 * group is not NULL). NULL with a message in err. */
struct scrape *scrape_open(const char *addr, const char *group, scrape_fn fn,
			   void *ctx, char *err, size_t errlen);
void scrape_close(struct scrape *s);
/* The two fds to wait on (readable); either one: scrape_run. */
int scrape_fd(const struct scrape *s);
int scrape_timer_fd(const struct scrape *s);
/* Everything ready is done, without blocking; the timer is armed for
 * the next timeout. */
void scrape_run(struct scrape *s);
/* Scrapes answered (GET /metrics). */
unsigned long scrape_served(const struct scrape *s);

#endif
