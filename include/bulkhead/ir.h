/* The ruleset IR: what bulkhead wants in the kernel, as nftables tables
 * of chains, rules, sets and maps: inet NAME (the policy) and bridge NAME
 * (identity: each container's frames bound to its bridge port). Built by
 * compile, turned into nft text by render and into netlink batches by
 * kernel, both tables in one transaction. Also a small evaluator that
 * walks a packet through the inet table, for `trace` and tests. */
#ifndef BULKHEAD_IR_H
#define BULKHEAD_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/util.h"

#define IR_MAX_KEY 4
#define IR_CT_ESTABLISHED 2u /* NF_CT_STATE_BIT(IP_CT_ESTABLISHED) */
#define IR_CT_RELATED 4u
#define IR_IFNAMSIZ 16

enum ir_type {
	IRT_IFNAME,
	IRT_IPV4,
	IRT_IPV6,
	IRT_PROTO,
	IRT_PORT,
	IRT_ETHER,  /* 6 bytes */
	IRT_RAW128, /* 16 bytes the datapath reads at an offset (nd target) */
};

/* The table an object lives in: both are named rs->table. Object names
 * are unique across the two, so a name alone finds one. */
enum ir_family { IRF_INET, IRF_BRIDGE };

enum ir_verdict { IRV_NONE, IRV_ACCEPT, IRV_DROP, IRV_JUMP };

/* One element: each key component is [lo, hi] (lo == hi outside interval
 * sets); an interface name is its 16 bytes packed into a u128 (ir_ifname),
 * first byte most significant, so that order and equality are the
 * string's. */
struct ir_elem {
	u128 lo[IR_MAX_KEY], hi[IR_MAX_KEY];
	enum ir_verdict verdict; /* maps only */
	const char *chain;	 /* IRV_JUMP: owned by the ruleset */
	/* IRS_TIMEOUT sets: the kernel drops the element this long after
	 * it was added; 0, never. Not read back, not compared. */
	uint32_t timeout_ms;
};

enum ir_set_flags {
	IRS_INTERVAL = 1 << 0,
	IRS_MAP = 1 << 1,     /* data is a verdict */
	IRS_DYNAMIC = 1 << 2, /* filled by the datapath (rate limits) */
	IRS_TIMEOUT = 1 << 3, /* elements may carry a timeout (fqdn) */
};

struct ir_set {
	char *name;
	enum ir_family family;
	enum ir_type key[IR_MAX_KEY];
	int nkey;
	unsigned flags;
	unsigned timeout_s, size; /* IRS_DYNAMIC */
	struct ir_elem *e;
	size_t n, cap;
};

/* Expressions a rule can look up. */
enum ir_expr {
	IRX_IIFNAME,
	IRX_OIFNAME,
	IRX_SADDR4,
	IRX_DADDR4,
	IRX_SADDR6,
	IRX_DADDR6,
	IRX_L4PROTO,
	IRX_DPORT,
	/* bridge family */
	IRX_ETHER_SADDR,   /* ether saddr */
	IRX_ETHER_TYPE,	   /* ether type (a VLAN tag in metadata reads 8100) */
	IRX_ARP_HDR,	   /* htype, ptype, hlen, plen: 6 bytes */
	IRX_ARP_SHA,	   /* arp saddr ether */
	IRX_ARP_SPA,	   /* arp saddr ip */
	IRX_ND_TARGET,	   /* an NS's or NA's target address */
	IRX_META_PROTOCOL, /* the L3 protocol (nft's dependency for ip, ip6) */
	IRX_HOPLIMIT,	   /* ip6 hoplimit */
	IRX_IP6_LEN,	   /* ip6 length (the payload's) */
	/* the connection's original direction (a related packet: the
	 * connection it is related to) */
	IRX_CT_OSADDR4,
	IRX_CT_ODADDR4,
	IRX_CT_OSADDR6,
	IRX_CT_ODADDR6,
};

