/* The control socket: its server (who may ask, one request a
 * connection), its client, and the protocol's schema. The status is one
 * typed struct the daemon fills; this module alone turns it into the
 * JSON the daemon answers, reads that JSON back, and writes the text
 * `bulkhead status` prints. */
#ifndef BULKHEAD_CONTROL_H
#define BULKHEAD_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

#define CONTROL_REQUEST_MAX 4096u

/* --- the status ---------------------------------------------------------
 * Strings are owned (control_status_free); a number that is absent is
 * -1. */

struct control_lat {
	long n; /* 0: nothing measured */
	double median_us, p99_us, own_median_us, own_p99_us;
};

struct control_addr {
	char *network, *ipv4, *ipv6;
};

struct control_container {
	char *name, *id;
	char *service; /* NULL: unplaced, and why says why */
	char *why;
	struct control_addr *addrs;
	size_t naddrs;
};

struct control_fqdn {
	char *name, *state;
	char **addrs;
	size_t naddrs;
	long ttl_s, kept_s, answered_s_ago; /* once answered */
	long next_ask_in_s;		    /* unless being asked */
	long expires_in_s;		    /* with addresses */
	char *error;			    /* when failing */
	long failures, failing_for_s;
	long asked, answered, changed, failed;
};

struct control_set {
	char *name;
	long n;
};

struct control_status {
	char *policy;
	char *view; /* NULL: everything; else "scope shop, billing" */
	bool audit, docker_up;
	char *docker_error; /* when down */
	char *api;
	char *last_sync; /* ISO 8601; NULL: never */
	long last_sync_age_s;
	long events, deltas, resyncs, errors;
	long revoked_flows, revocation_sweeps, flows_tracked;
	/* allowed flows on record: opened, closed, open now, suppressed */
	long allowed_opened, allowed_closed, allowed_open, allowed_suppressed;
	/* the flow log's lines: handed to it, on file, lost (a write
	 * failed, or the writer was too far behind); failing: why the last
	 * write failed, NULL when it did not */
	long log_lines, log_written, log_lost;
	char *log_failing;
	long ct_overruns; /* conntrack's events lost */
	double last_sweep_ms;
	char **warnings;
	size_t nwarnings;
	struct control_fqdn *fqdn;
	size_t nfqdn;
	long fqdn_refills; /* with fqdn peers */
	char *capabilities, *no_new_privs;
	long restores;
	char *last_restore_at, *last_restore_why;
	char *last_error;
	long rss_kb;
	char **services; /* every service of the policy */
	size_t nservices;
	struct control_container *containers;
	size_t ncontainers;
	char *kernel_error; /* NULL: the table was read */
	long kernel_sets, kernel_elements;
	struct control_set *sets; /* those with elements */
	size_t nsets;
	struct control_lat start, connect, bound;
	long placed_before_start;
	bool has_log;
	char *log;
	long records, suppressed, overruns, malformed, foreign;
};

void control_status_free(struct control_status *st);
/* What a scope's owners see: the services of those scopes and their
 * containers; nothing that names another team's (warnings, FQDNs, set
 * names, the last error). */
void control_status_limit(struct control_status *st, char *const *scopes,
			  size_t nscopes);

json_t *control_status_json(const struct control_status *st);
/* Reads a status answer back; -1 when it is not one. */
int control_status_parse(json_t *j, struct control_status *st);
/* The text `bulkhead status` prints. */
void control_status_print(const struct control_status *st, FILE *out);

/* Median and 99th percentile of n samples. */
void control_lat_fill(struct control_lat *l, const double *v, const double *own,
		      size_t n);
/* This process's capabilities and no_new_privs, and its resident size,
 * from /proc. */
void control_status_self(struct control_status *st);

/* --- the server -------------------------------------------------------- */

/* Listens on path (group, when not NULL, may use it too); refuses to
 * take the socket of a live daemon. The fd, or -1 with err. */
int control_listen(const char *path, const char *group, char *err,
		   size_t errlen);
/* The same for another unix socket of ours (what names it in errors). */
int control_listen_unix(const char *what, const char *path, const char *group,
			char *err, size_t errlen);

#define CONTROL_PEER_GROUPS 64

/* Who asks, from SO_PEERCRED and the group database. full: root, our
 * own user or a member of the control group, who see and do all; the
 * others were let in as members of a scope's owners (groups). */
struct control_peer {
	int pid;
	unsigned uid, gid;
	bool full;
	unsigned groups[CONTROL_PEER_GROUPS];
	int ngroups;
};
bool control_peer_in(const struct control_peer *p, unsigned gid);

struct control_client;
/* Accepts one connection. One that may not ask (neither root, our own
 * user, in group, nor in one of the nscoped groups scoped) is told so
 * and closed: NULL, with refused saying who it was; NULL with refused
 * empty when nothing was accepted. */
struct control_client *control_accept(int lfd, const char *group,
				      const unsigned *scoped, size_t nscoped,
				      char *refused, size_t len);
int control_client_fd(const struct control_client *c);
typedef json_t *(*control_answer_fn)(void *ctx, const struct control_peer *peer,
				     json_t *req);
/* Reads what is there. Returns 0 while the request line is not whole;
 * 1 once it was answered (by answer), or the client went away: the
 * caller then frees it. */
int control_client_read(struct control_client *c, control_answer_fn answer,
			void *ctx);
void control_client_free(struct control_client *c);

/* --- the client -------------------------------------------------------- */

/* Sends one JSON request and returns the daemon's JSON reply in *reply
 * (the caller frees it). 0 or a negative errno, with a message in err. */
int control_request(const char *path, const char *request, char **reply,
		    char *err, size_t errlen);

#endif
