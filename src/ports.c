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
	int ifindex, master, peer, nsid; /* nsid -1: peer in our namespace */
	bool peer_known, has_ll6;
	bool up;      /* the peer is up: Docker has given it its MAC */
	uint64_t mac; /* the peer's */
	u128 ll6;     /* the peer's link-local address */
	bool used, unread;
	bool bridge;	    /* the link is a bridge itself (parse_link's) */
	struct port *nx[3]; /* its chains: by index, namespace, MAC */
};

/* The table's chains: every port by its index, those into a namespace
 * by its nsid, those whose peer was read up by its MAC. */
enum { BY_IF, BY_NS, BY_MAC, NCHAINS };

struct ports {
	struct mnl_socket *nl;
	struct mnl_socket *watch; /* RTMGRP_LINK, once ports_watch opened it */
	uint32_t portid, seq;
	char *buf;
	/* every link that is a port of a bridge, kept by the watch once it
	 * is open (else read anew at each bind): a binding looks up the
	 * few ports it may be, never a dump */
	struct port **chain[NCHAINS];
	size_t nb, n;
	bool kept; /* the table is the kernel's: read, and watched since */
	/* the bridges: name -> index, index -> name (both decimal text) */
	struct smap br_index, br_name;
	/* the ports whose peer is not read up yet (Docker is making them) */
	struct port **unread;
	size_t nunread, capunread;
};

/* --- the table ------------------------------------------------------------ */

static size_t chain_of(const struct ports *p, int kind, const struct port *pt)
{
	uint64_t k = kind == BY_IF   ? (uint64_t)pt->ifindex
		     : kind == BY_NS ? (uint64_t)pt->nsid
				     : pt->mac;

	return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 32) & (p->nb - 1);
}

static bool chained(const struct port *pt, int kind)
{
	return kind == BY_IF || (kind == BY_NS && pt->nsid >= 0) ||
	       (kind == BY_MAC && pt->peer_known && pt->up);
}

static void link_in(struct ports *p, int kind, struct port *pt)
{
	struct port **h;

	if (!chained(pt, kind))
		return;
	h = &p->chain[kind][chain_of(p, kind, pt)];
	pt->nx[kind] = *h;
	*h = pt;
}

static void link_out(struct ports *p, int kind, struct port *pt)
{
	struct port **h;

	if (!chained(pt, kind))
		return;
	for (h = &p->chain[kind][chain_of(p, kind, pt)]; *h && *h != pt;
	     h = &(*h)->nx[kind])
		;
	if (*h)
		*h = pt->nx[kind];
}

/* Each port once, whatever the chains hold: fn may take it out. */
static void each_port(struct ports *p,
		      void (*fn)(struct ports *, struct port *, void *),
		      void *ctx)
{
	struct port *pt, *next;
	size_t b;

	for (b = 0; b < p->nb; b++)
		for (pt = p->chain[BY_IF] ? p->chain[BY_IF][b] : NULL; pt;
		     pt = next) {
			next = pt->nx[BY_IF];
			fn(p, pt, ctx);
		}
}

static void relink(struct ports *p, struct port *pt, void *ctx)
{
	int k;

	(void)ctx;
	for (k = 0; k < NCHAINS; k++)
		link_in(p, k, pt);
}

static void grow_table(struct ports *p)
{
	struct port **old = p->chain[BY_IF], *pt, *next;
	size_t nold = p->nb, b;
	int k;

	for (k = 1; k < NCHAINS; k++)
		free(p->chain[k]);
	p->nb = p->nb ? p->nb * 2 : 64;
	for (k = 0; k < NCHAINS; k++)
		p->chain[k] = xcalloc(p->nb, sizeof(struct port *));
	for (b = 0; b < nold; b++)
		for (pt = old[b]; pt; pt = next) {
			next = pt->nx[BY_IF];
			relink(p, pt, NULL);
		}
	free(old);
}

static struct port *port_at(const struct ports *p, int ifindex)
{
	struct port key = {.ifindex = ifindex}, *pt;

	if (!p->nb)
		return NULL;
	for (pt = p->chain[BY_IF][chain_of(p, BY_IF, &key)];
	     pt && pt->ifindex != ifindex; pt = pt->nx[BY_IF])
		;
	return pt;
}

static void unread_add(struct ports *p, struct port *pt)
{
	/* a veth whose peer is still here is one Docker is making (it
	 * moves the peer into the container's namespace next): asked
	 * again, by its index, until it leads elsewhere */
	if (pt->unread || !pt->peer)
		return; /* not a veth: nothing to read */
	pt->unread = true;
	*PUSH(p->unread, p->nunread, p->capunread) = pt;
}

