/* The kernel's socket and its transactions: one netlink socket, batches
 * sent whole and every answer read, a refusal named by the object it
 * concerns and explained in the kernel's own words (extended acks). What
 * goes into a batch is encode.c's; reading our tables back, readback.c's;
 * others' changes, nftwatch.c's. Touches only our own tables (inet NAME
 * and bridge NAME). */
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

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

struct kernel *kernel_open(char *err, size_t errlen)
{
	struct kernel *k = xcalloc(1, sizeof(*k));
	int one = 1;

	k->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!k->nl) {
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		goto fail;
	}
	if (mnl_socket_bind(k->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "netlink bind: %s", strerror(errno));
		goto fail;
	}
	setsockopt(mnl_socket_get_fd(k->nl), SOL_NETLINK, NETLINK_EXT_ACK, &one,
		   sizeof(one));
	k->portid = mnl_socket_get_portid(k->nl);
	k->seq = (uint32_t)time(NULL);
	return k;
fail:
	kernel_close(k);
	return NULL;
}

void kernel_close(struct kernel *k)
{
	if (!k)
		return;
	if (k->nl)
		mnl_socket_close(k->nl);
	free(k);
}

void batch_reserve(struct batch *b, size_t n)
{
	grow(&b->buf, &b->cap, b->len + n, 1);
}

/* Starts a message; the caller fills it and calls batch_done(). */
struct nlmsghdr *batch_msg(struct batch *b, enum ir_family fam, uint16_t type,
			   uint16_t flags, char *what)
{
	batch_reserve(b, 1 << 18);
	*PUSH(b->what, b->nwhat, b->capwhat) = what;
	b->last = b->len;
	return nftnl_nlmsg_build_hdr(b->buf + b->len, type, nfproto(fam), flags,
				     b->seq++);
}

void batch_done(struct batch *b, struct nlmsghdr *nlh)
{
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* With gen, the kernel refuses the whole batch (ERESTART) unless the
 * ruleset is still at that generation: a delta computed from a read-back
 * never lands on a table that changed in between. */
void batch_begin(struct batch *b, const struct kernel *k, uint32_t gen)
{
	struct nlmsghdr *nlh;

	b->seq = b->first_seq = k->seq;
	batch_reserve(b, 4096);
	nlh = nftnl_batch_begin(b->buf, b->seq++);
	if (gen)
		mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(gen));
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
	*PUSH(b->what, b->nwhat, b->capwhat) = xstrdup("batch begin");
}

/* Only the last message asks for an acknowledgement: errors come back for
 * any message anyway, and one ack per message would overrun the socket's
 * receive buffer on batches of thousands of messages. */
void batch_end(struct batch *b)
{
	((struct nlmsghdr *)(b->buf + b->last))->nlmsg_flags |= NLM_F_ACK;
	batch_reserve(b, 4096);
	*PUSH(b->what, b->nwhat, b->capwhat) = xstrdup("batch end");
	b->len +=
	    NLMSG_ALIGN(nftnl_batch_end(b->buf + b->len, b->seq++)->nlmsg_len);
}

void batch_free(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->nwhat; i++)
		free(b->what[i]);
	free(b->what);
	free(b->buf);
}

/* The top-level attributes of the messages we send, by message type, as
 * an extended ack's offset names them. */
