/* Denied flows: an NFLOG subscriber bound to our log group, a decoder of
 * the headers the kernel copies (IPv4, IPv6, TCP, UDP, ICMP, ICMPv6),
 * the record naming both ends, and a JSON-lines file with rotation.
 * Malformed input is counted and skipped, never trusted; the reader
 * never blocks. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "bulkhead/flowlog.h"
#include "bulkhead/metrics.h"

#define PREFIX_DENY "bulkhead deny "
#define PREFIX_AUDIT "bulkhead would-deny "
#define RCVBUF (4u << 20)

/* --- decoding ---------------------------------------------------------- */

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, NFULA_MAX) < 0)
		return MNL_CB_OK; /* newer than us: skip */
	switch (type) {
	case NFULA_IFINDEX_INDEV:
	case NFULA_IFINDEX_OUTDEV:
		if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		break;
	case NFULA_TIMESTAMP:
		if (mnl_attr_validate2(
			a, MNL_TYPE_UNSPEC,
			sizeof(struct nfulnl_msg_packet_timestamp)) < 0)
			return MNL_CB_ERROR;
		break;
	case NFULA_PREFIX:
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
			return MNL_CB_ERROR;
		break;
	}
	tb[type] = a;
	return MNL_CB_OK;
}

static u128 be_addr(const uint8_t *p, size_t n)
{
	u128 v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The transport header at p (n bytes left). */
static void l4(struct flow_pkt *pkt, const uint8_t *p, size_t n)
{
	switch (pkt->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
	case IPPROTO_UDPLITE:
		if (n < 4)
			return;
		pkt->has_ports = true;
		pkt->sport = (uint16_t)(p[0] << 8 | p[1]);
		pkt->dport = (uint16_t)(p[2] << 8 | p[3]);
		return;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (n < 2)
			return;
		pkt->icmp_type = p[0];
		pkt->icmp_code = p[1];
		return;
	}
}

static int ipv4(struct flow_pkt *pkt, const uint8_t *p, size_t n)
{
	size_t hl;

	if (n < 20 || (hl = (size_t)(p[0] & 0x0f) * 4) < 20 || hl > n)
		return -EBADMSG;
	pkt->family = AF_INET;
	pkt->proto = p[9];
	pkt->saddr = be_addr(p + 12, 4);
	pkt->daddr = be_addr(p + 16, 4);
	/* a later fragment carries no transport header */
	if (((p[6] << 8 | p[7]) & 0x1fff) == 0)
		l4(pkt, p + hl, n - hl);
	return 0;
}

static int ipv6(struct flow_pkt *pkt, const uint8_t *p, size_t n)
{
	size_t off = 40, len;
	uint8_t nh;
	int hops;

	if (n < 40)
		return -EBADMSG;
	pkt->family = AF_INET6;
	pkt->saddr = be_addr(p + 8, 16);
	pkt->daddr = be_addr(p + 24, 16);
	nh = p[6];
	/* extension headers, as far as the copy reaches */
	for (hops = 0; hops < 8; hops++) {
		if (nh != 0 && nh != 43 && nh != 60 && nh != 44 && nh != 51)
			break;
		if (off + 8 > n) {
			pkt->proto = nh;
			return 0;
		}
		if (nh == 44) {
			if (((p[off + 2] << 8 | p[off + 3]) & 0xfff8) != 0) {
				pkt->proto = p[off];
				return 0; /* a later fragment */
			}
			len = 8;
		} else if (nh == 51)
			len = ((size_t)p[off + 1] + 2) * 4;
		else
			len = ((size_t)p[off + 1] + 1) * 8;
		nh = p[off];
		off += len;
	}
	pkt->proto = nh;
	if (off <= n)
		l4(pkt, p + off, n - off);
	return 0;
}

int flowlog_decode(const void *msg, size_t len, struct flow_pkt *pkt)
{
	const struct nlmsghdr *nlh = msg;
	const struct nlattr *tb[NFULA_MAX + 1] = {0}, *a;
	const char *prefix;
	size_t seen;
	const uint8_t *pl;
	size_t n;

	memset(pkt, 0, sizeof(*pkt));
	pkt->icmp_type = pkt->icmp_code = -1;
	if (!nlmsg_fits(nlh, len))
		return -EBADMSG;
	if (nlh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
		return -ENOMSG;
	if (nlh->nlmsg_len <
	    MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)))
		return -EBADMSG;
	/* every attribute must fit: libmnl's own walk stops quietly at
	 * the first that does not */
	seen = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg));
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (attr_cb(a, tb) != MNL_CB_OK)
			return -EBADMSG;
		seen += MNL_ALIGN(a->nla_len);
	}
	if (seen < nlh->nlmsg_len)
		return -EBADMSG;
	if (!tb[NFULA_PREFIX])
		return -ENOMSG;
	prefix = mnl_attr_get_str(tb[NFULA_PREFIX]);
	if (!strcmp(prefix, PREFIX_AUDIT))
		pkt->audit = true;
	else if (strcmp(prefix, PREFIX_DENY))
		return -ENOMSG;
	if (tb[NFULA_IFINDEX_INDEV])
		pkt->indev = ntohl(mnl_attr_get_u32(tb[NFULA_IFINDEX_INDEV]));
	if (tb[NFULA_IFINDEX_OUTDEV])
		pkt->outdev = ntohl(mnl_attr_get_u32(tb[NFULA_IFINDEX_OUTDEV]));
	pkt->input = !pkt->outdev;
	if (tb[NFULA_TIMESTAMP]) {
		/* attributes are 4-aligned, the struct wants 8: copy it */
		struct nfulnl_msg_packet_timestamp t;

		memcpy(&t, mnl_attr_get_payload(tb[NFULA_TIMESTAMP]),
		       sizeof(t));
		pkt->ts_us = be64toh(t.sec) * 1000000u + be64toh(t.usec);
	}
	if (!tb[NFULA_PAYLOAD])
		return -EBADMSG;
	pl = mnl_attr_get_payload(tb[NFULA_PAYLOAD]);
	n = mnl_attr_get_payload_len(tb[NFULA_PAYLOAD]);
	if (!n)
		return -EBADMSG;
	switch (pl[0] >> 4) {
	case 4:
		return ipv4(pkt, pl, n);
	case 6:
		return ipv6(pkt, pl, n);
	}
	return -EBADMSG;
}

