/* Revocation benchmark: N conntrack entries created in this network
 * namespace (run it in a throwaway one: bench/revoke.sh), K of them
 * between containers of the three-tier fixture that the policy does not
 * allow (nginx -> db), the rest allowed (backend -> db) or not ours
 * (world to world); one sweep judges them all by trace's decision and
 * ends the K. Prints the sweep's time and what it ended.
 *
 * Then a container's leaving: the sweep that ends the flows of an
 * address given up (G of them), with 1,000 entries present and with N,
 * the median of R leavings at each: it looks at that address's flows,
 * not the table, so the two are within 1.5x. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "bulkhead/compile.h"
#include "bulkhead/revoke.h"
#include "bulkhead/trace.h"

enum { R = 5, G = 10, SMALL = 1000 };

static int create(struct nfct_handle *h, uint32_t src, uint32_t dst,
		  uint16_t sport, uint16_t dport)
{
	struct nf_conntrack *ct = nfct_new();
	int r;

	nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
	nfct_set_attr_u32(ct, ATTR_IPV4_SRC, htonl(src));
	nfct_set_attr_u32(ct, ATTR_IPV4_DST, htonl(dst));
	nfct_set_attr_u32(ct, ATTR_REPL_IPV4_SRC, htonl(dst));
	nfct_set_attr_u32(ct, ATTR_REPL_IPV4_DST, htonl(src));
	nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_UDP);
	nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(sport));
	nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(dport));
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(dport));
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(sport));
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, 600);
	nfct_setobjopt(ct, NFCT_SOPT_SETUP_REPLY);
	r = nfct_query(h, NFCT_Q_CREATE, ct);
	nfct_destroy(ct);
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* World-to-world entries [from, to) of the N (10.x -> 11.0.0.1:53),
 * with the K denied and 20,000 allowed among the first of them. */
