/* Others' changes: nftables' event group, read to tell the daemon that
 * another process changed our tables (our own batches are not news). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter_bridge.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "bulkhead/kernel.h"

#include "bulkhead/nft.h"

/* --- changes made by others ------------------------------------------- */

struct kernel_watch {
	struct mnl_socket *nl;
	char buf[1 << 16];
};

struct kernel_watch *kernel_watch_open(char *err, size_t errlen)
{
	struct kernel_watch *w = xcalloc(1, sizeof(*w));
	int grp = NFNLGRP_NFTABLES, sz = 4 << 20;

	w->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK);
	if (!w->nl) {
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		goto fail;
	}
	if (mnl_socket_bind(w->nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_setsockopt(w->nl, NETLINK_ADD_MEMBERSHIP, &grp,
				  sizeof(grp)) < 0) {
		snprintf(err, errlen, "nftables event group: %s",
			 strerror(errno));
		goto fail;
	}
	/* a full replace of our table is one event per element: room for
	 * most of them (when the kernel drops some, we check the table) */
	rcvbuf_grow(mnl_socket_get_fd(w->nl), sz);
	return w;
fail:
	kernel_watch_close(w);
	return NULL;
}

void kernel_watch_close(struct kernel_watch *w)
{
	if (!w)
		return;
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w);
}

int kernel_watch_fd(const struct kernel_watch *w)
{
	return mnl_socket_get_fd(w->nl);
}

/* The string attribute of type t among a message's attributes, or NULL. */
static const char *ev_str(const uint8_t *a, size_t len, uint16_t t)
{
	while (len >= sizeof(struct nlattr)) {
		const struct nlattr *at =
		    (const struct nlattr *)(const void *)a;
		size_t alen = at->nla_len, step = NLA_ALIGN(alen);

		if (alen < sizeof(*at) || alen > len)
			return NULL;
		if ((at->nla_type & NLA_TYPE_MASK) == t && alen > sizeof(*at) &&
		    memchr(a + sizeof(*at), 0, alen - sizeof(*at)))
			return (const char *)(a + sizeof(*at));
		if (step >= len)
			return NULL;
		a += step;
		len -= step;
	}
	return NULL;
}

/* How much an event says: a deleted table says more than the rules and
 * elements that went with it, and is what a log line should name. */
static int ev_rank(uint16_t msg)
{
	switch (msg) {
	case NFT_MSG_DELTABLE:
		return 6;
	case NFT_MSG_DELCHAIN:
	case NFT_MSG_DELSET:
		return 5;
	case NFT_MSG_NEWTABLE:
	case NFT_MSG_NEWCHAIN:
	case NFT_MSG_NEWSET:
		return 4;
	case NFT_MSG_DELRULE:
	case NFT_MSG_NEWRULE:
		return 3;
	case NFT_MSG_DELSETELEM:
	case NFT_MSG_NEWSETELEM:
		return 2;
	default:
		return 1;
	}
}

static const char *ev_name(uint16_t msg)
{
	switch (msg) {
	case NFT_MSG_NEWTABLE:
		return "table added";
	case NFT_MSG_DELTABLE:
		return "table deleted";
	case NFT_MSG_NEWCHAIN:
		return "chain added";
	case NFT_MSG_DELCHAIN:
		return "chain deleted";
	case NFT_MSG_NEWRULE:
		return "rule added";
	case NFT_MSG_DELRULE:
		return "rule deleted";
	case NFT_MSG_NEWSET:
		return "set added";
	case NFT_MSG_DELSET:
		return "set deleted";
	case NFT_MSG_NEWSETELEM:
		return "elements added";
	case NFT_MSG_DELSETELEM:
		return "elements deleted";
	default:
		return "changed";
	}
}

int kernel_event_foreign(const void *buf, size_t len, uint32_t self,
			 const struct ir_ruleset *rs, char *what,
			 size_t whatlen)
{
	const void *p = buf;
	int best = 0;

	for (; nlmsg_fits(p, len); p = nlmsg_next(p, &len)) {
		const struct nlmsghdr *nh = p;
		const struct nfgenmsg *g;
		const uint8_t *attrs;
		size_t alen, hdr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*g));
		uint16_t msg = nh->nlmsg_type & 0xff;
		const char *table, *set;
		const struct ir_set *s;

		if (nh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES ||
		    msg == NFT_MSG_NEWGEN || nh->nlmsg_len < hdr ||
		    nh->nlmsg_pid == self)
			continue;
		g = (const struct nfgenmsg *)(const void *)((const uint8_t *)p +
							    NLMSG_HDRLEN);
		attrs = (const uint8_t *)p + hdr;
		alen = nh->nlmsg_len - hdr;
		table = ev_str(attrs, alen, 1); /* NFTA_*_TABLE, _NAME */
		if ((g->nfgen_family != NFPROTO_INET &&
		     g->nfgen_family != NFPROTO_BRIDGE) ||
		    !table || strcmp(table, rs->table))
			continue;
		/* elements the packet path adds and times out are not news */
		set = msg == NFT_MSG_NEWSETELEM || msg == NFT_MSG_DELSETELEM
			  ? ev_str(attrs, alen, NFTA_SET_ELEM_LIST_SET)
			  : NULL;
		s = set ? ir_set_find(rs, set) : NULL;
		if (s && (s->flags & IRS_DYNAMIC))
			continue;
		if (ev_rank(msg) > best) {
			best = ev_rank(msg);
			snprintf(what, whatlen, "%s%s%s", ev_name(msg),
				 set ? " in set " : "", set ? set : "");
		}
	}
	return best;
}

int kernel_watch_read(struct kernel_watch *w, const struct kernel *k,
		      const struct ir_ruleset *rs, char *what, size_t whatlen)
{
	int best = 0, r;
	char one[160];
	ssize_t n;

	for (;;) {
		n = recv(mnl_socket_get_fd(w->nl), w->buf, sizeof(w->buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			/* events were lost: anything may have happened */
			if (!best) {
				best = 1;
				snprintf(what, whatlen,
					 "events lost (the socket overran)");
			}
			continue;
		}
		if (n <= 0)
			break;
		r = rs ? kernel_event_foreign(w->buf, (size_t)n, k->portid, rs,
					      one, sizeof(one))
		       : 0;
		if (r > best) {
			best = r;
			snprintf(what, whatlen, "%s", one);
		}
	}
	return best > 0;
}
