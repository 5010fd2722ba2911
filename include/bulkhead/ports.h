/* Identity: each endpoint bound to its bridge port, from what the kernel
 * says (rtnetlink, read only): the veth on the endpoint's bridge whose
 * peer lives in the container's network namespace (SandboxKey) and has
 * the endpoint's MAC. Never from the bridge's learned forwarding table,
 * which a container can poison. */
#ifndef BULKHEAD_PORTS_H
#define BULKHEAD_PORTS_H

#include <stdbool.h>
#include <stddef.h>

#include "bulkhead/diag.h"
#include "bulkhead/inventory.h"

struct ports;

/* A route netlink socket and a table of the bridges' ports (their peers
 * read once up: they do not change while the port lives). NULL, with a
 * message in err, on failure. */
struct ports *ports_new(char *err, size_t errlen);
void ports_free(struct ports *p);

/* Binds every endpoint of inv that the kernel shows (inv_net.port, .mac
 * when inspect left it out, .ll6) and lists the other ports of their
 * bridges in inv->bports. An endpoint that cannot be told apart (two
 * ports with its MAC and no namespace to choose by) stays unbound, with
 * a warning in d. Returns how many were bound, or a negative errno. */
int ports_bind(struct ports *p, struct inventory *inv, struct diags *d);

/* The same for one container, leaving inv->bports alone: from the ports
 * the watch keeps (a lookup by its namespace or MAC, not a dump of its
 * bridges), read anew only when no watch keeps them. With ask, the
 * peers of the ports Docker was still making are read first (a request
 * each); without, the table is taken as it is, with no request when the
 * watch keeps it. */
int ports_bind_container(struct ports *p, struct inv_container *c,
			 bool ask, struct diags *d);

/* Links as they change (RTMGRP_LINK): the table follows them, and a port
 * appearing or gone with no event of Docker's (a veth deleted after a
 * resync read it) is known: the fd to poll, or -1 with a message in err. */
int ports_watch(struct ports *p, char *err, size_t errlen);
/* A link that changed: master is the bridge it is a port of now, NULL
 * when it is no port (left its bridge, or gone). */
typedef void ports_link_cb(void *ctx, const char *ifname, const char *master);
/* Applies what the watch holds to the table and runs cb over it. 0, or
 * a negative errno: -ENOBUFS when changes were lost (everything is to
 * be read again; the next bind reads the table anew). */
int ports_watch_read(struct ports *p, ports_link_cb *cb, void *ctx);

#endif
