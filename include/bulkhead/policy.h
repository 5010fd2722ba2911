/* The policy model: a validated, immutable view of a policy file.
 * policy_load() parses YAML (libyaml) and never touches the kernel or Docker;
 * the structures below are read-only for every other module. */
#ifndef BULKHEAD_POLICY_H
#define BULKHEAD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulkhead/diag.h"
#include "bulkhead/util.h"

#define POLICY_MAX_BYTES (4u << 20)

struct pol_loc {
	unsigned line, col;
};

/* A port spec is a box over (protocol, destination port): `any` is
 * 0-255 x 0-65535, `icmp` is 1 x 0-65535, `80/tcp` is 6 x 80-80. */
struct pol_port {
	uint8_t proto_lo, proto_hi;
	uint16_t lo, hi;
	struct pol_loc loc;
};

enum pol_peer_kind {
	PEER_SERVICE,
	PEER_WORLD,
	PEER_HOST,
	PEER_CIDR,
	PEER_FQDN,
};

struct pol_cidr {
	int family;
	u128 lo, hi;
	int plen;
};

struct pol_peer {
	enum pol_peer_kind kind;
	size_t service; /* PEER_SERVICE: index into policy.services */
	struct pol_cidr *cidrs;
	size_t ncidrs;
	char *fqdn;
};

/* One allowed edge: src may open connections to dst on ports. An egress
 * rule of A gives src = A; an ingress rule of B gives dst = B. */
struct pol_edge {
	struct pol_peer src, dst;
	struct pol_port *ports;
	size_t nports;
	struct pol_loc loc;
	bool ingress; /* declared as ingress on dst */
	int log;      /* log: true (1), false (0), or as settings say (-1) */
};

struct pol_label {
	char *key, *value; /* value "*": the label is present */
};

struct pol_match {
	char **names, **images, **compose;
	size_t nnames, nimages, ncompose;
	struct pol_label *labels;
	size_t nlabels;
};

struct pol_service {
	char *name;
	struct pol_match match;
	struct pol_loc loc;
};

enum pol_mode { POL_ENFORCE, POL_AUDIT };

struct policy {
	char *file;
	enum pol_mode mode;
	bool unmatched_allow;
	unsigned log_rate;	   /* records per log_rate_unit */
	const char *log_rate_unit; /* "second", "minute", "hour" */
	unsigned log_group;	   /* NFLOG group */
	bool log_allowed;	   /* allowed flows in the flow log too */
	char **networks;	   /* NULL when left out: managed by match */
	size_t nnetworks;
	bool networks_set;
	struct pol_service *services;
	size_t nservices;
	struct pol_edge *edges;
	size_t nedges;
};

/* Parse and validate a policy file. Returns NULL and fills diags (all
 * errors, FILE:LINE:COL) when the policy is not valid. */
struct policy *policy_load(const char *path, struct diags *diags);
/* The same from memory; name is used in diagnostics. */
struct policy *policy_parse(const char *name, const char *buf, size_t len,
			    struct diags *diags);
void policy_free(struct policy *p);

/* The model as canonical YAML (every default spelled out, edges in file
 * order): parsing the output gives the same model. */
void policy_dump(const struct policy *p, struct strbuf *out);

/* Adds a copy of e (ports, CIDRs and name copied): for `denials
 * --suggest`, which prints the policy with the edges it proposes. */
void policy_add_edge(struct policy *p, const struct pol_edge *e);

/* Whether the flows edge e allows are logged (its log:, else
 * settings.log_allowed). */
bool policy_edge_logged(const struct policy *p, const struct pol_edge *e);

/* Whether any edge's flows are. */
bool policy_logs_allowed(const struct policy *p);

/* -1 when no service has that name. */
long policy_service_index(const struct policy *p, const char *name);

/* "80/tcp", "8000-8100/udp", "icmp", "any", into buf. */
/* A peer as the policy names it: a service, world, host, an FQDN or
 * CIDRs ("a/n, b/m"); with yaml, as a policy file writes it ({ fqdn: X },
 * { cidr: ["a/n"] }). */
void policy_peer_format(const struct policy *p, const struct pol_peer *peer,
			bool yaml, struct strbuf *b);
void policy_port_format(const struct pol_port *pp, char *buf, size_t len);
/* Parse one port spec; returns NULL or a static error message. */
const char *policy_port_parse(const char *s, struct pol_port *out);

#endif
