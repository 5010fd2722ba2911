/* Drives the daemon's revocation index through churn in this network
 * namespace (run it in a throwaway one: tests/integration/revoke-index.sh)
 * and checks each container's leaving against a model of the table:
 *
 *   revoke-helper POLICY INVENTORY
 *   revoke-helper addrs     the host's addresses as the events keep them
 *                           against getifaddrs, through interfaces and
 *                           addresses coming and going
 *
 * Flows between 2,500 addresses (world addresses: the policy keeps
 * them all until one leaves) are opened, some closed, more opened, so that
 * the index and its chains by address grow and are made anew while
 * flows come and go, with a flow whose two ends are one address among
 * them. Some flows are there before the index reads the table, and the
 * kernel tells no end of those (nf_conntrack_events=2): closed, they
 * stay in the index, and a leaving must not count them as ended; a new
 * flow on one's tuple is told as opened. Then addresses leave, one at a
 * time and two at once: each sweep must end exactly the flows still
 * open with an end there, and leave every other entry in the kernel.
 * Last, a prune drops the flows that ended untold: the index then holds
 * the open flows alone. Exit 1 with what differs; 2 on bad arguments. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "bulkhead/compile.h"
#include "bulkhead/hostaddr.h"
#include "bulkhead/revoke.h"
#include "bulkhead/trace.h"

enum { ADDRS = 2500, FLOWS = 3000, BEFORE = 500, AGAIN = 10 };

struct flow {
	uint32_t s, d;
	uint16_t sport;
	bool open;
};
static struct flow fl[FLOWS];
static size_t nfl;
/* once tracking: its events read every 256 changes, as the daemon reads
 * them as they come (a burst past the socket's buffer is lost, and the
 * index read anew) */
static struct revoke *tracking;

static uint32_t addr(unsigned i)
{
	return 0x0d000001u + i; /* 13.0.0.1 on */
}

static struct nf_conntrack *tuple(const struct flow *f)
{
	struct nf_conntrack *ct = nfct_new();

	nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u32(ct, ATTR_IPV4_SRC, htonl(f->s));
	nfct_set_attr_u32(ct, ATTR_IPV4_DST, htonl(f->d));
	nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_UDP);
	nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(f->sport));
	nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(53));
	return ct;
}

static void query(struct nfct_handle *h, const struct flow *f, bool create)
{
	struct nf_conntrack *ct = tuple(f);

	if (create) {
		nfct_set_attr_u32(ct, ATTR_REPL_IPV4_SRC, htonl(f->d));
		nfct_set_attr_u32(ct, ATTR_REPL_IPV4_DST, htonl(f->s));
		nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(53));
		nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(f->sport));
		nfct_set_attr_u32(ct, ATTR_TIMEOUT, 600);
		nfct_setobjopt(ct, NFCT_SOPT_SETUP_REPLY);
	}
	static unsigned changes;

	if (nfct_query(h, create ? NFCT_Q_CREATE : NFCT_Q_DESTROY, ct)) {
		fprintf(stderr, "revoke-helper: %s a flow: %s\n",
			create ? "creating" : "deleting", strerror(errno));
		exit(1);
	}
	nfct_destroy(ct);
	if (tracking && ++changes % 256 == 0)
		revoke_events(tracking);
}

static void open_flows(struct nfct_handle *h, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n && nfl < FLOWS; i++) {
		struct flow *f = &fl[nfl];
		unsigned a = (seed + (unsigned)nfl * 7u) % ADDRS,
			 b = (seed + (unsigned)nfl * 13u + 1u) % ADDRS;

		f->s = addr(a);
		f->d = addr(nfl % 97 == 0 ? a : b); /* now and then, itself */
		f->sport = (uint16_t)(1024 + nfl);
		f->open = true;
		query(h, f, true);
		nfl++;
	}
}

static size_t open_with(const uint32_t *a, size_t na)
{
	size_t i, j, n = 0;

	for (i = 0; i < nfl; i++) {
		bool hit = false;

		for (j = 0; j < na; j++)
			hit |=
			    fl[i].open && (fl[i].s == a[j] || fl[i].d == a[j]);
		n += hit;
	}
	return n;
}

static int count_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct,
		    void *data)
{
	(void)type;
	(void)ct;
	++*(size_t *)data;
	return NFCT_CB_CONTINUE;
}

/* Openings told of flows first opened before the index read the table */
static uint32_t on_open(void *ctx, const struct revoke_event *ev)
{
	if (ev->open && ev->f->sport < 1024 + BEFORE)
		++*(size_t *)ctx;
	return 1;
}

/* nf_conntrack_events=2: ends told only of entries made with a listener */
static bool events_auto(void)
{
	FILE *f = fopen("/proc/sys/net/netfilter/nf_conntrack_events", "r");
	int v = 0;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v == 2;
}

static size_t in_kernel(void)
{
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	uint32_t fam = AF_INET;
	size_t n = 0;

	nfct_callback_register(h, NFCT_T_ALL, count_cb, &n);
	nfct_query(h, NFCT_Q_DUMP, &fam);
	nfct_close(h);
	return n;
}

