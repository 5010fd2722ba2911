/* The host's own addresses, kept by route netlink's address events: a
 * flow to one of them is judged at the input hook. One read of the
 * addresses at the start (and after events were lost), then each
 * address as it comes and goes; a lookup is a binary search. A host
 * with 1,000 containers holds a link-local address per container's
 * veth, and reading them all (getifaddrs) took milliseconds per
 * revocation. An IPv6 address is the host's once duplicate address
 * detection is done (the kernel tells of it then; until then nothing
 * reaches it). */
#ifndef BULKHEAD_HOSTADDR_H
#define BULKHEAD_HOSTADDR_H

#include <stddef.h>

#include "bulkhead/revoke.h"

struct hostaddrs;

/* Subscribed, then read: nothing falls in between. NULL with err. */
struct hostaddrs *hostaddrs_open(char *err, size_t errlen);
void hostaddrs_free(struct hostaddrs *h);
int hostaddrs_fd(const struct hostaddrs *h);
/* The events read (until the socket is empty); lost ones: read anew.
 * 0, or -errno. */
int hostaddrs_read(struct hostaddrs *h);
/* The addresses, sorted as revoke_addr_has wants them. */
const struct revoke_addr *hostaddrs_get(const struct hostaddrs *h, size_t *n);

#endif