/* --- the record -------------------------------------------------------- */

/* A JSON string: quotes, backslashes and control characters escaped. */
void flowlog_jstr(struct strbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	sb_putc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_putn(b, run, (size_t)(s - run));
		run = s + 1;
		if (c == '"' || c == '\\') {
			sb_putc(b, '\\');
			sb_putc(b, (char)c);
		} else {
			sb_puts(b, "\\u00");
			sb_putc(b, hex[c >> 4]);
			sb_putc(b, hex[c & 15]);
		}
	}
	sb_putn(b, run, (size_t)(s - run));
	sb_putc(b, '"');
}

static void juint(struct strbuf *b, unsigned long v)
{
	char d[24];
	int n = 0;

	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		sb_putc(b, d[--n]);
}

static void key(struct strbuf *b, const char *k)
{
	sb_putc(b, '"');
	sb_puts(b, k);
	sb_puts(b, "\":");
}

static void end(const struct flow_pkt *pkt, bool src,
		const struct inv_container *c, const struct inv_net *net,
		long svc, const struct policy *p,
		const struct trace_index *gone, struct strbuf *b)
{
	u128 a = src ? pkt->saddr : pkt->daddr;
	char buf[64];

	addr_format(pkt->family, a, buf, sizeof(buf));
	sb_putc(b, '{');
	key(b, "ip");
	flowlog_jstr(b, buf);
	if (pkt->has_ports) {
		sb_putc(b, ',');
		key(b, "port");
		juint(b, src ? pkt->sport : pkt->dport);
	}
	if (!c)
		c = trace_index_find(gone, pkt->family, a, &net, &svc);
	if (c) {
		sb_putc(b, ',');
		key(b, "container");
		flowlog_jstr(b, c->name);
		if (svc >= 0) {
			sb_putc(b, ',');
			key(b, "service");
			flowlog_jstr(b, p->services[svc].name);
		}
		if (net) {
			sb_putc(b, ',');
			key(b, "network");
			flowlog_jstr(b, net->name);
		}
	} else {
		sb_putc(b, ',');
		key(b, "peer");
		flowlog_jstr(b, !src && pkt->input ? "host" : "world");
	}
	sb_putc(b, '}');
}