/* The addresses a[0..na) leave: the sweep must end their open flows. */
static int leave(struct revoke *rv, struct revoke_judge j, const uint32_t *a,
		 size_t na)
{
	struct revoke_addr gone[2];
	struct revoke_result res;
	size_t want = open_with(a, na), i, k, left = 0;
	char err[256];

	for (i = 0; i < na; i++)
		gone[i] = (struct revoke_addr){.family = AF_INET, .addr = a[i]};
	j.gone = gone;
	j.ngone = na;
	j.only_gone = true;
	if (revoke_sweep(rv, &j, &res, err, sizeof(err))) {
		fprintf(stderr, "revoke-helper: %s\n", err);
		return 1;
	}
	sb_free(&res.pairs);
	for (i = 0; i < nfl; i++)
		for (k = 0; k < na; k++)
			if (fl[i].s == a[k] || fl[i].d == a[k])
				fl[i].open = false;
	for (i = 0; i < nfl; i++)
		left += fl[i].open;
	if (res.ended != want || res.seen < want) {
		fprintf(stderr,
			"revoke-helper: a leaving of %zu address(es) judged "
			"%zu and ended %zu flows; %zu were open there\n",
			na, res.seen, res.ended, want);
		return 1;
	}
	if (in_kernel() != left) {
		fprintf(stderr,
			"revoke-helper: %zu entries in the kernel after a "
			"leaving, %zu expected\n",
			in_kernel(), left);
		return 1;
	}
	return 0;
}

/* v[0..n) sorted, duplicates dropped: its new length. */
static size_t uniq(struct revoke_addr *v, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (!k || revoke_addr_cmp(&v[k - 1], &v[i]))
			v[k++] = v[i];
	return k;
}

/* The events read, the kept addresses are getifaddrs' (and each is
 * found); step names what was just done. */
static int same_addrs(struct hostaddrs *h, const char *step)
{
	size_t nkept, nk, ng, i;
	const struct revoke_addr *kept;
	struct revoke_addr *mine, *g = revoke_host_addrs(&ng);

	if (hostaddrs_read(h)) {
		fprintf(stderr, "revoke-helper: reading address events\n");
		return 1;
	}
	kept = hostaddrs_get(h, &nkept);
	mine = xcalloc(nkept + 1, sizeof(*mine));
	if (nkept)
		memcpy(mine, kept, nkept * sizeof(*mine));
	nk = uniq(mine, nkept);
	ng = uniq(g, ng);
	for (i = 0; i < ng && nk == ng; i++)
		if (revoke_addr_cmp(&mine[i], &g[i]) ||
		    !revoke_addr_has(kept, nkept, g[i].family, g[i].addr))
			break;
	free(mine);
	free(g);
	if (nk != ng || i != ng) {
		fprintf(stderr,
			"revoke-helper: after %s, %zu addresses kept, "
			"getifaddrs has %zu\n",
			step, nk, ng);
		return 1;
	}
	printf("%s: %zu addresses, as getifaddrs\n", step, nk);
	return 0;
}

static int run(const char *cmd)
{
	if (system(cmd)) {
		fprintf(stderr, "revoke-helper: %s failed\n", cmd);
		return 1;
	}
	return 0;
}

static int addrs(void)
{
	char err[256];
	struct hostaddrs *h = hostaddrs_open(err, sizeof(err));
	const struct revoke_addr *v;
	size_t n;
	int r;

	if (!h) {
		fprintf(stderr, "revoke-helper: %s\n", err);
		return 1;
	}
	/* without duplicate address detection: the kernel tells of an IPv6
	 * address once it is done, and getifaddrs lists it before */
	r = same_addrs(h, "open") ||
	    run("sysctl -qw net.ipv6.conf.all.accept_dad=0 "
		"net.ipv6.conf.default.accept_dad=0") ||
	    run("ip link set lo up") || same_addrs(h, "lo up") ||
	    run("ip link add v0 type veth peer name p0 && "
		"ip link set v0 up && ip link set p0 up && "
		"ip addr add 198.51.100.1/24 dev v0 && "
		"ip addr add 198.51.100.1/24 dev p0 && "
		"ip addr add 2001:db8::1/64 dev v0 nodad") ||
	    same_addrs(h, "an address on two interfaces") ||
	    run("ip addr del 198.51.100.1/24 dev v0") ||
	    same_addrs(h, "one of them taken away");
	v = hostaddrs_get(h, &n);
	if (!r && !revoke_addr_has(v, n, AF_INET, 0xc6336401u)) {
		fprintf(stderr, "revoke-helper: 198.51.100.1 is gone, but "
				"p0 holds it\n");
		r = 1;
	}
	/* a burst: 100 veths (their link-locals), then the burst gone */
	r = r ||
	    run("for i in $(seq 100); do echo \"link add a$i type veth peer "
		"name b$i\"; echo \"link set a$i up\"; echo \"link set b$i "
		"up\"; done >/tmp/bh-addrs.$$ && ip -batch /tmp/bh-addrs.$$; "
		"e=$?; rm -f /tmp/bh-addrs.$$; exit $e") ||
	    same_addrs(h, "100 veths up") ||
	    run("ip link del v0 && for i in $(seq 100); do echo \"link del "
		"a$i\"; done >/tmp/bh-addrs.$$ && ip -batch /tmp/bh-addrs.$$; "
		"e=$?; rm -f /tmp/bh-addrs.$$; exit $e") ||
	    same_addrs(h, "the veths deleted");
	hostaddrs_free(h);
	if (!r)
		printf("ok: the host's addresses kept by events are "
		       "getifaddrs' at every step\n");
	return r;
}

