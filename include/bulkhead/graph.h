/* The allowed-peer graph as Graphviz DOT: services (with their container
 * counts when an inventory is given), the world, the host, CIDR and FQDN
 * peers, allowed edges labelled with their ports, and denied pairs as
 * red dashed edges with counts. Pure. */
#ifndef BULKHEAD_GRAPH_H
#define BULKHEAD_GRAPH_H

#include "bulkhead/compile.h"

/* One denied pair: src and dst are a service's name, "world", "host", or
 * "container NAME" for one that matches no service. */
struct graph_denied {
	const char *src, *dst, *ports;
	unsigned long count;
};

/* cc and inv may be NULL (no container counts). */
void graph_dot(const struct policy *p, const struct compiler *cc,
	       const struct inventory *inv, const struct graph_denied *d,
	       size_t nd, struct strbuf *out);

#endif
