/* The denied-flow path without the kernel (design §6, 200,000 records a
 * second): NFLOG datagrams as the kernel batches them (32 messages of
 * bulkhead's prefix and a 128-byte copy each, between containers of the
 * inventory picked at random, TCP, UDP and ICMP) are replayed through
 * what the daemon runs for each: decode, attribution against the
 * inventory's address index, the JSON line, the write to a file. Prints the
 * rate of decode alone and of the whole path, and the ratio to the target.
 * Then the allowed path (100,000 events a second): connections between
 * containers that an edge allows, each opened and ended as conntrack's
 * events tell the daemon, through the decision, the open and close
 * records and their writes.
 *
 * usage: flowlog POLICY INVENTORY OUT.jsonl [RECORDS] */
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>

#include "bulkhead/allowed.h"
#include "bulkhead/flowlog.h"
#include "bulkhead/metrics.h"

#define BATCH 32
#define DATAGRAMS 256

struct sinkctx {
	const struct compiler *cc;
	const struct policy *p;
	const struct inventory *inv, *gone;
	const struct trace_index *gix; /* gone's */
	struct trace_index *ix;
	struct strbuf line;
	struct flowlog_sink *sink;
	struct metrics *m; /* counted as the daemon counts with --metrics */
	unsigned long n, lost;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static u128 some_addr(const struct inventory *inv)
{
	const struct inv_container *c = &inv->c[(size_t)rand() % inv->n];

	return c->nets[0].ip4;
}

/* One datagram of BATCH messages; its length. */
static size_t datagram(char *buf, const struct inventory *inv)
{
	static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP,
					 IPPROTO_ICMP};
	size_t len = 0;
	int i;

	for (i = 0; i < BATCH; i++) {
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + len);
		uint8_t pl[FLOWLOG_COPY_RANGE] = {0x45};
		u128 s = some_addr(inv), d = some_addr(inv);
		uint32_t s4 = htonl((uint32_t)s), d4 = htonl((uint32_t)d);

		nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
		mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg));
		pl[9] = protos[i % 3];
		memcpy(pl + 12, &s4, 4);
		memcpy(pl + 16, &d4, 4);
		pl[20] = 0x9c;
		pl[22] = (uint8_t)(rand() & 0xff); /* destination ports vary */
		pl[23] = (uint8_t)(rand() & 0xff);
		mnl_attr_put_u32(nlh, NFULA_IFINDEX_INDEV, htonl(3));
		mnl_attr_put_u32(nlh, NFULA_IFINDEX_OUTDEV, htonl(3));
		mnl_attr_put(nlh, NFULA_PAYLOAD, sizeof(pl), pl);
		mnl_attr_put_strz(nlh, NFULA_PREFIX, "bulkhead deny ");
		len += MNL_ALIGN(nlh->nlmsg_len);
	}
	return len;
}

static void count_only(void *ctx, const struct flow_pkt *pkt)
{
	(void)pkt;
	((struct sinkctx *)ctx)->n++;
}

static void write_record(void *ctx, const struct flow_pkt *pkt)
{
	struct sinkctx *c = ctx;

	struct trace_decision dec;

	c->line.len = 0;
	flowlog_attribute(pkt, c->cc, c->p, c->ix, c->gix,
			  "2026-11-23T02:00:00.000Z", &c->line, &dec);
	flowlog_count(c->m, pkt, &dec, c->p, c->gix);
	flowlog_sink_write_line(c->sink, c->line.s, c->line.len);
	c->n++;
}

/* Of n records handed to the sink since the last call, those written:
 * the lost ones (the writer behind) are said and not counted. */
static unsigned long written(struct sinkctx *c, unsigned long n)
{
	struct flowlog_sink_stats st;
	unsigned long lost;

	if (!c->sink)
		return n;
	flowlog_sink_stats(c->sink, &st);
	lost = st.lost - c->lost;
	c->lost = st.lost;
	if (lost)
		printf("(%lu of %lu records lost: the writer fell behind)\n",
		       lost, n);
	return n - lost;
}

static double run(char **bufs, size_t *lens, unsigned long records,
		  flowlog_fn fn, struct sinkctx *c)
{
	struct flowlog_stats st = {0};
	double t = now_s();
	size_t i = 0;

	c->n = 0;
	while (c->n < records) {
		flowlog_feed(&st, bufs[i % DATAGRAMS], lens[i % DATAGRAMS], fn,
			     c);
		i++;
		/* the daemon wakes the writer after each batch */
		if (c->sink)
			flowlog_sink_flush(c->sink);
	}
	/* on file, not only queued: the writer's time counts */
	if (c->sink)
		flowlog_sink_drain(c->sink, 60000);
	return (double)written(c, c->n) / (now_s() - t);
}

#define FLOWS 4096

/* Connections an edge allows: random pairs of containers kept when the
 * decision allows them on the first port of the edge they fit. */
