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
	/* PEER_SERVICE named as SCOPE/SERVICE, or by a bare name a file of
	 * a directory does not define itself: resolved when the directory's
	 * files are merged (NULL once resolved) */
	char *ref;
	struct pol_loc ref_loc;
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
	const char *file; /* where it is declared (one of policy.files) */
	/* An edge between two scopes takes effect where the other side
	 * declares it too: that declaration (file NULL: none needed). */
	const char *accepted_file;
	struct pol_loc accepted;
};

struct pol_label {
	char *key, *value; /* value "*": the label is present */
};

struct pol_match {
	char **names, **images, **compose, **projects;
	size_t nnames, nimages, ncompose, nprojects;
	struct pol_label *labels;
	size_t nlabels;
};

struct pol_service {
	char *name; /* SCOPE/NAME for a scoped file's service */
	struct pol_match match;
	struct pol_loc loc;
	const char *file;
	long scope; /* index into policy.scopes; -1: a file without scope */
};

/* A file of a policy directory that declares `scope:`: its services
 * hold only containers its match also takes. */
struct pol_scope {
	char *name; /* the file's name without .yaml */
	const char *file;
	struct pol_match match;
	struct pol_loc loc;
	char **owners; /* groups acting for the scope on the control socket */
	size_t nowners;
	unsigned *gids; /* theirs, looked up when the directory is read */
	struct pol_loc owners_loc;
};

/* settings.scopes_may: what a global file lets scoped files open. */
enum {
	POL_MAY_WORLD_INGRESS = 1,
	POL_MAY_WORLD_EGRESS = 2,
	POL_MAY_HOST = 4,
	POL_MAY_CIDR = 8,
	POL_MAY_FQDN = 16,
};

/* The settings, in the order policy_setting_name() names them, for
 * telling where each was set. */
enum pol_setting {
	PS_MODE,
	PS_UNMATCHED,
	PS_LOG_RATE,
	PS_NETWORKS,
	PS_LOG_GROUP,
	PS_LOG_ALLOWED,
	PS_SCOPES_MAY,
	PS_COUNT,
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
	unsigned scopes_may; /* POL_MAY_*; cidr and fqdn by default */
	struct pol_loc set_at[PS_COUNT]; /* line 0: left out */
	/* A directory (file is its path): its files in name order and the
	 * scopes they declare; a single file is files[0] alone. */
	bool is_dir;
	char **files;
	size_t nfiles;
	struct pol_scope *scopes;
	size_t nscopes;
	/* Cross-scope edges as each side declared them; edges holds what
	 * both accept. What fits one of these and no edge is denied as
	 * not-accepted (trace, the flow log). */
	struct pol_edge *cross;
	size_t ncross;
};

/* Parse and validate a policy file, or a directory of them (*.yaml in
 * name order, merged: see scope.c). Returns NULL and fills diags (all
 * errors, FILE:LINE:COL) when the policy is not valid; warnings (an
 * edge the other scope does not accept) leave it valid. A file or
 * directory that someone other than root or the caller could change is
 * refused. */
struct policy *policy_load(const char *path, struct diags *diags);
/* The same from memory; name is used in diagnostics. */
struct policy *policy_parse(const char *name, const char *buf, size_t len,
			    struct diags *diags);
void policy_free(struct policy *p);

/* --- for scope.c, which merges a directory's files ------------------ */

/* policy_parse of one file of a directory: `scope`, `owners` and names
 * of other files' services (left in peer.ref) are allowed. A scoped
 * file's scope is scopes[0], its name still NULL. */
struct policy *policy_parse_part(const char *name, const char *buf, size_t len,
				 struct diags *diags);
/* Reads path (O_NOFOLLOW), refusing a file that anyone but root, the
 * caller and the file's group may write; its stat into *st (if not
 * NULL). NULL with a diag. */
struct stat;
char *policy_read_file(const char *path, struct stat *st, size_t *len,
		       struct diags *diags);
struct policy *policy_merge_dir(const char *dir, struct diags *diags);
void policy_match_free(struct pol_match *m);
void policy_edge_free(struct pol_edge *e);
bool policy_valid_name(const char *s);
/* Who may have written what we act on: root, or whoever runs us. */
bool policy_trusted_uid(unsigned uid);
const char *policy_setting_name(enum pol_setting s);
/* Whether a match value is a shell glob, not an exact string. */
bool policy_is_glob(const char *s);
/* Whether a service's name (SCOPE/NAME) is in one of scopes. */
bool policy_in_scopes(const char *service, char *const *scopes, size_t nscopes);

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
