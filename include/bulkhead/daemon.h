/* The daemon: one epoll loop that follows Docker, keeps the kernel on the
 * policy (through sync: a delta per container event, a full resync after
 * any gap) and answers the control socket (control). Its state is one
 * struct, passed around; it never flushes our table and never touches
 * anyone else's. */
#ifndef BULKHEAD_DAEMON_H
#define BULKHEAD_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#define DAEMON_CONTROL "/run/bulkhead.sock"
#define DAEMON_RESYNC_S 300

struct daemon_opts {
	const char *policy;
	const char *docker;	   /* socket path */
	const char *control;	   /* control socket path */
	const char *control_group; /* may also use it; NULL: owner only */
	const char *user;	   /* run on as this user; NULL: stay */
	const char *log;	   /* denied-flow records (JSON lines) */
	size_t log_max;		   /* rotate past this many bytes */
	bool audit;
	unsigned resync_s;
	const char *dns; /* servers, "ADDR[:PORT],..."; NULL: the system's */
	unsigned dns_min_ttl, dns_max_ttl;
	const char *metrics; /* serve GET /metrics here; NULL: not at all */
	const char *version; /* as bulkhead_build_info says it */
};

#define DAEMON_LOG_MAX (64u << 20)

/* Runs until SIGTERM or SIGINT (0; rules stay in place). Returns 2 when
 * the policy does not load at start, 1 on a runtime failure. */
int daemon_run(const struct daemon_opts *o);

#endif