static const char *attr_name(uint16_t type, uint16_t attr)
{
	static const char *const table[] = {NULL, "NFTA_TABLE_NAME",
					    "NFTA_TABLE_FLAGS"};
	static const char *const chain[] = {NULL,
					    "NFTA_CHAIN_TABLE",
					    "NFTA_CHAIN_HANDLE",
					    "NFTA_CHAIN_NAME",
					    "NFTA_CHAIN_HOOK",
					    "NFTA_CHAIN_POLICY",
					    "NFTA_CHAIN_USE",
					    "NFTA_CHAIN_TYPE",
					    "NFTA_CHAIN_COUNTERS"};
	static const char *const set[] = {NULL,
					  "NFTA_SET_TABLE",
					  "NFTA_SET_NAME",
					  "NFTA_SET_FLAGS",
					  "NFTA_SET_KEY_TYPE",
					  "NFTA_SET_KEY_LEN",
					  "NFTA_SET_DATA_TYPE",
					  "NFTA_SET_DATA_LEN",
					  "NFTA_SET_POLICY",
					  "NFTA_SET_DESC",
					  "NFTA_SET_ID",
					  "NFTA_SET_TIMEOUT",
					  "NFTA_SET_GC_INTERVAL",
					  "NFTA_SET_USERDATA"};
	static const char *const elems[] = {
	    NULL, "NFTA_SET_ELEM_LIST_TABLE", "NFTA_SET_ELEM_LIST_SET",
	    "NFTA_SET_ELEM_LIST_ELEMENTS", "NFTA_SET_ELEM_LIST_SET_ID"};
	static const char *const rule[] = {
	    NULL, "NFTA_RULE_TABLE", "NFTA_RULE_CHAIN", "NFTA_RULE_HANDLE",
	    "NFTA_RULE_EXPRESSIONS"};
	const char *const *v = NULL;
	size_t n = 0;

#define PICK(a) (v = (a), n = sizeof(a) / sizeof((a)[0]))
	switch (NFNL_MSG_TYPE(type)) {
	case NFT_MSG_NEWTABLE:
	case NFT_MSG_DELTABLE:
		PICK(table);
		break;
	case NFT_MSG_NEWCHAIN:
		PICK(chain);
		break;
	case NFT_MSG_NEWSET:
		PICK(set);
		break;
	case NFT_MSG_NEWSETELEM:
	case NFT_MSG_DELSETELEM:
		PICK(elems);
		break;
	case NFT_MSG_NEWRULE:
		PICK(rule);
		break;
	}
#undef PICK
	return v && attr < n ? v[attr] : NULL;
}

/* Where in our message (seq) an extended ack's offset points: the
 * top-level attribute, and for a list of elements which one. */
static void point_at(const struct batch *b, uint32_t seq, uint32_t offs,
		     struct strbuf *sb)
{
	const struct nlmsghdr *m;
	const struct nlattr *a;
	size_t left = b->len;

	for (m = (const void *)b->buf; mnl_nlmsg_ok(m, (int)left);
	     m = mnl_nlmsg_next(m, (int *)&left))
		if (m->nlmsg_seq == seq)
			break;
	if (!mnl_nlmsg_ok(m, (int)left) || offs >= m->nlmsg_len)
		return;
	mnl_attr_for_each(a, m, sizeof(struct nfgenmsg))
	{
		size_t start = (size_t)((const char *)a - (const char *)m);
		uint16_t t = mnl_attr_get_type(a);
		const char *name = attr_name(m->nlmsg_type, t);
		const struct nlattr *e;
		unsigned i = 0;

		if (offs < start || offs >= start + mnl_attr_get_len(a))
			continue;
		if (name)
			sb_printf(sb, "at %s", name);
		else
			sb_printf(sb, "at attribute %u", t);
		if (NFNL_MSG_TYPE(m->nlmsg_type) == NFT_MSG_NEWSETELEM ||
		    NFNL_MSG_TYPE(m->nlmsg_type) == NFT_MSG_DELSETELEM)
			mnl_attr_for_each_nested(e, a)
			{
				size_t es =
				    (size_t)((const char *)e - (const char *)m);

				i++;
				if (offs >= es &&
				    offs < es + mnl_attr_get_len(e))
					sb_printf(sb,
						  ", element %u of the message",
						  i);
			}
		return;
	}
}

struct ack {
	const char *msg;
	uint32_t offs;
	bool has_offs;
};

static int ack_attr(const struct nlattr *a, void *data)
{
	struct ack *ack = data;

	if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
	    !mnl_attr_validate(a, MNL_TYPE_NUL_STRING))
		ack->msg = mnl_attr_get_str(a);
	if (mnl_attr_get_type(a) == NLMSGERR_ATTR_OFFS &&
	    !mnl_attr_validate(a, MNL_TYPE_U32)) {
		ack->offs = mnl_attr_get_u32(a);
		ack->has_offs = true;
	}
	return MNL_CB_OK;
}

/* The kernel refused a message of b: which object, its errno, and what
 * the extended ack adds (the kernel's own words, the attribute it
 * points at). */