void flowlog_ends(const struct flow_pkt *pkt, const struct trace_decision *dec,
		  const struct policy *p, const struct trace_index *gone,
		  struct strbuf *b)
{
	char buf[16];

	key(b, "proto");
	flowlog_jstr(b, proto_name(pkt->proto, buf, sizeof(buf)));
	if (pkt->icmp_type >= 0) {
		sb_putc(b, ',');
		key(b, "icmp_type");
		juint(b, (unsigned long)pkt->icmp_type);
		sb_putc(b, ',');
		key(b, "icmp_code");
		juint(b, (unsigned long)pkt->icmp_code);
	}
	sb_putc(b, ',');
	key(b, "src");
	end(pkt, true, dec->src, dec->src_net, dec->src_svc, p, gone, b);
	sb_putc(b, ',');
	key(b, "dst");
	end(pkt, false, dec->dst, dec->dst_net, dec->dst_svc, p, gone, b);
}

void flowlog_format(const struct flow_pkt *pkt,
		    const struct trace_decision *dec, const struct policy *p,
		    const struct trace_index *gone, const char *ts,
		    struct strbuf *b)
{
	sb_putc(b, '{');
	key(b, "ts");
	flowlog_jstr(b, ts);
	sb_putc(b, ',');
	key(b, "verdict");
	flowlog_jstr(b, pkt->audit ? "would-deny" : "denied");
	sb_putc(b, ',');
	flowlog_ends(pkt, dec, p, gone, b);
	sb_putc(b, ',');
	key(b, "reason");
	flowlog_jstr(b, flowlog_reason(pkt, dec));
	sb_putc(b, '}');
}

const char *flowlog_reason(const struct flow_pkt *pkt,
			   const struct trace_decision *dec)
{
	/* from a link-local address no container is known by yet (its
	 * port not bound): what the kernel drops there is no race */
	if (dec->allowed && !dec->src && pkt->family == AF_INET6 &&
	    (pkt->saddr >> 118) == (0xfe80u >> 6))
		return "link-local";
	/* the model allowing what the kernel logged means the kernel was
	 * behind (a container not placed yet) */
	return dec->allowed  ? "not-placed-yet"
	       : dec->reason ? dec->reason
			     : "no-edge";
}

/* What metrics call an end of the flow (src, else dst): its container's
 * service, or unmatched; else host or world. */
static const char *end_label(const struct flow_pkt *pkt,
			     const struct trace_decision *dec, bool src,
			     const struct policy *p,
			     const struct trace_index *gone)
{
	const struct inv_container *c = src ? dec->src : dec->dst;
	const struct inv_net *net;
	long svc = src ? dec->src_svc : dec->dst_svc;

	if (!c)
		c = trace_index_find(gone, pkt->family,
				     src ? pkt->saddr : pkt->daddr, &net, &svc);
	if (c)
		return svc >= 0 ? p->services[svc].name : METRICS_UNMATCHED;
	return !src && pkt->input ? "host" : "world";
}

void flowlog_count(struct metrics *m, const struct flow_pkt *pkt,
		   const struct trace_decision *dec, const struct policy *p,
		   const struct trace_index *gone)
{
	if (m)
		metrics_flow(m, pkt->audit ? "would-deny" : "denied",
			     end_label(pkt, dec, true, p, gone),
			     end_label(pkt, dec, false, p, gone),
			     flowlog_reason(pkt, dec));
}