static size_t allowed_flows(struct sinkctx *c, struct revoke_flow *v)
{
	size_t n = 0, tries;

	for (tries = 0; n < FLOWS && tries < 200 * FLOWS; tries++) {
		struct revoke_flow f = {AF_INET,
					some_addr(c->inv),
					some_addr(c->inv),
					IPPROTO_TCP,
					40000,
					0};
		struct trace_decision d;
		size_t e = (size_t)rand() % c->p->nedges;

		f.proto = c->p->edges[e].ports[0].proto_lo;
		f.dport = c->p->edges[e].ports[0].lo;
		if (f.proto != IPPROTO_TCP && f.proto != IPPROTO_UDP)
			continue;
		trace_decide_ix(c->cc, c->p, c->ix, AF_INET, f.saddr, f.daddr,
				false, f.proto, f.dport, &d);
		if (d.allowed && d.edge >= 0)
			v[n++] = f;
	}
	return n;
}

/* Each flow opened and ended, both records written: events a second. */
static double run_allowed(struct sinkctx *c, const struct revoke_flow *v,
			  size_t nv, unsigned long events)
{
	struct allowed_judge j = {c->cc, c->p, c->ix, c->gix, NULL, 0, c->m};
	struct allowed *a = allowed_new();
	double t = now_s();
	unsigned long n = 0;

	while (n < events) {
		struct revoke_event ev = {.f = &v[n / 2 % nv],
					  .counted = true,
					  .packets = {12, 10},
					  .bytes = {4096, 2048}};

		c->line.len = 0;
		ev.tag = allowed_open(
		    a, &j, ev.f, "2026-12-02T05:00:00.000000Z", n, &c->line);
		flowlog_sink_write_line(c->sink, c->line.s, c->line.len);
		c->line.len = 0;
		allowed_close(a, c->m, &ev, "2026-12-02T05:00:01.000000Z",
			      n + 1, &c->line);
		flowlog_sink_write_line(c->sink, c->line.s, c->line.len);
		n += 2;
		if (!(n % 64))
			flowlog_sink_flush(c->sink); /* a batch's end */
	}
	flowlog_sink_drain(c->sink, 60000);
	t = (double)written(c, n) / (now_s() - t);
	allowed_free(a);
	return t;
}

int main(int argc, char **argv)
{
	struct diags dg = {0};
	struct sinkctx c = {0};
	struct inventory *inv = inventory_new(), *gone = inventory_new();
	struct policy *p;
	struct compiler *cc;
	unsigned long records;
	char *bufs[DATAGRAMS], err[256];
	size_t lens[DATAGRAMS], i, nflows;
	static struct revoke_flow flows[FLOWS];
	double decode, whole;

	if (argc < 4)
		return 2;
	records = argc > 4 ? strtoul(argv[4], NULL, 10) : 1000000;
	p = policy_load(argv[1], &dg);
	if (!p || inventory_load(inv, argv[2], &dg) || !inv->n) {
		diags_print(&dg, stderr);
		return 2;
	}
	cc = compile_new(p, NULL);
	srand(1);
	for (i = 0; i < DATAGRAMS; i++) {
		bufs[i] = malloc(BATCH * 512);
		lens[i] = datagram(bufs[i], inv);
	}
	c.cc = cc;
	c.p = p;
	c.inv = inv;
	c.gone = gone;
	c.gix = trace_index_new(cc, p, gone);
	c.m = metrics_new(); /* as with run --metrics: every flow counted */
	decode = run(bufs, lens, records, count_only, &c);
	c.ix = trace_index_new(cc, p, inv);
	c.sink = flowlog_sink_open(argv[3], 0, 1, err, sizeof(err));
	if (!c.sink) {
		fprintf(stderr, "flowlog: %s\n", err);
		return 1;
	}
	whole = run(bufs, lens, records, write_record, &c);
	printf("%zu containers: decode %.0f records/s; decode, attribute and "
	       "write %.0f records/s (%.2fx the 200000 target)\n",
	       inv->n, decode, whole, whole / 200000);
	/* every edge logged, and no rate limit in the way */
	p->log_allowed = true;
	p->log_rate = 1000000;
	p->log_rate_unit = "second";
	for (i = 0; i < p->nedges; i++)
		p->edges[i].log = -1;
	nflows = allowed_flows(&c, flows);
	if (!nflows) {
		printf("%zu containers: no connection an edge allows\n",
		       inv->n);
	} else {
		double ev = run_allowed(&c, flows, nflows, records);

		printf("%zu containers: allowed flows opened and closed, "
		       "judged and both records written: %.0f events/s "
		       "(%.2fx the 100000 target)\n",
		       inv->n, ev, ev / 100000);
	}
	flowlog_sink_close(c.sink);
	metrics_free(c.m);
	trace_index_free(c.ix);
	sb_free(&c.line);
	for (i = 0; i < DATAGRAMS; i++)
		free(bufs[i]);
	compile_free(cc);
	inventory_free(inv);
	trace_index_free((struct trace_index *)c.gix);
	inventory_free(gone);
	policy_free(p);
	diags_free(&dg);
	return 0;
}