static void refusal(const struct batch *b, const struct nlmsghdr *nlh,
		    char *err, size_t errlen)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	struct ack ack = {0};
	struct strbuf why = {0};
	size_t off = sizeof(*e);

	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		/* the tlvs follow our message, or its header when capped */
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(e->msg);
		if (off < mnl_nlmsg_get_payload_len(nlh))
			mnl_attr_parse(nlh, (unsigned)off, ack_attr, &ack);
	}
	if (ack.msg && *ack.msg)
		sb_puts(&why, ack.msg);
	if (ack.has_offs) {
		if (why.s)
			sb_puts(&why, ", ");
		point_at(b, e->msg.nlmsg_seq, ack.offs, &why);
	}
	if (why.s && why.len)
		snprintf(err, errlen, "the kernel refused %s: %s (%s)",
			 b->what[e->msg.nlmsg_seq - b->first_seq],
			 strerror(-e->error), why.s);
	else
		snprintf(err, errlen, "the kernel refused %s: %s",
			 b->what[e->msg.nlmsg_seq - b->first_seq],
			 strerror(-e->error));
	sb_free(&why);
}

/* One datagram of answers (flags: 0, or MSG_DONTWAIT), read as libmnl
 * reads it: -1 with ENOSPC when it did not fit the buffer, an error in it
 * cut off (a refused message comes back whole with its error). */
static ssize_t read_answers(int fd, char *buf, size_t len, int flags)
{
	struct sockaddr_nl addr;
	struct iovec iov = {buf, len};
	struct msghdr msg = {.msg_name = &addr,
			     .msg_namelen = sizeof(addr),
			     .msg_iov = &iov,
			     .msg_iovlen = 1};
	ssize_t n = recvmsg(fd, &msg, flags);

	if (n >= 0 && (msg.msg_flags & MSG_TRUNC)) {
		errno = ENOSPC;
		return -1;
	}
	return n;
}

/* Sends the batch and reads every answer. The kernel applies all of it
 * or none; the first error is reported with the object it concerns.
 * Answers to earlier batches (late errors) are skipped by sequence. */
int batch_send(struct kernel *k, struct batch *b, char *err, size_t errlen)
{
	int fd = mnl_socket_get_fd(k->nl), ret = 0, sndbuf;
	char rbuf[16384];
	uint32_t last_seq = b->seq - 2;
	bool done = false;
	ssize_t n;

	k->seq = b->seq;
	/* the whole transaction goes in one message: make room for it
	 * (once for batches of its size: a placement's is a few hundred
	 * bytes, and a system call each costs more than its batch) */
	sndbuf = (int)(b->len + 4096);
	if (sndbuf > k->sndbuf) {
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf,
			       sizeof(sndbuf)))
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
				   sizeof(sndbuf));
		k->sndbuf = sndbuf;
	}
	if (mnl_socket_sendto(k->nl, b->buf, b->len) < 0) {
		ret = -errno;
		snprintf(err, errlen, "sending the batch (%zu bytes): %s",
			 b->len, strerror(errno));
		return ret;
	}
	while (!done) {
		struct pollfd pfd = {fd, POLLIN, 0};
		const struct nlmsghdr *nlh;
		size_t left;

		/* the kernel answers as it takes the batch: what is there
		 * is read at once; after an error it may stay silent about
		 * the rest */
		n = read_answers(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (poll(&pfd, 1, ret ? 100 : 60000) <= 0)
				break;
			n = read_answers(fd, rbuf, sizeof(rbuf), 0);
		}
		if (n < 0) {
			if (!ret) {
				ret = -errno;
				snprintf(err, errlen, "reading answers: %s",
					 strerror(errno));
			}
			break;
		}
		left = (size_t)n;
		for (nlh = (const void *)rbuf; nlmsg_fits(nlh, left);
		     nlh = nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *e;
			size_t idx = nlh->nlmsg_seq - b->first_seq;

			if (nlh->nlmsg_type != NLMSG_ERROR || idx >= b->nwhat)
				continue;
			done |= nlh->nlmsg_seq == last_seq;
			e = mnl_nlmsg_get_payload(nlh);
			if (!e->error || ret)
				continue;
			ret = e->error;
			if (ret == -ERESTART && !idx) {
				ret = -EAGAIN;
				snprintf(err, errlen,
					 "the ruleset changed since it was "
					 "read; nothing applied");
				continue;
			}
			refusal(b, nlh, err, errlen);
		}
	}
	if (!ret && !done) {
		ret = -ETIMEDOUT;
		snprintf(err, errlen,
			 "the kernel did not acknowledge the batch");
	}
	return ret;
}

