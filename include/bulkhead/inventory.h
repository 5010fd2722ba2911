/* The inventory: running containers, their names, labels, image, compose
 * service and project, and every network with its addresses. Filled from
 * `docker inspect` JSON (one container at a time, never the whole array as
 * one tree) or, by the daemon, from the live Docker API. */
#ifndef BULKHEAD_INVENTORY_H
#define BULKHEAD_INVENTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "bulkhead/diag.h"
#include "bulkhead/util.h"

struct inv_net {
	char *name;
	char *id;
	char *bridge; /* the bridge interface: br-<id:12>, docker0 */
	bool has4, has6;
	u128 ip4, ip6;
	int plen4, plen6;
	/* identity: the endpoint's MAC (MacAddress), and what the kernel
	 * says of it (ports_bind): the host side of its veth, the bridge
	 * port its frames enter by, and its IPv6 link-local address */
	bool has_mac, has_ll6;
	uint64_t mac;
	char *port; /* NULL: not bound */
	u128 ll6;
};

/* A port of a bridge that no container of the inventory is bound to
 * (ports_bind): on a managed bridge, everything from it is dropped. */
struct inv_bport {
	char *bridge, *port;
};

struct inv_label {
	char *key, *value;
};

/* A container port published on the host (NetworkSettings.Ports). */
struct inv_port {
	unsigned port, proto; /* the container's side; IPPROTO_TCP... */
	char *host_ip;	      /* "" for every address */
	unsigned host_port;
};

struct inv_container {
	char *id;
	char *name; /* without Docker's leading '/' */
	char *image;
	char *compose_service, *compose_project; /* NULL when not compose */
	struct inv_label *labels;
	size_t nlabels;
	struct inv_net *nets;
	size_t nnets;
	struct inv_port *ports;
	size_t nports;
	char *sandbox; /* NetworkSettings.SandboxKey: its network namespace */
};

/* The containers by id, kept by inventory.c's own changes (chains of
 * indices into c): a lookup does not grow with the containers. */
struct inv_ids {
	long *head, *next;
	size_t nb, capnext, count;
};

struct inventory {
	struct inv_container *c;
	size_t n, cap;
	struct inv_bport *bports;
	size_t nbports, capbports;
	struct inv_ids ids;
};

/* Forgets the unbound ports. */
void inventory_clear_bports(struct inventory *inv);

struct inventory *inventory_new(void);
void inventory_free(struct inventory *inv);

/* Reads a `docker inspect` array from path ("-" for stdin). Returns 0, or
 * -EINVAL with every problem in diags (FILE:LINE:COL), or -errno. */
int inventory_load(struct inventory *inv, const char *path, struct diags *d);
int inventory_load_fd(struct inventory *inv, int fd, const char *name,
		      struct diags *d);
int inventory_load_mem(struct inventory *inv, const char *buf, size_t len,
		       const char *name, struct diags *d);

/* Adds one container from its inspect object. Stopped containers and
 * containers with no address are skipped (returns 0). Errors name the
 * container and go to diags at file:line:col. */
int inventory_add_json(struct inventory *inv, json_t *obj, const char *file,
		       unsigned line, unsigned col, struct diags *d);

/* Removes container idx (the last one takes its place). */
void inventory_remove(struct inventory *inv, size_t idx);
/* The index of the container with this exact id, or -1. */
long inventory_index(const struct inventory *inv, const char *id);
/* Copies into c the networks of old that c does not list (by id): what
 * was known of a container before one more network joined. */
void inventory_merge_nets(struct inv_container *c,
			  const struct inv_container *old);
/* Moves container idx of src to the end of dst. */
void inventory_move(struct inventory *dst, struct inventory *src, size_t idx);

const struct inv_container *inventory_find(const struct inventory *inv,
					   const char *name_or_id);
const char *inv_label(const struct inv_container *c, const char *key);

#endif
