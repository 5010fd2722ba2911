/* The Docker Engine API over its unix socket, through libcurl's multi
 * interface: asynchronous GETs with timeouts, the /events stream split
 * into events, and a snapshot of every running container as an
 * inventory. Never blocks: the caller's loop polls docker_fd(). */
#ifndef BULKHEAD_DOCKER_H
#define BULKHEAD_DOCKER_H

#include <stdbool.h>
#include <stddef.h>

#include "bulkhead/inventory.h"

#define DOCKER_SOCK "/var/run/docker.sock"
#define DOCKER_ID_MAX 64
#define DOCKER_LINE_MAX (1u << 20)

struct docker;

/* The socket to use: path when given, else DOCKER_HOST (unix:// only),
 * else DOCKER_SOCK. NULL, with a message in err, for a DOCKER_HOST that
 * is not a unix socket. The result is static or borrowed. */
const char *docker_sock_path(const char *path, char *err, size_t errlen);

struct docker *docker_new(const char *sock, char *err, size_t errlen);
void docker_free(struct docker *d);

/* Readable when docker_dispatch has work to do. */
int docker_fd(const struct docker *d);
/* Drives every transfer; callbacks run from here. */
void docker_dispatch(struct docker *d);
/* Ends every transfer without calling back. */
void docker_cancel_all(struct docker *d);
/* Transfers under way, streams included. */
size_t docker_pending(const struct docker *d);

/* status is the HTTP status, or 0 when the request failed (err says
 * why). body is NUL-terminated and borrowed for the call. */
typedef void (*docker_reply_fn)(void *ctx, long status, const char *body,
				size_t len, const char *err);
typedef void (*docker_line_fn)(void *ctx, const char *line, size_t len);

/* GET path (below the negotiated /vX.Y prefix), with a timeout. */
int docker_get(struct docker *d, const char *path, docker_reply_fn cb,
	       void *ctx);

/* Asks /version and from then on uses the API version the daemon speaks,
 * capped at the newest this client knows. cb gets the /version reply. */
int docker_negotiate(struct docker *d, docker_reply_fn cb, void *ctx);
const char *docker_api_version(const struct docker *d);

/* The /events stream of container and network events: each event (one
 * JSON line) to on_line, then on_end when the stream ends for any
 * reason. */
int docker_events(struct docker *d, docker_line_fn on_line,
		  docker_reply_fn on_end, void *ctx);

/* Every running container (/containers/json, then each one's inspect
 * object) and the networks' bridge names (/networks), as a new
 * inventory; cb owns it. inv is NULL on failure, err says why. */
typedef void (*docker_snapshot_fn)(void *ctx, struct inventory *inv,
				   const char *err);
int docker_snapshot(struct docker *d, docker_snapshot_fn cb, void *ctx);

/* The same, for a command line: connects, negotiates and waits (every
 * request has its timeout). 0, or a negative errno with err saying
 * why. */
int docker_snapshot_wait(const char *sock, struct inventory **out, char *err,
			 size_t errlen);

/* The inspect object of one container (body of /containers/ID/json) as
 * an inventory of zero (stopped, no address) or one container, bridge
 * names as the last /networks said. Returns 0 or -EINVAL (err says
 * why). */
int docker_parse_inspect(struct docker *d, const char *body, size_t len,
			 struct inventory *inv, char *err, size_t errlen);

/* A container as it joins a network: Docker sends the network connect
 * event while it starts a container, before its process runs and before
 * inspect would answer (it waits for the start to finish). The list
 * entry (body of /containers/json?all=1 filtered to the id) gives the
 * name, image and labels; the network object (/networks/NET) gives the
 * address the container holds there. Adds the container with that one
 * network to inv, or nothing when it is neither created nor running or
 * holds no address there. Returns 0, or -EINVAL with err. */
int docker_parse_connect(struct docker *d, const char *list, size_t list_len,
			 const char *net, size_t net_len, const char *id,
			 struct inventory *inv, char *err, size_t errlen);
/* The same with the list parsed already (NULL: it did not parse): one
 * list answer for many connects, each finding its entry by id. */
struct json_t;
int docker_parse_connect_in(struct docker *d, struct json_t *list,
			    const char *net, size_t net_len, const char *id,
			    struct inventory *inv, char *err, size_t errlen);

/* Records a network's bridge name from its /networks/ID object (after a
 * network is created). */
void docker_learn_network(struct docker *d, const char *body, size_t len);

/* --- pure parts, for tests and fuzzing ------------------------------- */

enum docker_ev_kind {
	DEV_OTHER,	 /* not something that moves a container */
	DEV_START,	 /* a container started */
	DEV_STOP,	 /* died, was killed, stopped or destroyed */
	DEV_CONNECT,	 /* joined a network (before a start, too) */
	DEV_UPDATE,	 /* disconnected or renamed */
	DEV_NETWORK_NEW, /* a network was created */
};

struct docker_event {
	enum docker_ev_kind kind;
	char id[DOCKER_ID_MAX + 1];  /* the container's (network's: NEW) */
	char net[DOCKER_ID_MAX + 1]; /* CONNECT: the network's */
};

/* Parses one event line. Returns 0, or -EINVAL for anything that is not
 * an event of the expected shape (ids must be hex). */
int docker_event_parse(const char *line, size_t len, struct docker_event *ev);

/* Splits a byte stream into lines. Lines longer than DOCKER_LINE_MAX
 * are an error (-E2BIG): the stream is broken. */
struct docker_lines {
	char *buf;
	size_t len, cap;
};
int docker_lines_feed(struct docker_lines *l, const char *data, size_t len,
		      docker_line_fn cb, void *ctx);
void docker_lines_free(struct docker_lines *l);

#endif
