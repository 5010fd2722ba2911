/* The host's own addresses, kept by route netlink's address events
 * (include/bulkhead/hostaddr.h). */
#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>

#include "bulkhead/hostaddr.h"

struct hostaddrs {
	struct mnl_socket *nl;	/* subscribed to the address groups */
	struct mnl_socket *ask; /* for the reads of every address */
	/* each address on each interface, sorted by address (as
	 * revoke_addr_has wants them), then interface */
	struct revoke_addr *v;
	unsigned *ifindex;
	size_t n, cap, capif;
	char *buf;
};

#define BUF ((size_t)MNL_SOCKET_BUFFER_SIZE * 4)

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, IFA_MAX) >= 0)
		tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int cmp_at(const struct hostaddrs *h, size_t i,
		  const struct revoke_addr *a, unsigned ifindex)
{
	int c = revoke_addr_cmp(&h->v[i], a);

	if (c)
		return c;
	return (h->ifindex[i] > ifindex) - (h->ifindex[i] < ifindex);
}

/* Where a on ifindex is in the list, or goes. */
static size_t place(const struct hostaddrs *h, const struct revoke_addr *a,
		    unsigned ifindex)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_at(h, mid, a, ifindex) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* One address message: the address added on its interface, or taken
 * away (an address on two interfaces is the host's until both have let
 * it go); a message about one held (its flags, its lifetimes) changes
 * nothing. */
static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct hostaddrs *h = data;
	const struct nlattr *tb[IFA_MAX + 1] = {0};
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *at;
	struct revoke_addr a = {0};
	bool found;
	size_t i, len = ifa->ifa_family == AF_INET ? 4 : 16;

	if ((nlh->nlmsg_type != RTM_NEWADDR &&
	     nlh->nlmsg_type != RTM_DELADDR) ||
	    (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) ||
	    mnl_attr_parse(nlh, sizeof(*ifa), attr_cb, tb) != MNL_CB_OK)
		return MNL_CB_OK;
	/* as getifaddrs takes it: IPv4's local end of a point-to-point
	 * link where it has one */
	at = ifa->ifa_family == AF_INET && tb[IFA_LOCAL] ? tb[IFA_LOCAL]
							 : tb[IFA_ADDRESS];
	if (!at || mnl_attr_get_payload_len(at) != len)
		return MNL_CB_OK;
	a.family = ifa->ifa_family;
	a.addr = be_read(mnl_attr_get_payload(at), len);
	i = place(h, &a, ifa->ifa_index);
	found = i < h->n && !cmp_at(h, i, &a, ifa->ifa_index);
	if (nlh->nlmsg_type == RTM_DELADDR) {
		if (found) {
			memmove(&h->v[i], &h->v[i + 1],
				(h->n - i - 1) * sizeof(*h->v));
			memmove(&h->ifindex[i], &h->ifindex[i + 1],
				(h->n - i - 1) * sizeof(*h->ifindex));
			h->n--;
		}
		return MNL_CB_OK;
	}
	if (found)
		return MNL_CB_OK;
	grow(&h->v, &h->cap, h->n + 1, sizeof(*h->v));
	grow(&h->ifindex, &h->capif, h->n + 1, sizeof(*h->ifindex));
	memmove(&h->v[i + 1], &h->v[i], (h->n - i) * sizeof(*h->v));
	memmove(&h->ifindex[i + 1], &h->ifindex[i],
		(h->n - i) * sizeof(*h->ifindex));
	h->v[i] = a;
	h->ifindex[i] = ifa->ifa_index;
	h->n++;
	return MNL_CB_OK;
}

/* Every address, read anew. */
static int read_all(struct hostaddrs *h)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct rtgenmsg *g;
	unsigned seq = (unsigned)time(NULL), port;
	ssize_t n;
	int r;

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->rtgen_family = AF_UNSPEC;
	h->n = 0;
	if (mnl_socket_sendto(h->ask, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	port = mnl_socket_get_portid(h->ask);
	for (;;) {
		n = mnl_socket_recvfrom(h->ask, h->buf, BUF);
		if (n < 0)
			return -errno;
		r = mnl_cb_run(h->buf, (size_t)n, seq, port, msg_cb, h);
		if (r < 0)
			return -errno;
		if (r == MNL_CB_STOP)
			return 0;
	}
}

struct hostaddrs *hostaddrs_open(char *err, size_t errlen)
{
	struct hostaddrs *h = xcalloc(1, sizeof(*h));
	int r;

	h->buf = xmalloc(BUF);
	h->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	h->ask = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!h->nl || !h->ask ||
	    mnl_socket_bind(h->nl, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, 0) <
		0 ||
	    mnl_socket_bind(h->ask, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "route netlink address events: %s",
			 strerror(errno));
		hostaddrs_free(h);
		return NULL;
	}
	/* a burst of starts is an address (a veth's link-local) each */
	rcvbuf_grow(mnl_socket_get_fd(h->nl), 1 << 20);
	if ((r = read_all(h)) < 0) {
		snprintf(err, errlen, "reading the host's addresses: %s",
			 strerror(-r));
		hostaddrs_free(h);
		return NULL;
	}
	return h;
}

void hostaddrs_free(struct hostaddrs *h)
{
	if (!h)
		return;
	if (h->nl)
		mnl_socket_close(h->nl);
	if (h->ask)
		mnl_socket_close(h->ask);
	free(h->v);
	free(h->ifindex);
	free(h->buf);
	free(h);
}

int hostaddrs_fd(const struct hostaddrs *h)
{
	return mnl_socket_get_fd(h->nl);
}

int hostaddrs_read(struct hostaddrs *h)
{
	bool lost = false;
	ssize_t n;

	for (;;) {
		n = recv(mnl_socket_get_fd(h->nl), h->buf, BUF, MSG_DONTWAIT);
		if (n < 0 && errno == ENOBUFS) {
			lost = true;
			continue;
		}
		if (n < 0)
			break;
		if (mnl_cb_run(h->buf, (size_t)n, 0, 0, msg_cb, h) < 0)
			return -errno;
	}
	if (errno != EAGAIN && errno != EINTR)
		return -errno;
	return lost ? read_all(h) : 0;
}

const struct revoke_addr *hostaddrs_get(const struct hostaddrs *h, size_t *n)
{
	*n = h->n;
	return h->v;
}