static void unread_drop(struct ports *p, struct port *pt)
{
	size_t i;

	for (i = 0; pt->unread && i < p->nunread; i++)
		if (p->unread[i] == pt) {
			p->unread[i] = p->unread[--p->nunread];
			pt->unread = false;
		}
}

static void port_drop(struct ports *p, struct port *pt, void *ctx)
{
	int k;

	(void)ctx;
	for (k = 0; k < NCHAINS; k++)
		link_out(p, k, pt);
	unread_drop(p, pt);
	free(pt);
	p->n--;
}

/* The link as a message shows it: a port of master, or none (master 0). */
static void port_put(struct ports *p, const struct port *now)
{
	struct port *pt = port_at(p, now->ifindex);
	int k;

	if (!now->master) {
		if (pt)
			port_drop(p, pt, NULL);
		return;
	}
	if (pt && (pt->peer != now->peer || pt->nsid != now->nsid)) {
		/* its peer moved (into the container's namespace): what
		 * was read of it is not the endpoint's */
		port_drop(p, pt, NULL);
		pt = NULL;
	}
	if (!pt) {
		if (p->n + 1 > p->nb)
			grow_table(p);
		pt = xmalloc(sizeof(*pt));
		*pt = *now;
		pt->peer_known = pt->up = pt->has_ll6 = pt->used = false;
		pt->unread = false;
		for (k = 0; k < NCHAINS; k++)
			link_in(p, k, pt);
		p->n++;
		unread_add(p, pt);
		return;
	}
	pt->master = now->master;
	memcpy(pt->name, now->name, sizeof(pt->name));
}

static void table_clear(struct ports *p)
{
	each_port(p, port_drop, NULL);
	smap_free(&p->br_index);
	smap_free(&p->br_name);
	p->kept = false;
}

/* A bridge as a message shows it: there (gone false) under its name, or
 * gone. */
static void bridge_put(struct ports *p, const struct port *b, bool gone)
{
	char idx[16];
	const char *was;

	snprintf(idx, sizeof(idx), "%d", b->ifindex);
	if ((was = smap_get(&p->br_name, idx)) != NULL) {
		smap_del(&p->br_index, was, idx); /* renamed, or gone */
		smap_del(&p->br_name, idx, NULL);
	}
	if (gone)
		return;
	smap_put(&p->br_index, b->name, idx);
	smap_put(&p->br_name, idx, b->name);
}

/* The index of the bridge named br, 0 when there is none. */
static int bridge_index(const struct ports *p, const char *br)
{
	const char *idx = smap_get(&p->br_index, br);

	return idx ? atoi(idx) : 0;
}

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
	table_clear(p);
	for (int k = 0; k < NCHAINS; k++)
		free(p->chain[k]);
	free(p->unread);
	free(p->buf);
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

/* --- the links --------------------------------------------------------- */

static int link_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int t = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, IFLA_MAX) >= 0)
		tb[t] = a;
	return MNL_CB_OK;
}

/* A link's own message (not the bridge's, AF_BRIDGE, of its VLANs and
 * port state) into pt: its name, index, master (0: none), the peer when
 * it is a veth, whether it is a bridge. False when it is no such
 * message. */