enum ir_match_kind {
	IRM_CT_ESTABLISHED, /* ct state in lo's bits (IR_CT_*; 0: both) */
	IRM_ND,		    /* ICMPv6 link control (ND, MLD): types [lo, hi] */
	IRM_LOOKUP,	    /* key @set, or != @set */
	IRM_NFPROTO,	    /* meta nfproto ipv4|ipv6 */
	IRM_RANGE,	    /* key[0] (l4proto, dport, ip6 hoplimit or length)
			     * within [lo, hi] */
	IRM_CMP,	    /* key[0] == val, or != val (bridge family) */
};

struct ir_match {
	enum ir_match_kind kind;
	bool neg;
	enum ir_expr key[IR_MAX_KEY];
	int nkey;
	const char *set; /* owned by the ruleset */
	int family;	 /* IRM_NFPROTO */
	uint32_t lo, hi; /* IRM_RANGE, IRM_ND */
	u128 val;	 /* IRM_CMP */
};

enum ir_stmt {
	IRST_ACCEPT,
	IRST_DROP,
	IRST_JUMP,
	IRST_VMAP, /* key vmap @map */
	IRST_LOG,  /* rate-limited per source, then continue */
};

#define IR_MAX_MATCH 5 /* 4, and a family check read back */

struct ir_rule {
	struct ir_match m[IR_MAX_MATCH];
	int nm;
	enum ir_stmt stmt;
	const char *target; /* chain (JUMP) or map (VMAP) */
	enum ir_expr vkey[IR_MAX_KEY];
	int nvkey;
	/* IRST_LOG */
	const char *rl_set; /* dynamic set keyed by source address */
	enum ir_expr rl_key;
	unsigned rate;
	const char *rate_unit;
	const char *prefix;
	unsigned group;
	/* a counter before the verdict (the deny chain's last rule: every
	 * denied packet, logged or not); packets as read back */
	bool counter;
	uint64_t packets;
	/* read back from the kernel in a shape bulkhead does not write:
	 * what it holds (owned by the ruleset); never equal to any rule */
	const char *foreign;
};

enum ir_hook { IRH_NONE, IRH_FORWARD, IRH_INPUT, IRH_PREROUTING };

struct ir_chain {
	char *name;
	enum ir_family family;
	enum ir_hook hook;
	int prio;     /* relative to the filter priority (0) */
	bool foreign; /* read back with a type, policy or flag we never set */
	struct ir_rule *r;
	size_t n, cap;
};

struct ir_ruleset {
	char *table;  /* the name of both tables */
	bool dormant; /* read back: a table's rules are switched off */
	bool bridge;  /* read back: table bridge NAME exists */
	struct ir_chain *chains;
	size_t nchains, capchains;
	struct ir_set *sets;
	size_t nsets, capsets;
	char **strs; /* interned strings referenced by rules */
	size_t nstrs, capstrs;
};

u128 ir_ifname(const char *name);
void ir_ifname_str(u128 v, char out[IR_IFNAMSIZ + 1]);

struct ir_ruleset *ir_new(const char *table);
void ir_free(struct ir_ruleset *rs);
const char *ir_intern(struct ir_ruleset *rs, const char *s);
struct ir_chain *ir_chain_add(struct ir_ruleset *rs, const char *name,
			      enum ir_hook hook, int prio);
struct ir_set *ir_set_add(struct ir_ruleset *rs, const char *name,
			  unsigned flags, int nkey, const enum ir_type *key);
struct ir_set *ir_set_find(const struct ir_ruleset *rs, const char *name);
struct ir_chain *ir_chain_find(const struct ir_ruleset *rs, const char *name);
struct ir_rule *ir_rule_add(struct ir_chain *c);
struct ir_elem *ir_elem_add(struct ir_set *s);
/* The first element of s whose first nkey fields hold key's values
 * (each within its lo..hi), or NULL: what a lookup in the kernel finds. */
const struct ir_elem *ir_set_lookup(const struct ir_set *s, const u128 *key,
				    int nkey);
/* Sorts every set's elements and removes exact duplicates. */
void ir_normalize(struct ir_ruleset *rs);
int ir_elem_cmp(const struct ir_set *s, const struct ir_elem *a,
		const struct ir_elem *b);
/* Element key equality (not data). */
bool ir_elem_key_eq(const struct ir_set *s, const struct ir_elem *a,
		    const struct ir_elem *b);
