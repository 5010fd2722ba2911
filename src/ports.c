/* Each endpoint bound to its bridge port, as the kernel shows it: the
 * ports enslaved to a bridge (RTM_GETLINK), each veth's peer read in the
 * peer's own namespace by its nsid (IFLA_TARGET_NETNSID), that nsid
 * matched against the container's SandboxKey (RTM_GETNSID). Route
 * netlink, read only; never the bridge's forwarding table. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "bulkhead/ports.h"

#ifndef IFLA_TARGET_NETNSID
#define IFLA_TARGET_NETNSID 46
#endif
#ifndef IFA_TARGET_NETNSID
#define IFA_TARGET_NETNSID 10
#endif

/* A bridge port, and its peer when it is a veth into another namespace. */
struct port {
	char name[IF_NAMESIZE];
	int ifindex, peer, nsid; /* nsid -1: peer in our namespace */
	bool peer_known, has_ll6;
	bool up;      /* the peer is up: Docker has given it its MAC */
	uint64_t mac; /* the peer's */
	u128 ll6;     /* the peer's link-local address */
	bool used;
};

struct ports {
	struct mnl_socket *nl;
	struct mnl_socket *watch; /* RTMGRP_LINK, once ports_watch opened it */
	uint32_t portid, seq;
	char *buf;
	/* what the peers' reads gave, by port: a port's peer never moves */
	struct port *cache;
	size_t ncache, capcache;
};

struct ports *ports_new(char *err, size_t errlen)
{
	struct ports *p = xcalloc(1, sizeof(*p));
	int one = 1;

	p->nl = mnl_socket_open(NETLINK_ROUTE);
	if (!p->nl || mnl_socket_bind(p->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "route netlink socket: %s",
			 strerror(errno));
		ports_free(p);
		return NULL;
	}
	/* strict dumps: the kernel honours IFA_TARGET_NETNSID and the
	 * index filter of an address dump only then */
	setsockopt(mnl_socket_get_fd(p->nl), SOL_NETLINK,
		   NETLINK_GET_STRICT_CHK, &one, sizeof(one));
	p->portid = mnl_socket_get_portid(p->nl);
	p->seq = (uint32_t)time(NULL);
	p->buf = xmalloc(MNL_SOCKET_BUFFER_SIZE * 4);
	return p;
}

void ports_free(struct ports *p)
{
	if (!p)
		return;
	if (p->nl)
		mnl_socket_close(p->nl);
	if (p->watch)
		mnl_socket_close(p->watch);
	free(p->buf);
	free(p->cache);
	free(p);
}

/* What is left of an answer cut short (an error, a dump interrupted by
 * a change): read and dropped, so that the next request reads its own. */
static void drain(struct ports *p)
{
	while (recv(mnl_socket_get_fd(p->nl), p->buf,
		    MNL_SOCKET_BUFFER_SIZE * 4, MSG_DONTWAIT) > 0)
		;
}

/* Sends nlh and runs cb over the answers until the dump or ack ends.
 * -EINTR: a dump the kernel interrupted (links changed meanwhile). */
static int request(struct ports *p, struct nlmsghdr *nlh, mnl_cb_t cb,
		   void *data)
{
	ssize_t n;
	int r, err;

	nlh->nlmsg_seq = ++p->seq;
	if (mnl_socket_sendto(p->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(p->nl, p->buf,
					MNL_SOCKET_BUFFER_SIZE * 4);
		if (n < 0) {
			err = errno;
			drain(p);
			return -err;
		}
		r = mnl_cb_run(p->buf, (size_t)n, p->seq, p->portid, cb, data);
	} while (r > MNL_CB_STOP);
	if (r < 0) {
		err = errno;
		drain(p);
		return -err;
	}
	return 0;
}

/* --- the ports of a bridge -------------------------------------------------
 */

struct link_dump {
	int master;
	struct port *v;
	size_t n, cap;
};

static int link_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int t = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, IFLA_MAX) >= 0)
		tb[t] = a;
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFLA_MAX + 1] = {0};
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct link_dump *d = data;
	struct port *pt;

	if (mnl_attr_parse(nlh, sizeof(*ifi), link_attr, tb) != MNL_CB_OK ||
	    !tb[IFLA_IFNAME] || !tb[IFLA_MASTER] ||
	    mnl_attr_validate(tb[IFLA_MASTER], MNL_TYPE_U32) < 0 ||
	    (int)mnl_attr_get_u32(tb[IFLA_MASTER]) != d->master)
		return MNL_CB_OK;
	pt = PUSH(d->v, d->n, d->cap);
	memset(pt, 0, sizeof(*pt));
	snprintf(pt->name, sizeof(pt->name), "%s",
		 mnl_attr_get_str(tb[IFLA_IFNAME]));
	pt->ifindex = ifi->ifi_index;
	pt->nsid = -1;
	if (tb[IFLA_LINK] &&
	    mnl_attr_validate(tb[IFLA_LINK], MNL_TYPE_U32) >= 0)
		pt->peer = (int)mnl_attr_get_u32(tb[IFLA_LINK]);
	if (tb[IFLA_LINK_NETNSID] &&
	    mnl_attr_validate(tb[IFLA_LINK_NETNSID], MNL_TYPE_U32) >= 0)
		pt->nsid = (int)mnl_attr_get_u32(tb[IFLA_LINK_NETNSID]);
	return MNL_CB_OK;
}