json_t *flowlog_record(const struct flow_pkt *pkt,
		       const struct trace_decision *dec, const struct policy *p,
		       const struct trace_index *gone, const char *ts)
{
	struct strbuf b = {0};
	json_t *r;

	flowlog_format(pkt, dec, p, gone, ts, &b);
	r = json_loadb(b.s, b.len, 0, NULL);
	sb_free(&b);
	return r;
}

void flowlog_attribute(const struct flow_pkt *pkt, const struct compiler *cc,
		       const struct policy *p, const struct trace_index *ix,
		       const struct trace_index *gone, const char *ts,
		       struct strbuf *out, struct trace_decision *dec)
{
	trace_decide_ix(cc, p, ix, pkt->family, pkt->saddr, pkt->daddr,
			pkt->input, pkt->proto, pkt->has_ports ? pkt->dport : 0,
			dec);
	flowlog_format(pkt, dec, p, gone, ts, out);
}

/* --- the subscriber ---------------------------------------------------- */

struct flowlog {
	struct mnl_socket *nl;
	unsigned group;
	struct flowlog_stats st;
	char buf[1 << 16];
};

static int config(struct flowlog *fl, unsigned group, int kind,
		  const void *data, size_t len)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;
	int n;

	nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons((uint16_t)group);
	mnl_attr_put(nlh, (uint16_t)kind, len, data);
	if (mnl_socket_sendto(fl->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = (int)mnl_socket_recvfrom(fl->nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	return mnl_cb_run(buf, (size_t)n, 1, mnl_socket_get_portid(fl->nl),
			  NULL, NULL) < 0
		   ? -errno
		   : 0;
}

struct flowlog *flowlog_open(unsigned group, char *err, size_t errlen)
{
	struct flowlog *fl = xcalloc(1, sizeof(*fl));
	struct nfulnl_msg_config_cmd bind = {NFULNL_CFG_CMD_BIND};
	struct nfulnl_msg_config_mode mode = {
	    .copy_range = htonl(FLOWLOG_COPY_RANGE),
	    .copy_mode = NFULNL_COPY_PACKET,
	};
	/* batch up to 32 packets, but never hold one longer than 0.1 s */
	uint32_t qthresh = htonl(32), timeout = htonl(10);
	int r, rcvbuf = RCVBUF;

	fl->group = group;
	fl->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!fl->nl || mnl_socket_bind(fl->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "NFLOG socket: %s", strerror(errno));
		goto fail;
	}
	r = config(fl, group, NFULA_CFG_CMD, &bind, sizeof(bind));
	if (!r)
		r = config(fl, group, NFULA_CFG_MODE, &mode, sizeof(mode));
	if (!r)
		r = config(fl, group, NFULA_CFG_QTHRESH, &qthresh,
			   sizeof(qthresh));
	if (!r)
		r = config(fl, group, NFULA_CFG_TIMEOUT, &timeout,
			   sizeof(timeout));
	if (r) {
		snprintf(err, errlen, "NFLOG group %u: %s%s", group,
			 strerror(-r),
			 r == -EBUSY ? " (another program, ulogd perhaps, "
				       "holds it; settings.log_group picks "
				       "another)"
				     : "");
		goto fail;
	}
	/* a flood must not turn into ENOBUFS at once; and asking for no
	 * ENOBUFS at all would hide the overruns we count */
	rcvbuf_grow(mnl_socket_get_fd(fl->nl), rcvbuf);
	setsockopt(mnl_socket_get_fd(fl->nl), SOL_NETLINK, NETLINK_NO_ENOBUFS,
		   &(int){0}, sizeof(int));
	fcntl(mnl_socket_get_fd(fl->nl), F_SETFL, O_NONBLOCK);
	return fl;
fail:
	flowlog_close(fl);
	return NULL;
}

void flowlog_close(struct flowlog *fl)
{
	if (!fl)
		return;
	if (fl->nl)
		mnl_socket_close(fl->nl);
	free(fl);
}

int flowlog_fd(const struct flowlog *fl)
{
	return mnl_socket_get_fd(fl->nl);
}

const struct flowlog_stats *flowlog_stats(const struct flowlog *fl)
{
	return &fl->st;
}

void flowlog_feed(struct flowlog_stats *st, const void *buf, size_t len,
		  flowlog_fn cb, void *ctx)
{
	const struct nlmsghdr *nlh;

	for (nlh = buf; nlmsg_fits(nlh, len); nlh = nlmsg_next(nlh, &len)) {
		struct flow_pkt pkt;
		int r = flowlog_decode(nlh, nlh->nlmsg_len, &pkt);

		if (r == -ENOMSG)
			st->foreign++;
		else if (r)
			st->malformed++;
		else {
			st->packets++;
			cb(ctx, &pkt);
		}
	}
}

void flowlog_read(struct flowlog *fl, flowlog_fn cb, void *ctx)
{
	int rounds;

	/* a bounded number of datagrams per wakeup: a flood never starves
	 * the rest of the loop */
	for (rounds = 0; rounds < 256; rounds++) {
		ssize_t n = recv(mnl_socket_get_fd(fl->nl), fl->buf,
				 sizeof(fl->buf), 0);

		if (n < 0 && errno == ENOBUFS) {
			fl->st.overruns++;
			continue;
		}
		if (n <= 0)
			return;
		flowlog_feed(&fl->st, fl->buf, (size_t)n, cb, ctx);
	}
}

/* --- accounting ---------------------------------------------------------- */

int64_t flowlog_denied_packets(const struct ir_ruleset *have)
{
	const struct ir_chain *c = have ? ir_chain_find(have, "deny") : NULL;
	int64_t n = -1;
	size_t i;

	for (i = 0; c && i < c->n; i++)
		if (c->r[i].counter)
			n = (int64_t)c->r[i].packets;
	return n;
}

void flowlog_account_count(struct flowlog_account *a,
			   const struct ir_ruleset *have)
{
	int64_t n = flowlog_denied_packets(have);
	uint64_t denied, logged;

	if (n < 0)
		return;
	if (!a->has_base || (uint64_t)n < a->denied_base) {
		/* first look, or the table was replaced under us */
		a->denied_base = a->has_base ? 0 : (uint64_t)n;
		a->records_base = a->records;
		a->has_base = true;
	}
	denied = (uint64_t)n - a->denied_base;
	logged = a->records - a->records_base;
	a->suppressed = denied > logged ? (unsigned long)(denied - logged) : 0;
}

void flowlog_account_restart(struct flowlog_account *a)
{
	if (a->has_base) {
		a->denied_base = 0;
		a->records_base = a->records;
	}
}

bool flowlog_account_due(const struct flowlog_account *a, time_t now)
{
	return now - a->last_summary >= 60;
}

json_t *flowlog_account_summary(struct flowlog_account *a,
				const struct flowlog_stats *st,
				unsigned long lost, time_t now, const char *ts)
{
	json_t *rec;

	if (st->overruns == a->summarized.overruns &&
	    st->malformed == a->summarized.malformed &&
	    a->suppressed == a->summarized_supp && lost == a->summarized_lost)
		return NULL;
	rec = json_pack(
	    "{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "ts", ts, "verdict",
	    "summary", "lost", (json_int_t)lost, "suppressed",
	    (json_int_t)(a->suppressed > a->summarized_supp
			     ? a->suppressed - a->summarized_supp
			     : 0),
	    "overruns", (json_int_t)(st->overruns - a->summarized.overruns),
	    "malformed", (json_int_t)(st->malformed - a->summarized.malformed),
	    "records", (json_int_t)a->records);
	a->summarized_supp = a->suppressed;
	a->summarized_lost = lost;
	a->summarized = *st;
	a->last_summary = now;
	return rec;
}

void flowlog_time(uint64_t us, char *buf, size_t len)
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03uZ", (unsigned)(us / 1000 % 1000));
}