static int flows(char **argv)
{
	struct diags d = {0};
	struct policy *p;
	struct inventory *inv = inventory_new();
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	struct revoke_judge j = {0};
	struct revoke_result res;
	struct revoke *rv;
	struct compiler *cc;
	uint32_t two[2];
	char err[256] = "";
	size_t i, leavings = 0, again = 0, reopened = 0, before, pruned,
		  open = 0;

	p = policy_load(argv[1], &d);
	if (!p || inventory_load(inv, argv[2], &d) || !h) {
		diags_print(&d, stderr);
		return 2;
	}
	cc = compile_new(p, NULL);
	j.cc = cc;
	j.p = p;
	j.inv = inv;
	j.ix = trace_index_new(cc, p, inv);
	open_flows(h, BEFORE, 0);
	rv = revoke_new(err, sizeof(err));
	if (!rv || revoke_track(rv, err, sizeof(err))) {
		fprintf(stderr, "revoke-helper: %s\n", err);
		return 1;
	}
	revoke_on_events(rv, on_open, &reopened);
	tracking = rv;
	/* churn, read through the events: a third closed, then more opened
	 * than the first index holds (it grows, the chains are made anew) */
	for (i = 0; i < nfl; i += 3) {
		query(h, &fl[i], false);
		fl[i].open = false;
	}
	open_flows(h, 1500, 11);
	/* flows on the tuples of some closed before: new entries */
	for (i = 0; i < BEFORE && again < AGAIN; i += 3, again++) {
		query(h, &fl[i], true);
		fl[i].open = true;
	}
	revoke_events(rv);
	if (reopened != AGAIN) {
		fprintf(stderr,
			"revoke-helper: %zu flows opened on a tuple the index "
			"held, %zu told\n",
			again, reopened);
		return 1;
	}
	for (i = 1; i < nfl; i += 5)
		if (fl[i].open) {
			query(h, &fl[i], false);
			fl[i].open = false;
		}
	open_flows(h, FLOWS, 29);
	/* a full sweep keeps every flow: nothing of them is ours */
	if (revoke_sweep(rv, &j, &res, err, sizeof(err)) || res.ended) {
		fprintf(stderr, "revoke-helper: the full sweep ended %zu: %s\n",
			res.ended, err);
		return 1;
	}
	sb_free(&res.pairs);
	for (i = 0; i < ADDRS; i += 17, leavings++) {
		two[0] = addr((unsigned)i);
		if (leave(rv, j, two, 1))
			return 1;
	}
	for (i = 1; i + 1 < ADDRS; i += 31, leavings++) {
		two[0] = addr((unsigned)i);
		two[1] = addr((unsigned)i + 1);
		if (leave(rv, j, two, 2))
			return 1;
	}
	two[0] = addr(ADDRS + 5); /* held no flow */
	if (leave(rv, j, two, 1))
		return 1;
	before = revoke_tracked(rv);
	pruned = revoke_prune(rv, err, sizeof(err));
	for (i = 0; i < nfl; i++)
		open += fl[i].open;
	if (revoke_tracked(rv) != open || before - pruned != open) {
		fprintf(stderr,
			"revoke-helper: %zu flows open, the index held %zu, "
			"%zu after pruning %zu %s\n",
			open, before, revoke_tracked(rv), pruned, err);
		return 1;
	}
	/* where the kernel tells ends only of entries made with a listener,
	 * those closed before it listened ended untold */
	if (!pruned && events_auto()) {
		fprintf(stderr, "revoke-helper: no flow from before the index "
				"read the table was pruned\n");
		return 1;
	}
	if (revoke_overruns(rv)) {
		fprintf(stderr, "revoke-helper: conntrack's events overran\n");
		return 1;
	}
	printf("ok: %zu leavings over %zu flows (opened, closed, reopened) "
	       "ended exactly the flows with an end there; %zu that ended "
	       "untold pruned\n",
	       leavings + 1, nfl, pruned);
	revoke_free(rv);
	nfct_close(h);
	trace_index_free((struct trace_index *)j.ix);
	compile_free(cc);
	inventory_free(inv);
	policy_free(p);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "addrs"))
		return addrs();
	if (argc != 3) {
		fprintf(stderr, "usage: revoke-helper POLICY INVENTORY\n"
				"       revoke-helper addrs\n");
		return 2;
	}
	return flows(argv);
}