static int fill(struct nfct_handle *h, long from, long to, long k)
{
	const uint32_t nginx = 0xac1c0502, backend = 0xac1c0503,
		       db = 0xac1c0504; /* the fixture's addresses */
	long i;

	for (i = from; i < to; i++) {
		uint32_t s = 0x0a000000u + (uint32_t)i, t = 0x0b000001u;
		uint16_t sport = 40000, dport = 53; /* not ours */

		if (i < k) { /* no edge: ends */
			s = nginx, t = db, dport = 5432;
			sport = (uint16_t)(1024 + i);
		} else if (i < k + 20000) { /* allowed: stays */
			s = nginx, t = backend, dport = 8125;
			sport = (uint16_t)(1024 + i - k);
		}
		if (create(h, s, t, sport, dport) && errno != EEXIST) {
			fprintf(stderr,
				"revoke bench: creating entry %ld: %s\n", i,
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* R leavings of the addresses 12.0.<set>.1..R, G flows each (made
 * before): the median sweep in ms, or -1 when one ended other than G. */
static double leavings(struct revoke *rv, struct revoke_judge j, int set)
{
	struct revoke_addr gone = {.family = AF_INET};
	struct revoke_result res;
	double ms[R];
	char err[256];
	int r;

	j.gone = &gone;
	j.ngone = 1;
	j.only_gone = true;
	for (r = 0; r < R; r++) {
		gone.addr = 0x0c000001u + (uint32_t)(set << 8) + (uint32_t)r;
		if (revoke_sweep(rv, &j, &res, err, sizeof(err))) {
			fprintf(stderr, "revoke bench: %s\n", err);
			return -1;
		}
		sb_free(&res.pairs);
		if (res.ended != G) {
			fprintf(stderr,
				"revoke bench: a leaving ended %zu flows, "
				"not %d\n",
				res.ended, G);
			return -1;
		}
		ms[r] = res.ms;
	}
	qsort(ms, R, sizeof(ms[0]), cmp_double);
	return ms[R / 2];
}

int main(int argc, char **argv)
{
	const char *pol = argc > 1 ? argv[1] : "policies/three-tier.yaml";
	const char *invf =
	    argc > 2 ? argv[2] : "tests/fixtures/three-tier.json";
	long n = argc > 3 ? atol(argv[3]) : 100000,
	     k = argc > 4 ? atol(argv[4]) : 100;
	const uint32_t nginx = 0xac1c0502, db = 0xac1c0504;
	struct diags d = {0};
	struct policy *p = policy_load(pol, &d);
	struct inventory *inv = inventory_new();
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	struct revoke_result res;
	struct revoke_judge j = {0};
	struct revoke *rv;
	struct compiler *cc;
	double small, big;
	char err[256];
	long i;
	int set, r;

	if (!p || inventory_load(inv, invf, &d) || !h || n < SMALL + k) {
		diags_print(&d, stderr);
		fprintf(stderr, "revoke bench: setup failed: %s\n",
			strerror(errno));
		return 1;
	}
	cc = compile_new(p, NULL);
	j.cc = cc;
	j.p = p;
	j.inv = inv;
	j.ix = trace_index_new(cc, p, inv);
	/* the leavers' flows (world to world: kept until they leave) */
	for (set = 0; set < 2; set++)
		for (r = 0; r < R; r++)
			for (i = 0; i < G; i++)
				if (create(h,
					   0x0c000001u + (uint32_t)(set << 8) +
					       (uint32_t)r,
					   0x0b000002u, (uint16_t)(2000 + i),
					   53)) {
					perror("revoke bench: a leaver's flow");
					return 1;
				}
	/* the daemon's way: the table read once into the index (at its
	 * start), kept by events; a sweep judges the index */
	rv = revoke_new(err, sizeof(err));
	if (!rv || fill(h, k + 20000, k + 20000 + SMALL, 0) ||
	    revoke_track(rv, err, sizeof(err)) ||
	    (small = leavings(rv, j, 0)) < 0) {
		fprintf(stderr, "revoke bench: %s\n", err);
		return 1;
	}
	/* the rest of the N, read anew (more than the events' buffer) */
	if (fill(h, 0, k + 20000, k) || fill(h, k + 20000 + SMALL, n, k) ||
	    revoke_track(rv, err, sizeof(err)) ||
	    revoke_sweep(rv, &j, &res, err, sizeof(err))) {
		fprintf(stderr, "revoke bench: %s\n", err);
		return 1;
	}
	printf("revocation: %zu entries judged, %zu ended in %.1f ms "
	       "(target: under 100 ms with 100,000 present): %s\n",
	       res.seen, res.ended, res.ms,
	       res.ms < 100 && res.ended == (size_t)k ? "met" : "MISSED");
	sb_free(&res.pairs);
	if ((big = leavings(rv, j, 1)) < 0)
		return 1;
	printf("a container's leaving (%d flows ended), median of %d: %.3f ms "
	       "with %d entries, %.3f ms with %ld; ratio %.2fx "
	       "(target: within 1.5x): %s\n",
	       G, R, small, SMALL, big, n, big / small,
	       big < small * 1.5 ? "met" : "MISSED");
	revoke_free(rv);
	/* one-shot apply's way: the table read and judged in one pass */
	for (i = 0; i < k; i++)
		create(h, nginx, db, (uint16_t)(1024 + i), 5432);
	nfct_close(h);
	rv = revoke_new(err, sizeof(err));
	if (!rv || revoke_sweep(rv, &j, &res, err, sizeof(err))) {
		fprintf(stderr, "revoke bench: %s\n", err);
		return 1;
	}
	printf("revocation by one read of the table (apply): %zu entries, "
	       "%zu ended in %.1f ms\n",
	       res.seen, res.ended, res.ms);
	sb_free(&res.pairs);
	revoke_free(rv);
	trace_index_free((struct trace_index *)j.ix);
	compile_free(cc);
	inventory_free(inv);
	policy_free(p);
	return 0;
}