/* The ports enslaved to bridge br (the kernel filters by master; so do
 * we, for kernels that do not). */
static int bridge_ports(struct ports *p, const char *br, struct link_dump *d)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct ifinfomsg *ifi;
	int tries, r = 0;

	d->master = (int)if_nametoindex(br);
	if (!d->master)
		return 0; /* no such bridge here: nothing to bind */
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)d->master);
	/* containers come and go as we read: an interrupted dump is read
	 * again, from the start */
	for (tries = 0; tries < 5; tries++) {
		d->n = 0;
		r = request(p, nlh, link_cb, d);
		if (r != -EINTR)
			break;
	}
	return r;
}

/* --- a peer, read in its own namespace ------------------------------------ */

static int peer_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFLA_MAX + 1] = {0};
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct port *pt = data;

	if (nlh->nlmsg_type != RTM_NEWLINK ||
	    mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_attr, tb) !=
		MNL_CB_OK ||
	    !tb[IFLA_ADDRESS] ||
	    mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) != 6)
		return MNL_CB_OK;
	pt->mac = (uint64_t)be_read(mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
	pt->peer_known = true;
	pt->up = ifi->ifi_flags & IFF_UP;
	return MNL_CB_OK;
}

static int addr_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_type_valid(a, IFA_MAX) >= 0)
		tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFA_MAX + 1] = {0};
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct port *pt = data;

	if (nlh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET6 ||
	    (int)ifa->ifa_index != pt->peer ||
	    ifa->ifa_scope != RT_SCOPE_LINK ||
	    mnl_attr_parse(nlh, sizeof(*ifa), addr_attr, tb) != MNL_CB_OK ||
	    !tb[IFA_ADDRESS] || mnl_attr_get_payload_len(tb[IFA_ADDRESS]) != 16)
		return MNL_CB_OK;
	pt->ll6 = be_read(mnl_attr_get_payload(tb[IFA_ADDRESS]), 16);
	pt->has_ll6 = true;
	return MNL_CB_OK;
}

/* The peer's MAC and link-local address, from the cache or the kernel. */
static void read_peer(struct ports *p, struct port *pt)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct ifaddrmsg *ifa;
	size_t i;

	if (pt->nsid < 0 || !pt->peer)
		return; /* not a veth into a container */
	for (i = 0; i < p->ncache; i++)
		if (p->cache[i].ifindex == pt->ifindex &&
		    p->cache[i].nsid == pt->nsid &&
		    p->cache[i].peer == pt->peer &&
		    !strcmp(p->cache[i].name, pt->name)) {
			*pt = p->cache[i];
			return;
		}
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = pt->peer;
	mnl_attr_put_u32(nlh, IFLA_TARGET_NETNSID, (uint32_t)pt->nsid);
	if (request(p, nlh, peer_cb, pt) || !pt->peer_known)
		return;
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET6;
	ifa->ifa_index = (uint32_t)pt->peer;
	mnl_attr_put_u32(nlh, IFA_TARGET_NETNSID, (uint32_t)pt->nsid);
	request(p, nlh, addr_cb, pt);
	/* an address not yet configured: the one the kernel will derive */
	if (!pt->has_ll6) {
		pt->ll6 = mac_link_local(pt->mac);
		pt->has_ll6 = true;
	}
	/* Docker moves the peer into the container's namespace, then sets
	 * its MAC and addresses, then brings it up: only then is what we
	 * read the endpoint's for good */
	if (pt->up)
		*PUSH(p->cache, p->ncache, p->capcache) = *pt;
}

/* --- the container's namespace ---------------------------------------------
 */

static int nsid_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a;

	if (nlh->nlmsg_type != RTM_NEWNSID)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(struct rtgenmsg))
	{
		if (mnl_attr_get_type(a) == NETNSA_NSID &&
		    mnl_attr_validate(a, MNL_TYPE_U32) >= 0)
			*(int *)data = (int)mnl_attr_get_u32(a);
	}
	return MNL_CB_OK;
}