size_t ir_element_count(const struct ir_ruleset *rs);
/* Whether rs has a chain or a set in table family f. */
bool ir_has_family(const struct ir_ruleset *rs, enum ir_family f);

/* AF_INET or AF_INET6 for an address expression, 0 for the others. */
int ir_expr_family(enum ir_expr x);
/* The ct state bits an IRM_CT_ESTABLISHED match tests. */
unsigned ir_ct_mask(const struct ir_match *m);
/* The bytes an expression loads, and a key type takes. */
unsigned ir_expr_len(enum ir_expr x);
unsigned ir_type_len(enum ir_type t);

/* Rules compare by meaning: an address key implies its family, so an
 * explicit `meta nfproto` check before it is the same rule. */
bool ir_rule_eq(const struct ir_rule *a, const struct ir_rule *b);
/* Set definitions compare by key types and flags, not elements. */
bool ir_set_def_eq(const struct ir_set *a, const struct ir_set *b);

/* One element added to or deleted from set (an index into the ruleset
 * the delta is applied to). */
struct ir_change {
	bool add;
	size_t set;
	const char *set_name;
	struct ir_elem e; /* e.chain is borrowed */
};

struct ir_delta {
	struct ir_change *v;
	size_t n, cap;
};

void ir_delta_free(struct ir_delta *d);
/* Drops each deletion that an addition of the same element (key and
 * data) undoes, with that addition: a container that leaves and comes
 * back the same changes nothing. Sets are rs's. */
void ir_delta_cancel(const struct ir_ruleset *rs, struct ir_delta *d);
/* d's changes made to rs's sets (rs the ruleset d's set indices are
 * of): what the kernel holds once d is committed, element for element,
 * each set kept sorted. A full compile may write an interval set's
 * elements otherwise (adjacent ranges joined); lookups find the same. */
void ir_delta_apply(struct ir_ruleset *rs, const struct ir_delta *d);

/* What separates a ruleset in the kernel (have) from the one wanted. */
enum ir_diff_kind {
	IRD_TABLE_MISSING,
	IRD_BRIDGE_MISSING, /* table bridge NAME */
	IRD_TABLE_DORMANT,
	IRD_SET_MISSING,
	IRD_SET_EXTRA,
	IRD_SET_CHANGED,
	IRD_CHAIN_MISSING,
	IRD_CHAIN_EXTRA,
	IRD_CHAIN_CHANGED, /* hook, priority, type or policy */
	IRD_RULES_CHANGED,
};

struct ir_diff_item {
	enum ir_diff_kind kind;
	const char *name; /* borrowed from want or have */
};

struct ir_diff {
	/* differences only a replace of the table can mend */
	struct ir_diff_item *items;
	size_t nitems, capitems;
	/* element changes into want's sets, deletions first; complete
	 * only when there are no items (sets that differ are skipped) */
	struct ir_delta elems;
	size_t nadd, ndel;
};

/* Compares two normalised rulesets; have is NULL when the table is not
 * in the kernel. Elements of dynamic sets (datapath state) are not
 * compared. out borrows names and chains from both. */
void ir_diff(const struct ir_ruleset *want, const struct ir_ruleset *have,
	     struct ir_diff *out);
void ir_diff_free(struct ir_diff *d);

/* A packet for ir_eval: a new connection (no conntrack state). */
struct ir_packet {
	enum ir_hook hook;
	int family;
	char iif[IR_IFNAMSIZ], oif[IR_IFNAMSIZ];
	u128 saddr, daddr;
	uint8_t proto;
	uint16_t dport;
};

#define IR_TRAIL_MAX 16
struct ir_step {
	const char *chain;
	size_t rule;
	const struct ir_set *set;   /* the set or map that matched, if any */
	const struct ir_elem *elem; /* the element that matched */
};

struct ir_result {
	enum ir_verdict verdict; /* ACCEPT or DROP */
	bool logged;
	bool by_policy; /* no rule decided: the base chain's policy */
	struct ir_step trail[IR_TRAIL_MAX];
	int ntrail;
};

/* Walks pkt through the base chain of its hook. */
void ir_eval(const struct ir_ruleset *rs, const struct ir_packet *pkt,
	     struct ir_result *res);

#endif