int kernel_apply(struct kernel *k, const struct ir_ruleset *rs, char *err,
		 size_t errlen)
{
	struct batch b = {0};
	int ret;

	batch_begin(&b, k, 0);
	nft_build_apply(&b, rs);
	batch_end(&b);
	ret = batch_send(k, &b, err, errlen);
	batch_free(&b);
	return ret;
}

/* Sends what build put in a batch (0 or a negative errno from build). */
static int send_batch(struct kernel *k, struct batch *b, int r, char *err,
		      size_t errlen)
{
	if (!r) {
		batch_end(b);
		r = batch_send(k, b, err, errlen);
	}
	batch_free(b);
	return r;
}

int kernel_apply_delta(struct kernel *k, const struct ir_ruleset *rs,
		       const struct ir_delta *delta, uint32_t gen, char *err,
		       size_t errlen)
{
	struct batch b = {0};

	if (!delta->n)
		return 0;
	batch_begin(&b, k, gen);
	return send_batch(k, &b, nft_put_changes(&b, rs, delta, err, errlen),
			  err, errlen);
}

int kernel_refill(struct kernel *k, const struct ir_ruleset *rs,
		  const size_t *sets, size_t nsets, const struct ir_delta *adds,
		  char *err, size_t errlen)
{
	struct batch b = {0};
	size_t i;

	batch_begin(&b, k, 0);
	for (i = 0; i < nsets; i++) {
		struct nlmsghdr *nlh;

		if (sets[i] >= rs->nsets) {
			batch_free(&b);
			snprintf(err, errlen, "refill names set %zu of %zu",
				 sets[i], rs->nsets);
			return -EINVAL;
		}
		/* no element list: every element of the set */
		nlh = batch_msg(
		    &b, rs->sets[sets[i]].family, NFT_MSG_DELSETELEM, 0,
		    xasprintf("flushing set %s", rs->sets[sets[i]].name));
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET,
				  rs->sets[sets[i]].name);
		mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, rs->table);
		batch_done(&b, nlh);
	}
	return send_batch(k, &b, nft_put_changes(&b, rs, adds, err, errlen),
			  err, errlen);
}

int kernel_sync(struct kernel *k, const struct ir_ruleset *want, bool replace,
		struct kernel_sync *res, char *err, size_t errlen)
{
	struct ir_ruleset *have = NULL;
	struct ir_diff d = {0};
	uint32_t gen = 0;
	int r = -EAGAIN;

	memset(res, 0, sizeof(*res));
	if (!replace) {
		r = kernel_read(k, want->table, &have, &gen, err, errlen);
		if (r)
			goto out;
		ir_diff(want, have, &d);
		r = -EAGAIN;
		if (!d.nitems) {
			r = kernel_apply_delta(k, want, &d.elems, gen, err,
					       errlen);
			res->nadd = d.nadd;
			res->ndel = d.ndel;
		}
	}
	/* a table that differs in shape, or that changed under us since it
	 * was read, is replaced whole */
	if (r == -EAGAIN) {
		res->replaced = true;
		res->nadd = ir_element_count(want);
		res->ndel = 0;
		r = kernel_apply(k, want, err, errlen);
	}
out:
	ir_diff_free(&d);
	ir_free(have);
	return r;
}

int kernel_flush(struct kernel *k, const char *table, char *err, size_t errlen)
{
	struct batch b = {0};
	int ret;

	batch_begin(&b, k, 0);
	nft_del_table(&b, IRF_INET, table);
	nft_del_table(&b, IRF_BRIDGE, table);
	batch_end(&b);
	ret = batch_send(k, &b, err, errlen);
	batch_free(&b);
	return ret;
}

uint32_t kernel_portid(const struct kernel *k)
{
	return k->portid;
}