/* The nsid our namespace knows the namespace at path by; -1 when it
 * cannot be opened or has none (no veth of ours leads there). */
static int sandbox_nsid(struct ports *p, const char *path)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct rtgenmsg *g;
	int fd, nsid = -1;

	if (!path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_GETNSID;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = mnl_nlmsg_put_extra_header(nlh, NLMSG_ALIGN(sizeof(*g)));
	g->rtgen_family = AF_UNSPEC;
	mnl_attr_put_u32(nlh, NETNSA_FD, (uint32_t)fd);
	if (request(p, nlh, nsid_cb, &nsid))
		nsid = -1;
	close(fd);
	return nsid;
}

/* --- binding ----------------------------------------------------------------
 */

/* Binds net (of container c, whose namespace is nsid or -1 unknown)
 * among the ports of its bridge. */
static bool bind_net(struct inv_container *c, struct inv_net *n, int nsid,
		     struct port *v, size_t nv, struct diags *d)
{
	struct port *hit = NULL;
	size_t i, nhit = 0;
	char mac[24];

	for (i = 0; i < nv; i++) {
		/* a peer not up yet may not have its MAC yet either */
		if (!v[i].peer_known || !v[i].up)
			continue;
		if (nsid >= 0 && v[i].nsid != nsid)
			continue;
		if (n->has_mac && v[i].mac != n->mac)
			continue;
		if (nsid < 0 && !n->has_mac)
			continue; /* nothing to tell it by */
		hit = &v[i];
		nhit++;
	}
	if (nhit != 1) {
		if (nhit > 1) {
			mac_format(n->mac, mac, sizeof(mac));
			diags_add(d, DIAG_WARNING, c->name, 0, 0,
				  "network '%s': %zu ports of %s lead to "
				  "MAC %s; none is bound (its frames are "
				  "dropped)",
				  n->name, nhit, n->bridge, mac);
		}
		return false;
	}
	free(n->port);
	n->port = xstrdup(hit->name);
	n->mac = hit->mac;
	n->has_mac = true;
	n->ll6 = hit->ll6;
	n->has_ll6 = hit->has_ll6;
	hit->used = true;
	return true;
}

/* Binds the nets of c on bridge br, whose ports are v. */
static int bind_container(struct ports *p, struct inv_container *c,
			  const char *br, struct port *v, size_t nv,
			  struct diags *d)
{
	int nsid = -2, bound = 0;
	size_t j;

	for (j = 0; j < c->nnets; j++) {
		if (strcmp(c->nets[j].bridge, br))
			continue;
		if (nsid == -2)
			nsid = sandbox_nsid(p, c->sandbox);
		bound += bind_net(c, &c->nets[j], nsid, v, nv, d);
	}
	return bound;
}

static int bridge_read(struct ports *p, const char *br, struct link_dump *ld)
{
	size_t i;
	int r;

	memset(ld, 0, sizeof(*ld));
	r = bridge_ports(p, br, ld);
	for (i = 0; !r && i < ld->n; i++)
		read_peer(p, &ld->v[i]);
	return r;
}

int ports_bind(struct ports *p, struct inventory *inv, struct diags *d)
{
	char **done = NULL;
	size_t ndone = 0, capdone = 0, i, j, k;
	int bound = 0, r = 0;

	inventory_clear_bports(inv);
	for (i = 0; i < inv->n && !r; i++)
		for (j = 0; j < inv->c[i].nnets && !r; j++) {
			const char *br = inv->c[i].nets[j].bridge;
			struct link_dump ld;

			for (k = 0; k < ndone && strcmp(done[k], br); k++)
				;
			if (k < ndone)
				continue;
			*PUSH(done, ndone, capdone) = xstrdup(br);
			r = bridge_read(p, br, &ld);
			for (k = 0; !r && k < inv->n; k++)
				bound += bind_container(p, &inv->c[k], br, ld.v,
							ld.n, d);
			for (k = 0; !r && k < ld.n; k++)
				if (!ld.v[k].used) {
					struct inv_bport *b =
					    PUSH(inv->bports, inv->nbports,
						 inv->capbports);

					b->bridge = xstrdup(br);
					b->port = xstrdup(ld.v[k].name);
				}
			free(ld.v);
		}
	for (k = 0; k < ndone; k++)
		free(done[k]);
	free(done);
	return r ? r : bound;
}

bool ports_is_bound(const struct inventory *inv, const char *port)
{
	size_t i, j;

	for (i = 0; i < inv->n; i++)
		for (j = 0; j < inv->c[i].nnets; j++)
			if (inv->c[i].nets[j].port &&
			    !strcmp(inv->c[i].nets[j].port, port))
				return true;
	return false;
}

