/* Revocation benchmark: N conntrack entries created in this network
 * namespace (run it in a throwaway one: bench/revoke.sh), K of them
 * between containers of the three-tier fixture that the policy does not
 * allow (nginx -> db), the rest allowed (backend -> db) or not ours
 * (world to world); one sweep judges them all by trace's decision and
 * ends the K. Prints the sweep's time and what it ended. */
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

int main(int argc, char **argv)
{
	const char *pol = argc > 1 ? argv[1] : "policies/three-tier.yaml";
	const char *invf =
	    argc > 2 ? argv[2] : "tests/fixtures/three-tier.json";
	long n = argc > 3 ? atol(argv[3]) : 100000,
	     k = argc > 4 ? atol(argv[4]) : 100;
	const uint32_t nginx = 0xac1c0502, backend = 0xac1c0503,
		       db = 0xac1c0504; /* the fixture's addresses */
	struct diags d = {0};
	struct policy *p = policy_load(pol, &d);
	struct inventory *inv = inventory_new();
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	struct revoke_result res;
	struct revoke_judge j = {0};
	struct revoke *rv;
	struct compiler *cc;
	char err[256];
	long i;

	if (!p || inventory_load(inv, invf, &d) || !h) {
		diags_print(&d, stderr);
		fprintf(stderr, "revoke bench: setup failed: %s\n",
			strerror(errno));
		return 1;
	}
	for (i = 0; i < n; i++) {
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
			return 1;
		}
	}
	nfct_close(h);
	cc = compile_new(p, NULL);
	j.cc = cc;
	j.p = p;
	j.inv = inv;
	j.ix = trace_index_new(cc, p, inv);
	/* the daemon's way: the table read once into the index (at its
	 * start), kept by events; a sweep judges the index */
	rv = revoke_new(err, sizeof(err));
	if (!rv || revoke_track(rv, err, sizeof(err)) ||
	    revoke_sweep(rv, &j, &res, err, sizeof(err))) {
		fprintf(stderr, "revoke bench: %s\n", err);
		return 1;
	}
	printf("revocation: %zu entries judged, %zu ended in %.1f ms "
	       "(target: under 100 ms with 100,000 present): %s\n",
	       res.seen, res.ended, res.ms,
	       res.ms < 100 && res.ended == (size_t)k ? "met" : "MISSED");
	sb_free(&res.pairs);
	revoke_free(rv);
	/* one-shot apply's way: the table read and judged in one pass */
	h = nfct_open(CONNTRACK, 0);
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