static bool parse_link(const struct nlmsghdr *nlh, struct port *pt)
{
	const struct nlattr *tb[IFLA_MAX + 1] = {0};
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	if ((nlh->nlmsg_type != RTM_NEWLINK &&
	     nlh->nlmsg_type != RTM_DELLINK) ||
	    ifi->ifi_family == AF_BRIDGE ||
	    mnl_attr_parse(nlh, sizeof(*ifi), link_attr, tb) != MNL_CB_OK ||
	    !tb[IFLA_IFNAME] ||
	    mnl_attr_validate(tb[IFLA_IFNAME], MNL_TYPE_NUL_STRING) < 0)
		return false;
	memset(pt, 0, sizeof(*pt));
	snprintf(pt->name, sizeof(pt->name), "%s",
		 mnl_attr_get_str(tb[IFLA_IFNAME]));
	pt->ifindex = ifi->ifi_index;
	pt->nsid = -1;
	/* a link going away may name its last master still */
	if (nlh->nlmsg_type == RTM_NEWLINK && tb[IFLA_MASTER] &&
	    mnl_attr_validate(tb[IFLA_MASTER], MNL_TYPE_U32) >= 0)
		pt->master = (int)mnl_attr_get_u32(tb[IFLA_MASTER]);
	if (tb[IFLA_LINK] &&
	    mnl_attr_validate(tb[IFLA_LINK], MNL_TYPE_U32) >= 0)
		pt->peer = (int)mnl_attr_get_u32(tb[IFLA_LINK]);
	if (tb[IFLA_LINK_NETNSID] &&
	    mnl_attr_validate(tb[IFLA_LINK_NETNSID], MNL_TYPE_U32) >= 0)
		pt->nsid = (int)mnl_attr_get_u32(tb[IFLA_LINK_NETNSID]);
	if (tb[IFLA_LINKINFO]) {
		const struct nlattr *li[IFLA_INFO_MAX + 1] = {0}, *a;

		mnl_attr_for_each_nested(a, tb[IFLA_LINKINFO])
		{
			if (mnl_attr_type_valid(a, IFLA_INFO_MAX) >= 0)
				li[mnl_attr_get_type(a)] = a;
		}
		pt->bridge =
		    li[IFLA_INFO_KIND] &&
		    mnl_attr_validate(li[IFLA_INFO_KIND], MNL_TYPE_STRING) >=
			0 &&
		    !strncmp(mnl_attr_get_str(li[IFLA_INFO_KIND]), "bridge",
			     mnl_attr_get_payload_len(li[IFLA_INFO_KIND]));
	}
	return true;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct port pt;

	if (!parse_link(nlh, &pt))
		return MNL_CB_OK;
	if (pt.bridge)
		bridge_put(data, &pt, false);
	if (pt.master)
		port_put(data, &pt);
	return MNL_CB_OK;
}

/* The table read anew: every port of every bridge, in one dump. */
static int table_load(struct ports *p)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct ifinfomsg *ifi;
	int tries, r = 0;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	/* containers come and go as we read: an interrupted dump is read
	 * again, from the start */
	for (tries = 0; tries < 5; tries++) {
		table_clear(p);
		r = request(p, nlh, dump_cb, p);
		if (r != -EINTR)
			break;
	}
	/* what changes from here on, the watch says (what it holds from
	 * before the dump, applied after, ends where the kernel is) */
	p->kept = !r && p->watch;
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

/* The peer's MAC and link-local address, from the kernel, until it is
 * up: a port's peer then never changes while the port lives. */
static void read_peer(struct ports *p, struct port *pt)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct ifaddrmsg *ifa;

	if (pt->nsid < 0 || !pt->peer || (pt->peer_known && pt->up))
		return; /* not a veth into a container, or read for good */
	pt->peer_known = pt->has_ll6 = false;
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
	 * read the endpoint's for good, and found by its MAC */
	if (pt->up) {
		unread_drop(p, pt);
		link_in(p, BY_MAC, pt);
	}
}

/* The link at ifindex read again into the table: a port's peer moved
 * into its namespace says so in no event of the port's own until its
 * carrier comes up (a link watch event may be a second late). */
static void reread_link(struct ports *p, int ifindex)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	if (request(p, nlh, dump_cb, p) == -ENODEV) {
		struct port gone = {.ifindex = ifindex};

		port_put(p, &gone); /* no master: out */
	}
}

/* The peers of the ports Docker was still making when last read: those
 * whose peer was still here read again first, by index. */