int ports_refresh_unbound(struct ports *p, struct inventory *inv,
			  const char *br)
{
	struct link_dump ld = {0};
	struct smap bound = {0};
	size_t i, k = 0;
	int r = bridge_ports(p, br, &ld);

	if (r) {
		free(ld.v);
		return r;
	}
	for (i = 0; i < inv->nbports; i++) {
		if (!strcmp(inv->bports[i].bridge, br)) {
			free(inv->bports[i].bridge);
			free(inv->bports[i].port);
			continue;
		}
		inv->bports[k++] = inv->bports[i];
	}
	inv->nbports = k;
	/* the ports bound, once: not the inventory scanned for each port */
	for (i = 0; i < inv->n; i++)
		for (k = 0; k < inv->c[i].nnets; k++)
			if (inv->c[i].nets[k].port)
				smap_put(&bound, inv->c[i].nets[k].port, "");
	for (i = 0; i < ld.n; i++) {
		struct inv_bport *b;

		if (smap_get(&bound, ld.v[i].name))
			continue;
		b = PUSH(inv->bports, inv->nbports, inv->capbports);
		b->bridge = xstrdup(br);
		b->port = xstrdup(ld.v[i].name);
	}
	smap_free(&bound);
	free(ld.v);
	return 0;
}

int ports_bind_container(struct ports *p, struct inv_container *c,
			 struct diags *d)
{
	size_t j, k;
	int bound = 0, r = 0;

	for (j = 0; j < c->nnets && !r; j++) {
		struct link_dump ld;

		for (k = 0;
		     k < j && strcmp(c->nets[k].bridge, c->nets[j].bridge); k++)
			;
		if (k < j)
			continue; /* that bridge was read already */
		r = bridge_read(p, c->nets[j].bridge, &ld);
		if (!r)
			bound += bind_container(p, c, c->nets[j].bridge, ld.v,
						ld.n, d);
		free(ld.v);
	}
	return r ? r : bound;
}

/* --- links as they change ------------------------------------------------ */

int ports_watch(struct ports *p, char *err, size_t errlen)
{
	int fd;

	p->watch =
	    mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!p->watch || mnl_socket_bind(p->watch, RTMGRP_LINK, 0) < 0) {
		snprintf(err, errlen, "route netlink link events: %s",
			 strerror(errno));
		if (p->watch)
			mnl_socket_close(p->watch);
		p->watch = NULL;
		return -1;
	}
	fd = mnl_socket_get_fd(p->watch);
	/* a burst of starts is a few messages per container */
	rcvbuf_grow(fd, 4 << 20);
	return fd;
}

struct watch_ctx {
	ports_link_cb *cb;
	void *ctx;
};

static int watch_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFLA_MAX + 1] = {0};
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct watch_ctx *w = data;
	char master[IF_NAMESIZE], name[IF_NAMESIZE];
	const char *m = NULL;

	/* the link's own messages only: the bridge's (AF_BRIDGE) speak of
	 * its VLANs and port state as well */
	if ((nlh->nlmsg_type != RTM_NEWLINK &&
	     nlh->nlmsg_type != RTM_DELLINK) ||
	    ifi->ifi_family == AF_BRIDGE ||
	    mnl_attr_parse(nlh, sizeof(*ifi), link_attr, tb) != MNL_CB_OK ||
	    !tb[IFLA_IFNAME] ||
	    mnl_attr_validate(tb[IFLA_IFNAME], MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_OK;
	snprintf(name, sizeof(name), "%s", mnl_attr_get_str(tb[IFLA_IFNAME]));
	/* a link going away may name its last master still */
	if (nlh->nlmsg_type == RTM_NEWLINK && tb[IFLA_MASTER] &&
	    mnl_attr_validate(tb[IFLA_MASTER], MNL_TYPE_U32) >= 0 &&
	    if_indextoname(mnl_attr_get_u32(tb[IFLA_MASTER]), master))
		m = master;
	w->cb(w->ctx, name, m);
	return MNL_CB_OK;
}

int ports_watch_read(struct ports *p, ports_link_cb *cb, void *ctx)
{
	struct watch_ctx w = {cb, ctx};
	ssize_t n;

	if (!p->watch)
		return 0;
	for (;;) {
		n = recv(mnl_socket_get_fd(p->watch), p->buf,
			 MNL_SOCKET_BUFFER_SIZE * 4, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (mnl_cb_run(p->buf, (size_t)n, 0, 0, watch_cb, &w) < 0)
			return -errno;
	}
}