static void read_new_peers(struct ports *p)
{
	int *here = xcalloc(p->nunread + 1, sizeof(*here));
	size_t i, n = 0;

	for (i = 0; i < p->nunread; i++)
		if (p->unread[i]->nsid < 0)
			here[n++] = p->unread[i]->ifindex;
	for (i = 0; i < n; i++)
		reread_link(p, here[i]);
	free(here);
	i = p->nunread;
	while (i--)
		if (i < p->nunread && p->unread[i]->nsid >= 0)
			read_peer(p, p->unread[i]);
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
 * among the ports of its bridge (index master) that it may be: those into
 * its namespace, else those whose peer has its MAC. */
static bool bind_net(struct ports *p, struct inv_container *c,
		     struct inv_net *n, int nsid, int master, struct diags *d)
{
	struct port key = {.nsid = nsid, .mac = n->mac}, *hit = NULL, *v;
	int kind = nsid >= 0 ? BY_NS : BY_MAC;
	size_t nhit = 0;
	char mac[24];

	if (!p->nb || (nsid < 0 && !n->has_mac))
		return false; /* nothing to tell it by */
	for (v = p->chain[kind][chain_of(p, kind, &key)]; v; v = v->nx[kind]) {
		/* a peer not up yet may not have its MAC yet either */
		if (v->master != master || !v->peer_known || !v->up)
			continue;
		if (nsid >= 0 && v->nsid != nsid)
			continue;
		if (n->has_mac && v->mac != n->mac)
			continue;
		hit = v;
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

/* Binds the nets of c that the table shows. */
static int bind_container(struct ports *p, struct inv_container *c,
			  struct diags *d)
{
	int nsid = -2, bound = 0, master;
	size_t j;

	for (j = 0; j < c->nnets; j++) {
		master = bridge_index(p, c->nets[j].bridge);
		if (!master)
			continue; /* no such bridge here: nothing to bind */
		if (nsid == -2)
			nsid = sandbox_nsid(p, c->sandbox);
		bound += bind_net(p, c, &c->nets[j], nsid, master, d);
	}
	return bound;
}

struct unbound {
	struct inventory *inv;
	char **br;
	int *master;
	size_t n;
};

static void list_unbound(struct ports *p, struct port *pt, void *ctx)
{
	struct unbound *u = ctx;
	struct inventory *inv = u->inv;
	size_t i;

	(void)p;
	for (i = 0; !pt->used && i < u->n; i++)
		if (pt->master == u->master[i]) {
			struct inv_bport *b =
			    PUSH(inv->bports, inv->nbports, inv->capbports);

			b->bridge = xstrdup(u->br[i]);
			b->port = xstrdup(pt->name);
			return;
		}
}

static void unuse(struct ports *p, struct port *pt, void *ctx)
{
	(void)p;
	(void)ctx;
	pt->used = false;
}

int ports_bind(struct ports *p, struct inventory *inv, struct diags *d)
{
	struct unbound u = {inv, NULL, NULL, 0};
	size_t cap = 0, i, j, k;
	int bound = 0, r;

	inventory_clear_bports(inv);
	r = table_load(p);
	if (r)
		return r;
	read_new_peers(p);
	each_port(p, unuse, NULL);
	for (i = 0; i < inv->n; i++)
		bound += bind_container(p, &inv->c[i], d);
	/* the other ports of the containers' bridges: nobody's */
	for (i = 0; i < inv->n; i++)
		for (j = 0; j < inv->c[i].nnets; j++) {
			const char *br = inv->c[i].nets[j].bridge;

			for (k = 0; k < u.n && strcmp(u.br[k], br); k++)
				;
			if (k < u.n)
				continue;
			if (u.n == cap) {
				cap = cap ? cap * 2 : 8;
				u.br = xrealloc(u.br, cap * sizeof(*u.br));
				u.master =
				    xrealloc(u.master, cap * sizeof(*u.master));
			}
			u.br[u.n] = (char *)br;
			u.master[u.n++] = bridge_index(p, br);
		}
	each_port(p, list_unbound, &u);
	free(u.br);
	free(u.master);
	return bound;
}

int ports_bind_container(struct ports *p, struct inv_container *c,
			 bool ask, struct diags *d)
{
	int r;

	/* no watch keeps the table (or it lost changes): read anew */
	if (!p->kept && (r = table_load(p)))
		return r;
	if (ask)
		read_new_peers(p);
	return bind_container(p, c, d);
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
	struct ports *p;
	ports_link_cb *cb;
	void *ctx;
};

static int watch_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct watch_ctx *w = data;
	struct ports *p = w->p;
	char master[IF_NAMESIZE], idx[16];
	const char *m = NULL;
	struct port pt;

	if (!parse_link(nlh, &pt))
		return MNL_CB_OK;
	if (pt.bridge || nlh->nlmsg_type == RTM_DELLINK)
		bridge_put(p, &pt, nlh->nlmsg_type == RTM_DELLINK);
	port_put(p, &pt);
	snprintf(idx, sizeof(idx), "%d", pt.master);
	if (pt.master && !(m = smap_get(&p->br_name, idx)) &&
	    if_indextoname((unsigned)pt.master, master))
		m = master;
	w->cb(w->ctx, pt.name, m);
	return MNL_CB_OK;
}

int ports_watch_read(struct ports *p, ports_link_cb *cb, void *ctx)
{
	struct watch_ctx w = {p, cb, ctx};
	ssize_t n;

	if (!p->watch)
		return 0;
	for (;;) {
		n = recv(mnl_socket_get_fd(p->watch), p->buf,
			 MNL_SOCKET_BUFFER_SIZE * 4, MSG_DONTWAIT);
		if (n < 0 && errno == ENOBUFS)
			p->kept = false; /* read anew at the next bind */
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (mnl_cb_run(p->buf, (size_t)n, 0, 0, watch_cb, &w) < 0)
			return -errno;
	}
}
