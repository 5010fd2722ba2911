/* Policy parser and validator: YAML (libyaml events) into struct policy.
 * It reads one file and nothing else; it never talks to Docker or the
 * kernel. Every error is collected with its FILE:LINE:COL. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "bulkhead/policy.h"

#define MAX_DEPTH 64
#define MAX_NODES 200000

enum ykind { Y_SCALAR, Y_SEQ, Y_MAP };

/* Our own tree, built from events, so that aliases can be refused at their
 * mark and duplicate keys found before anything is interpreted. */
struct ynode {
	enum ykind kind;
	char *str; /* scalar value */
	bool quoted;
	unsigned line, col;
	struct ynode **kids; /* maps: key, value, key, value ... */
	size_t n, cap;
};

struct pctx {
	const char *file;
	struct diags *d;
	struct policy *p;
	size_t nodes;
	bool part;   /* one file of a directory */
	bool scoped; /* ... that declares a scope */
	/* Peer names are resolved once every service is known. */
	struct pending {
		size_t edge;
		bool is_src;
		char *name;
		unsigned line, col;
	} * pend;
	size_t npend, cappend;
};

static void err(struct pctx *c, unsigned line, unsigned col, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

static void err(struct pctx *c, unsigned line, unsigned col, const char *fmt,
		...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diags_add(c->d, DIAG_ERROR, c->file, line, col, "%s", msg);
}

static void ynode_free(struct ynode *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->n; i++)
		ynode_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

static const char *kind_name(enum ykind k)
{
	return k == Y_SCALAR ? "a scalar" : k == Y_SEQ ? "a list" : "a mapping";
}

static struct ynode *node_new(struct pctx *c, enum ykind kind, yaml_mark_t m)
{
	struct ynode *n = xcalloc(1, sizeof(*n));

	c->nodes++;
	n->kind = kind;
	n->line = (unsigned)m.line + 1;
	n->col = (unsigned)m.column + 1;
	return n;
}

/* Builds the node for the event just read (and its children). Returns
 * NULL after reporting an error; parsing stops at the first YAML syntax
 * error, since libyaml cannot continue past one. */
static struct ynode *build(struct pctx *c, yaml_parser_t *ps, yaml_event_t *ev,
			   int depth, bool *fatal)
{
	struct ynode *n = NULL, *k;
	yaml_event_t e;
	size_t i;

	if (depth > MAX_DEPTH || c->nodes > MAX_NODES) {
		err(c, (unsigned)ev->start_mark.line + 1,
		    (unsigned)ev->start_mark.column + 1,
		    "document is nested too deeply or too large");
		*fatal = true;
		return NULL;
	}
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		err(c, (unsigned)ev->start_mark.line + 1,
		    (unsigned)ev->start_mark.column + 1,
		    "YAML aliases (*%s) are not allowed in a policy",
		    (const char *)ev->data.alias.anchor);
		*fatal = true;
		return NULL;
	case YAML_SCALAR_EVENT:
		n = node_new(c, Y_SCALAR, ev->start_mark);
		n->str = xstrndup((const char *)ev->data.scalar.value,
				  ev->data.scalar.length);
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		if (strlen(n->str) != ev->data.scalar.length) {
			err(c, n->line, n->col, "NUL byte inside a string");
			n->str[0] = '\0';
		}
		return n;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		n = node_new(
		    c, ev->type == YAML_SEQUENCE_START_EVENT ? Y_SEQ : Y_MAP,
		    ev->start_mark);
		for (;;) {
			if (!yaml_parser_parse(ps, &e)) {
				*fatal = true;
				ynode_free(n);
				return NULL;
			}
			if (e.type == YAML_SEQUENCE_END_EVENT ||
			    e.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&e);
				break;
			}
			k = build(c, ps, &e, depth + 1, fatal);
			yaml_event_delete(&e);
			if (!k) {
				ynode_free(n);
				return NULL;
			}
			*PUSH(n->kids, n->n, n->cap) = k;
		}
		if (n->kind != Y_MAP)
			return n;
		for (i = 0; i < n->n; i += 2) {
			size_t j;

			k = n->kids[i];
			if (k->kind != Y_SCALAR) {
				err(c, k->line, k->col,
				    "mapping keys must be plain strings");
				continue;
			}
			for (j = 0; j < i; j += 2) {
				struct ynode *o = n->kids[j];

				if (o->kind == Y_SCALAR &&
				    !strcmp(o->str, k->str)) {
					err(c, k->line, k->col,
					    "duplicate key '%s' (first at "
					    "%u:%u)",
					    k->str, o->line, o->col);
					break;
				}
			}
		}
		return n;
	default:
		err(c, (unsigned)ev->start_mark.line + 1,
		    (unsigned)ev->start_mark.column + 1,
		    "unexpected YAML event");
		*fatal = true;
		return NULL;
	}
}

/* Reads exactly one document. NULL on error (reported) or when empty. */
static struct ynode *read_tree(struct pctx *c, const char *buf, size_t len)
{
	yaml_parser_t ps;
	yaml_event_t ev;
	struct ynode *root = NULL;
	bool fatal = false, done = false;

	yaml_parser_initialize(&ps);
	yaml_parser_set_input_string(&ps, (const unsigned char *)buf, len);
	yaml_parser_set_encoding(&ps, YAML_UTF8_ENCODING);
	while (!done) {
		if (!yaml_parser_parse(&ps, &ev)) {
			fatal = true;
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			if (ev.type == YAML_DOCUMENT_START_EVENT && root) {
				err(c, (unsigned)ev.start_mark.line + 1,
				    (unsigned)ev.start_mark.column + 1,
				    "a policy file holds one YAML document");
				done = true;
			}
			break;
		default:
			root = build(c, &ps, &ev, 0, &fatal);
			if (fatal)
				done = true;
			break;
		}
		yaml_event_delete(&ev);
	}
	if (fatal && ps.error != YAML_NO_ERROR) {
		yaml_mark_t m = ps.problem_mark;

		if (ps.error == YAML_READER_ERROR) {
			/* the reader gives a byte offset: find its line */
			unsigned line = 1, col = 1;
			size_t i;

			for (i = 0; i < ps.problem_offset && i < len; i++) {
				if (buf[i] == '\n') {
					line++;
					col = 1;
				} else if (((unsigned char)buf[i] & 0xc0) !=
					   0x80) {
					col++;
				}
			}
			err(c, line, col,
			    "%s (byte 0x%02x): a policy must be "
			    "UTF-8",
			    ps.problem ? ps.problem : "unreadable input",
			    ps.problem_value >= 0 ? (unsigned)ps.problem_value
						  : 0u);
		} else {
			err(c, (unsigned)m.line + 1, (unsigned)m.column + 1,
			    "%s%s%s", ps.problem ? ps.problem : "syntax error",
			    ps.context ? " " : "",
			    ps.context ? ps.context : "");
		}
	}
	yaml_parser_delete(&ps);
	if (fatal) {
		ynode_free(root);
		return NULL;
	}
	if (!root)
		err(c, 1, 1,
		    "empty policy: expected a mapping with 'version' "
		    "and 'services'");
	return root;
}

/* --- validation helpers --------------------------------------------- */

static bool want(struct pctx *c, const struct ynode *n, enum ykind k,
		 const char *what)
{
	if (n->kind == k)
		return true;
	err(c, n->line, n->col, "%s must be %s, not %s", what, kind_name(k),
	    kind_name(n->kind));
	return false;
}

static bool is_null(const struct ynode *n)
{
	return n->kind == Y_SCALAR && !n->quoted &&
	       (!*n->str || !strcmp(n->str, "~") || !strcmp(n->str, "null"));
}

/* Reports keys of map n not in the NULL-terminated list allowed. */
static void check_keys(struct pctx *c, const struct ynode *n, const char *what,
		       const char *const *allowed)
{
	size_t i, j;
	struct strbuf b = {0};

	for (i = 0; i < n->n; i += 2) {
		const struct ynode *k = n->kids[i];

		if (k->kind != Y_SCALAR)
			continue;
		for (j = 0; allowed[j]; j++)
			if (!strcmp(k->str, allowed[j]))
				break;
		if (allowed[j])
			continue;
		b.len = 0;
		for (j = 0; allowed[j]; j++)
			sb_printf(&b, "%s%s", j ? ", " : "", allowed[j]);
		err(c, k->line, k->col, "unknown key '%s' in %s (expected %s)",
		    k->str, what, b.s);
	}
	sb_free(&b);
}

static const struct ynode *get(const struct ynode *map, const char *key)
{
	size_t i;

	for (i = 0; i + 1 < map->n; i += 2)
		if (map->kids[i]->kind == Y_SCALAR &&
		    !strcmp(map->kids[i]->str, key))
			return map->kids[i + 1];
	return NULL;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !errno && !*end && *out <= max;
}

/* A string or a list of strings, into a fresh array. */
static void string_list(struct pctx *c, const struct ynode *n, const char *what,
			char ***out, size_t *nout)
{
	size_t i, cap = 0;

	if (n->kind == Y_SCALAR) {
		if (!*n->str) {
			err(c, n->line, n->col, "%s must not be empty", what);
			return;
		}
		*PUSH(*out, *nout, cap) = xstrdup(n->str);
		return;
	}
	if (n->kind != Y_SEQ) {
		err(c, n->line, n->col,
		    "%s must be a string or a list of strings", what);
		return;
	}
	if (!n->n)
		err(c, n->line, n->col, "%s must not be an empty list", what);
	for (i = 0; i < n->n; i++) {
		const struct ynode *k = n->kids[i];

		if (k->kind != Y_SCALAR || !*k->str) {
			err(c, k->line, k->col,
			    "%s entries must be non-empty strings", what);
			continue;
		}
		*PUSH(*out, *nout, cap) = xstrdup(k->str);
	}
}

bool policy_valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (!n || n > 64 || !isalnum((unsigned char)s[0]))
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

static bool valid_fqdn(const char *s)
{
	size_t i, n = strlen(s), lab = 0;

	if (!n || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (!lab || s[i - 1] == '-')
				return false;
			lab = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
		if (++lab > 63)
			return false;
	}
	return strchr(s, '.') && s[n - 1] != '-';
}

/* --- ports ----------------------------------------------------------- */

const char *policy_port_parse(const char *s, struct pol_port *pp)
{
	const char *slash = strchr(s, '/');
	char num[32], *dash;
	unsigned long lo, hi;
	size_t n;

	memset(pp, 0, sizeof(*pp));
	if (!strcmp(s, "any")) {
		pp->proto_hi = 255;
		pp->hi = 65535;
		return NULL;
	}
	if (!strcmp(s, "icmp") || !strcmp(s, "icmpv6")) {
		pp->proto_lo = pp->proto_hi =
		    s[4] ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
		pp->hi = 65535;
		return NULL;
	}
	if (!slash)
		return "needs a protocol: PORT/tcp, PORT/udp, PORT/sctp, icmp, "
		       "icmpv6 or any";
	if (!strcmp(slash + 1, "tcp"))
		pp->proto_lo = IPPROTO_TCP;
	else if (!strcmp(slash + 1, "udp"))
		pp->proto_lo = IPPROTO_UDP;
	else if (!strcmp(slash + 1, "sctp"))
		pp->proto_lo = IPPROTO_SCTP;
	else
		return "has an unknown protocol (expected tcp, udp or sctp)";
	pp->proto_hi = pp->proto_lo;
	n = (size_t)(slash - s);
	if (!n || n >= sizeof(num))
		return "has no port number";
	memcpy(num, s, n);
	num[n] = '\0';
	dash = strchr(num, '-');
	if (dash)
		*dash++ = '\0';
	if (!parse_uint(num, 999999, &lo) ||
	    (dash && !parse_uint(dash, 999999, &hi)))
		return "is not a number or a range N-M";
	if (!dash)
		hi = lo;
	if (lo < 1 || lo > 65535 || hi < 1 || hi > 65535)
		return "is out of range (1-65535)";
	if (hi < lo)
		return "is a reversed range (the first port must not be "
		       "greater than the second)";
	pp->lo = (uint16_t)lo;
	pp->hi = (uint16_t)hi;
	return NULL;
}

void policy_port_format(const struct pol_port *pp, char *buf, size_t len)
{
	const char *proto;

	if (pp->proto_lo == 0 && pp->proto_hi == 255) {
		snprintf(buf, len, "any");
		return;
	}
	switch (pp->proto_lo) {
	case IPPROTO_ICMP:
		snprintf(buf, len, "icmp");
		return;
	case IPPROTO_ICMPV6:
		snprintf(buf, len, "icmpv6");
		return;
	case IPPROTO_TCP:
		proto = "tcp";
		break;
	case IPPROTO_UDP:
		proto = "udp";
		break;
	default:
		proto = "sctp";
		break;
	}
	if (pp->lo == pp->hi)
		snprintf(buf, len, "%u/%s", pp->lo, proto);
	else
		snprintf(buf, len, "%u-%u/%s", pp->lo, pp->hi, proto);
}

static void parse_ports(struct pctx *c, const struct ynode *n,
			struct pol_edge *e)
{
	size_t i, cap = 0;
	struct pol_port pp;
	const char *why;

	if (n->kind == Y_SCALAR && !strcmp(n->str, "any")) {
		policy_port_parse("any", &pp);
		pp.loc = (struct pol_loc){n->line, n->col};
		*PUSH(e->ports, e->nports, cap) = pp;
		return;
	}
	if (!want(c, n, Y_SEQ, "ports"))
		return;
	if (!n->n)
		err(c, n->line, n->col,
		    "ports must not be empty (leave it out, or say any)");
	for (i = 0; i < n->n; i++) {
		const struct ynode *k = n->kids[i];

		if (k->kind != Y_SCALAR) {
			err(c, k->line, k->col,
			    "a port must be a string such as 8080/tcp");
			continue;
		}
		why = policy_port_parse(k->str, &pp);
		if (why) {
			err(c, k->line, k->col, "port '%s' %s", k->str, why);
			continue;
		}
		pp.loc = (struct pol_loc){k->line, k->col};
		*PUSH(e->ports, e->nports, cap) = pp;
	}
}

/* --- peers and edges ------------------------------------------------- */

static void parse_cidrs(struct pctx *c, const struct ynode *n,
			struct pol_peer *peer)
{
	char **list = NULL;
	size_t nlist = 0, i, cap = 0, k;
	struct pol_cidr pc;
	int r;
	const struct ynode *item;

	string_list(c, n, "cidr", &list, &nlist);
	for (i = 0; i < nlist; i++) {
		item = n->kind == Y_SEQ ? n->kids[i] : n;
		/* string_list skips bad entries: find the matching node */
		if (n->kind == Y_SEQ)
			for (k = i; k < n->n; k++)
				if (n->kids[k]->kind == Y_SCALAR &&
				    !strcmp(n->kids[k]->str, list[i])) {
					item = n->kids[k];
					break;
				}
		r = cidr_parse(list[i], &pc.family, &pc.lo, &pc.hi, &pc.plen);
		if (r == -EDOM)
			err(c, item->line, item->col,
			    "CIDR '%s' has host bits set after the prefix "
			    "length",
			    list[i]);
		else if (r)
			err(c, item->line, item->col,
			    "'%s' is not an IPv4 or IPv6 address or CIDR",
			    list[i]);
		else
			*PUSH(peer->cidrs, peer->ncidrs, cap) = pc;
		free(list[i]);
	}
	free(list);
}

static void pend_name(struct pctx *c, size_t edge, bool is_src,
		      const struct ynode *n)
{
	struct pending *p = PUSH(c->pend, c->npend, c->cappend);

	p->edge = edge;
	p->is_src = is_src;
	p->name = xstrdup(n->str);
	p->line = n->line;
	p->col = n->col;
}

/* Fills peer from n; service names are resolved later. */
static bool parse_peer(struct pctx *c, const struct ynode *n, size_t edge,
		       bool is_src, struct pol_peer *peer)
{
	static const char *const keys[] = {"cidr", "fqdn", NULL};
	const struct ynode *v;

	if (n->kind == Y_SCALAR) {
		if (!*n->str) {
			err(c, n->line, n->col, "peer must not be empty");
			return false;
		}
		if (!strcmp(n->str, "world")) {
			peer->kind = PEER_WORLD;
		} else if (!strcmp(n->str, "host")) {
			peer->kind = PEER_HOST;
		} else {
			peer->kind = PEER_SERVICE;
			pend_name(c, edge, is_src, n);
		}
		return true;
	}
	if (!want(c, n, Y_MAP, "a peer"))
		return false;
	check_keys(c, n, "a peer", keys);
	if (n->n != 2) {
		err(c, n->line, n->col,
		    "a peer mapping takes exactly one of cidr or fqdn");
		return false;
	}
	if ((v = get(n, "cidr"))) {
		peer->kind = PEER_CIDR;
		parse_cidrs(c, v, peer);
		return peer->ncidrs > 0;
	}
	if ((v = get(n, "fqdn"))) {
		peer->kind = PEER_FQDN;
		if (v->kind != Y_SCALAR || !valid_fqdn(v->str)) {
			err(c, v->line, v->col,
			    "fqdn must be a DNS name such as api.example.com");
			return false;
		}
		peer->fqdn = xstrdup(v->str);
		return true;
	}
	return false;
}

/* A YAML boolean (true/false, as YAML 1.2 spells them) into *out. */
static bool boolean(struct pctx *c, const struct ynode *v, const char *what,
		    bool *out)
{
	if (!want(c, v, Y_SCALAR, what))
		return false;
	if (strcmp(v->str, "true") && strcmp(v->str, "false")) {
		err(c, v->line, v->col, "%s '%s' is not true or false", what,
		    v->str);
		return false;
	}
	*out = v->str[0] == 't';
	return true;
}

static void parse_rules(struct pctx *c, const struct ynode *list, size_t svc,
			bool ingress, size_t *edge_cap)
{
	static const char *const ekeys[] = {"to", "ports", "log", NULL};
	static const char *const ikeys[] = {"from", "ports", "log", NULL};
	const char *dir = ingress ? "ingress" : "egress";
	const char *pk = ingress ? "from" : "to";
	struct policy *p = c->p;
	size_t i;

	if (is_null(list))
		return;
	if (!want(c, list, Y_SEQ, dir))
		return;
	for (i = 0; i < list->n; i++) {
		const struct ynode *r = list->kids[i], *peer, *ports;
		struct pol_edge e = {0};
		struct pol_peer *other;
		size_t idx = p->nedges;

		if (!want(c, r, Y_MAP,
			  ingress ? "an ingress rule" : "an egress rule"))
			continue;
		check_keys(c, r, ingress ? "an ingress rule" : "an egress rule",
			   ingress ? ikeys : ekeys);
		e.loc = (struct pol_loc){r->line, r->col};
		e.file = p->file;
		e.ingress = ingress;
		e.log = -1;
		if (get(r, "log")) {
			bool on;

			if (boolean(c, get(r, "log"), "log", &on))
				e.log = on;
		}
		peer = get(r, pk);
		if (!peer) {
			err(c, r->line, r->col, "%s rule needs '%s'", dir, pk);
			continue;
		}
		if (ingress) {
			e.dst.kind = PEER_SERVICE;
			e.dst.service = svc;
			other = &e.src;
		} else {
			e.src.kind = PEER_SERVICE;
			e.src.service = svc;
			other = &e.dst;
		}
		if (!parse_peer(c, peer, idx, ingress, other)) {
			free(other->cidrs);
			free(other->fqdn);
			continue;
		}
		if (ingress && other->kind == PEER_HOST)
			err(c, peer->line, peer->col,
			    "'host' is a destination only: the host's own "
			    "traffic to containers is not filtered");
		if (ingress && other->kind == PEER_FQDN)
			err(c, peer->line, peer->col,
			    "fqdn peers are egress destinations only");
		ports = get(r, "ports");
		if (ports)
			parse_ports(c, ports, &e);
		else {
			size_t cap = 0;
			struct pol_port *pp = PUSH(e.ports, e.nports, cap);

			policy_port_parse("any", pp);
			pp->loc = e.loc;
		}
		*PUSH(p->edges, p->nedges, *edge_cap) = e;
	}
}

static void parse_match(struct pctx *c, const struct ynode *n,
			struct pol_match *m)
{
	static const char *const keys[] = {
	    "name", "image", "labels", "compose_service", "compose_project",
	    NULL};
	const struct ynode *v;
	size_t i, cap = 0;

	if (!want(c, n, Y_MAP, "match"))
		return;
	check_keys(c, n, "match", keys);
	if (!n->n)
		err(c, n->line, n->col,
		    "match needs at least one of name, image, labels, "
		    "compose_service, compose_project");
	if ((v = get(n, "name")))
		string_list(c, v, "match.name", &m->names, &m->nnames);
	if ((v = get(n, "image")))
		string_list(c, v, "match.image", &m->images, &m->nimages);
	if ((v = get(n, "compose_service")))
		string_list(c, v, "match.compose_service", &m->compose,
			    &m->ncompose);
	if ((v = get(n, "compose_project")))
		string_list(c, v, "match.compose_project", &m->projects,
			    &m->nprojects);
	if ((v = get(n, "labels")) && want(c, v, Y_MAP, "match.labels")) {
		if (!v->n)
			err(c, v->line, v->col,
			    "match.labels must not be empty");
		for (i = 0; i + 1 < v->n; i += 2) {
			const struct ynode *k = v->kids[i],
					   *val = v->kids[i + 1];
			struct pol_label *l;

			if (k->kind != Y_SCALAR)
				continue;
			if (val->kind != Y_SCALAR) {
				err(c, val->line, val->col,
				    "label '%s' must have a string value "
				    "(\"*\" for any)",
				    k->str);
				continue;
			}
			l = PUSH(m->labels, m->nlabels, cap);
			l->key = xstrdup(k->str);
			l->value = xstrdup(val->str);
		}
	}
}

static const char *const setting_keys[PS_COUNT + 1] = {
    "mode",	 "unmatched",	"log_rate",   "networks",
    "log_group", "log_allowed", "scopes_may", NULL};

const char *policy_setting_name(enum pol_setting s)
{
	return setting_keys[s];
}

static const char *const may_names[] = {"world-ingress", "world-egress", "host",
					"cidr", "fqdn"};

static void parse_scopes_may(struct pctx *c, const struct ynode *v)
{
	char **l = NULL;
	size_t nl = 0, i, k;

	string_list(c, v, "settings.scopes_may", &l, &nl);
	c->p->scopes_may = 0;
	for (i = 0; i < nl; i++) {
		for (k = 0; k < sizeof(may_names) / sizeof(*may_names); k++)
			if (!strcmp(l[i], may_names[k]))
				break;
		if (k < sizeof(may_names) / sizeof(*may_names))
			c->p->scopes_may |= 1u << k;
		else
			err(c, v->line, v->col,
			    "scopes_may '%s' is not world-ingress, "
			    "world-egress, host, cidr or fqdn",
			    l[i]);
		free(l[i]);
	}
	free(l);
}

static void parse_settings(struct pctx *c, const struct ynode *n)
{
	struct policy *p = c->p;
	const struct ynode *v;
	unsigned long num;
	size_t i, k;

	if (!want(c, n, Y_MAP, "settings"))
		return;
	check_keys(c, n, "settings", setting_keys);
	for (i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *key = n->kids[i];

		for (k = 0; k < PS_COUNT && key->kind == Y_SCALAR; k++)
			if (!strcmp(key->str, setting_keys[k]))
				break;
		if (key->kind != Y_SCALAR || k == PS_COUNT)
			continue;
		p->set_at[k] = (struct pol_loc){key->line, key->col};
		/* a team's file speaks for its own services only */
		if (c->scoped && k != PS_LOG_ALLOWED)
			err(c, key->line, key->col,
			    "settings.%s applies to the whole host: only a "
			    "file without 'scope' may set it",
			    key->str);
	}
	if ((v = get(n, "scopes_may")))
		parse_scopes_may(c, v);
	if ((v = get(n, "mode")) && want(c, v, Y_SCALAR, "settings.mode")) {
		if (!strcmp(v->str, "enforce"))
			p->mode = POL_ENFORCE;
		else if (!strcmp(v->str, "audit"))
			p->mode = POL_AUDIT;
		else
			err(c, v->line, v->col,
			    "mode '%s' is not enforce or audit", v->str);
	}
	if ((v = get(n, "unmatched")) &&
	    want(c, v, Y_SCALAR, "settings.unmatched")) {
		if (!strcmp(v->str, "deny") || !strcmp(v->str, "allow"))
			p->unmatched_allow = v->str[0] == 'a';
		else
			err(c, v->line, v->col,
			    "unmatched '%s' is not deny or allow", v->str);
	}
	if ((v = get(n, "log_rate")) &&
	    want(c, v, Y_SCALAR, "settings.log_rate")) {
		char num_s[16];
		const char *slash = strchr(v->str, '/');
		size_t len = slash ? (size_t)(slash - v->str) : 0;

		if (slash && len && len < sizeof(num_s)) {
			memcpy(num_s, v->str, len);
			num_s[len] = '\0';
		}
		if (!slash || !len || len >= sizeof(num_s) ||
		    !parse_uint(num_s, 1000000, &num) || !num ||
		    (strcmp(slash + 1, "second") &&
		     strcmp(slash + 1, "minute") && strcmp(slash + 1, "hour")))
			err(c, v->line, v->col,
			    "log_rate '%s' is not N/second, N/minute or "
			    "N/hour (N from 1 to 1000000)",
			    v->str);
		else {
			p->log_rate = (unsigned)num;
			p->log_rate_unit = slash[1] == 's'   ? "second"
					   : slash[1] == 'm' ? "minute"
							     : "hour";
		}
	}
	if ((v = get(n, "log_group")) &&
	    want(c, v, Y_SCALAR, "settings.log_group")) {
		if (!parse_uint(v->str, 65535, &num))
			err(c, v->line, v->col,
			    "log_group '%s' is not a number from 0 to 65535",
			    v->str);
		else
			p->log_group = (unsigned)num;
	}
	if ((v = get(n, "log_allowed")))
		boolean(c, v, "settings.log_allowed", &p->log_allowed);
	if ((v = get(n, "networks"))) {
		p->networks_set = true;
		string_list(c, v, "settings.networks", &p->networks,
			    &p->nnetworks);
	}
}

static void parse_services(struct pctx *c, const struct ynode *n)
{
	static const char *const keys[] = {"match", "ingress", "egress", NULL};
	struct policy *p = c->p;
	size_t i, j, edge_cap = 0, svc_cap = 0;

	if (!want(c, n, Y_MAP, "services"))
		return;
	if (!n->n)
		err(c, n->line, n->col, "services must not be empty");
	/* Names first, so that peers may name a service defined later. */
	for (i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->kids[i];
		struct pol_service *s;

		if (k->kind != Y_SCALAR)
			continue;
		if (!policy_valid_name(k->str)) {
			err(c, k->line, k->col,
			    "service name '%s' must be 1-64 letters, digits, "
			    "'_', '.' or '-', starting with a letter or digit",
			    k->str);
			continue;
		}
		if (!strcmp(k->str, "world") || !strcmp(k->str, "host")) {
			err(c, k->line, k->col,
			    "'%s' is a reserved peer name and cannot be a "
			    "service",
			    k->str);
			continue;
		}
		if (policy_service_index(p, k->str) >= 0)
			continue; /* reported as a duplicate key */
		s = PUSH(p->services, p->nservices, svc_cap);
		memset(s, 0, sizeof(*s));
		s->name = xstrdup(k->str);
		s->loc = (struct pol_loc){k->line, k->col};
		s->file = p->file;
		s->scope = c->scoped ? 0 : -1;
	}
	for (i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->kids[i], *v = n->kids[i + 1], *m;
		long si;

		if (k->kind != Y_SCALAR ||
		    (si = policy_service_index(p, k->str)) < 0)
			continue;
		/* a duplicate key: only the first definition counts */
		for (j = 0; j < i; j += 2)
			if (n->kids[j]->kind == Y_SCALAR &&
			    !strcmp(n->kids[j]->str, k->str))
				break;
		if (j < i)
			continue;
		if (!want(c, v, Y_MAP, "a service"))
			continue;
		check_keys(c, v, "a service", keys);
		m = get(v, "match");
		if (!m)
			err(c, v->line, v->col, "service '%s' needs a 'match'",
			    k->str);
		else
			parse_match(c, m, &p->services[si].match);
		if ((m = get(v, "ingress")))
			parse_rules(c, m, (size_t)si, true, &edge_cap);
		if ((m = get(v, "egress")))
			parse_rules(c, m, (size_t)si, false, &edge_cap);
	}
}

static void resolve_names(struct pctx *c)
{
	struct policy *p = c->p;
	size_t i;
	long si;

	for (i = 0; i < c->npend; i++) {
		struct pending *pd = &c->pend[i];
		struct pol_edge *e = &p->edges[pd->edge];

		si = policy_service_index(p, pd->name);
		if (si < 0 && c->part) {
			/* SCOPE/NAME, or maybe a global file's: the directory
			 * decides */
			struct pol_peer *q = pd->is_src ? &e->src : &e->dst;

			q->ref = pd->name;
			q->ref_loc = (struct pol_loc){pd->line, pd->col};
			continue;
		}
		if (si < 0 && strchr(pd->name, '/'))
			err(c, pd->line, pd->col,
			    "unknown peer '%s' (SCOPE/SERVICE names another "
			    "file's service in a policy directory, -p DIR)",
			    pd->name);
		else if (si < 0)
			err(c, pd->line, pd->col,
			    "unknown peer '%s' (not a service, world, host, "
			    "cidr or fqdn)",
			    pd->name);
		else if (pd->is_src)
			e->src.service = (size_t)si;
		else
			e->dst.service = (size_t)si;
		free(pd->name);
	}
	free(c->pend);
	c->pend = NULL;
}

/* scope: and owners: of a directory's file, into scopes[0]. */
static void parse_scope(struct pctx *c, const struct ynode *root)
{
	const struct ynode *v = get(root, "scope"), *o = get(root, "owners");
	struct policy *p = c->p;
	struct pol_scope *sc;

	if (!c->part) {
		if (v || o)
			err(c, (v ? v : o)->line, (v ? v : o)->col,
			    "'%s' belongs to a file of a policy directory "
			    "(-p DIR), where the file's name names the scope",
			    v ? "scope" : "owners");
		return;
	}
	if (!v) {
		if (o)
			err(c, o->line, o->col,
			    "'owners' needs a 'scope': a file without one is "
			    "the host's, root's alone");
		return;
	}
	c->scoped = true;
	p->scopes = xcalloc(1, sizeof(*p->scopes));
	p->nscopes = 1;
	sc = p->scopes;
	sc->file = p->file;
	sc->loc = (struct pol_loc){v->line, v->col};
	parse_match(c, v, &sc->match);
	if (o) {
		sc->owners_loc = (struct pol_loc){o->line, o->col};
		string_list(c, o, "owners", &sc->owners, &sc->nowners);
	}
}

static void parse_root(struct pctx *c, const struct ynode *root)
{
	static const char *const keys[] = {"version", "settings", "services",
					   "scope",   "owners",	  NULL};
	const struct ynode *v;

	if (!want(c, root, Y_MAP, "the policy"))
		return;
	check_keys(c, root, "the policy", keys);
	parse_scope(c, root);
	v = get(root, "version");
	if (!v)
		err(c, root->line, root->col, "missing 'version: 1'");
	else if (v->kind != Y_SCALAR || strcmp(v->str, "1"))
		err(c, v->line, v->col,
		    "unsupported policy version '%s' (this bulkhead reads "
		    "version 1)",
		    v->kind == Y_SCALAR ? v->str : "?");
	if ((v = get(root, "settings")))
		parse_settings(c, v);
	v = get(root, "services");
	/* a directory's host file may hold settings alone */
	if (!v && !(c->part && !c->scoped))
		err(c, root->line, root->col, "missing 'services'");
	else if (v)
		parse_services(c, v);
	resolve_names(c);
}

bool policy_edge_logged(const struct policy *p, const struct pol_edge *e)
{
	return e->log >= 0 ? e->log : p->log_allowed;
}

bool policy_logs_allowed(const struct policy *p)
{
	size_t i;

	for (i = 0; i < p->nedges; i++)
		if (policy_edge_logged(p, &p->edges[i]))
			return true;
	return false;
}

long policy_service_index(const struct policy *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nservices; i++)
		if (!strcmp(p->services[i].name, name))
			return (long)i;
	return -1;
}

static struct policy *parse(const char *name, const char *buf, size_t len,
			    struct diags *d, bool part)
{
	struct pctx c = {.file = name, .d = d, .part = part};
	size_t before = d->nerrors;
	struct ynode *root;

	c.p = xcalloc(1, sizeof(*c.p));
	c.p->file = xstrdup(name);
	c.p->files = xcalloc(1, sizeof(*c.p->files));
	c.p->files[c.p->nfiles++] = c.p->file;
	c.file = c.p->file;
	c.p->log_rate = 20;
	c.p->log_rate_unit = "second";
	c.p->log_group = 100;
	c.p->scopes_may = POL_MAY_CIDR | POL_MAY_FQDN;
	if (len > POLICY_MAX_BYTES) {
		err(&c, 0, 0, "policy is %zu bytes, over the %u-byte limit",
		    len, POLICY_MAX_BYTES);
		goto fail;
	}
	root = read_tree(&c, buf, len);
	if (root)
		parse_root(&c, root);
	ynode_free(root);
	free(c.pend);
	if (d->nerrors == before)
		return c.p;
fail:
	policy_free(c.p);
	return NULL;
}

struct policy *policy_parse(const char *name, const char *buf, size_t len,
			    struct diags *d)
{
	return parse(name, buf, len, d, false);
}

struct policy *policy_parse_part(const char *name, const char *buf, size_t len,
				 struct diags *d)
{
	return parse(name, buf, len, d, true);
}

bool policy_trusted_uid(unsigned uid)
{
	return uid == 0 || uid == geteuid();
}

char *policy_read_file(const char *path, struct stat *stp, size_t *len,
		       struct diags *d)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot open: %s",
			  errno == ELOOP ? "a symbolic link (not followed)"
					 : strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		diags_add(d, DIAG_ERROR, path, 0, 0, "not a regular file");
		goto out;
	}
	if (!policy_trusted_uid(st.st_uid) || (st.st_mode & S_IWOTH)) {
		diags_add(d, DIAG_ERROR, path, 0, 0,
			  "refused: %s (owner uid %u, mode %04o); a policy "
			  "may be writable by root and the file's group only",
			  (st.st_mode & S_IWOTH)
			      ? "anyone may write it"
			      : "its owner is neither root nor the user "
				"running bulkhead",
			  (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((size_t)st.st_size > POLICY_MAX_BYTES) {
		diags_add(d, DIAG_ERROR, path, 0, 0,
			  "policy is %lld bytes, over the %u-byte limit",
			  (long long)st.st_size, POLICY_MAX_BYTES);
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r <= 0) {
			diags_add(d, DIAG_ERROR, path, 0, 0, "read failed: %s",
				  r ? strerror(errno) : "short read");
			free(buf);
			buf = NULL;
			goto out;
		}
		got += (size_t)r;
	}
	*len = got;
	if (stp)
		*stp = st;
out:
	close(fd);
	return buf;
}

struct policy *policy_load(const char *path, struct diags *d)
{
	struct policy *p;
	struct stat st;
	size_t len = 0;
	char *buf;

	if (!stat(path, &st) && S_ISDIR(st.st_mode))
		return policy_merge_dir(path, d);
	buf = policy_read_file(path, NULL, &len, d);
	if (!buf)
		return NULL;
	p = policy_parse(path, buf, len, d);
	free(buf);
	return p;
}

void policy_match_free(struct pol_match *m)
{
	size_t i;

	for (i = 0; i < m->nprojects; i++)
		free(m->projects[i]);
	free(m->projects);
	for (i = 0; i < m->nnames; i++)
		free(m->names[i]);
	for (i = 0; i < m->nimages; i++)
		free(m->images[i]);
	for (i = 0; i < m->ncompose; i++)
		free(m->compose[i]);
	for (i = 0; i < m->nlabels; i++) {
		free(m->labels[i].key);
		free(m->labels[i].value);
	}
	free(m->names);
	free(m->images);
	free(m->compose);
	free(m->labels);
}

void policy_edge_free(struct pol_edge *e)
{
	free(e->ports);
	free(e->src.cidrs);
	free(e->dst.cidrs);
	free(e->src.fqdn);
	free(e->dst.fqdn);
	free(e->src.ref);
	free(e->dst.ref);
}

bool policy_is_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

bool policy_in_scopes(const char *service, char *const *scopes, size_t nscopes)
{
	size_t i, n;

	for (i = 0; service && i < nscopes; i++) {
		n = strlen(scopes[i]);
		if (!strncmp(service, scopes[i], n) && service[n] == '/')
			return true;
	}
	return false;
}

void policy_free(struct policy *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nservices; i++) {
		free(p->services[i].name);
		policy_match_free(&p->services[i].match);
	}
	for (i = 0; i < p->nedges; i++)
		policy_edge_free(&p->edges[i]);
	for (i = 0; i < p->ncross; i++)
		policy_edge_free(&p->cross[i]);
	free(p->cross);
	for (i = 0; i < p->nscopes; i++) {
		struct pol_scope *sc = &p->scopes[i];
		size_t k;

		free(sc->name);
		policy_match_free(&sc->match);
		for (k = 0; k < sc->nowners; k++)
			free(sc->owners[k]);
		free(sc->owners);
		free(sc->gids);
	}
	free(p->scopes);
	/* files[0] of a single file is file itself */
	for (i = 0; i < p->nfiles; i++)
		if (p->files[i] != p->file)
			free(p->files[i]);
	free(p->files);
	for (i = 0; i < p->nnetworks; i++)
		free(p->networks[i]);
	free(p->networks);
	free(p->services);
	free(p->edges);
	free(p->file);
	free(p);
}

/* A YAML double-quoted scalar: parses back to exactly s. */
static void put_quoted(struct strbuf *b, const char *s)
{
	sb_putc(b, '"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			sb_printf(b, "\\%c", ch);
		/* line breaks YAML knows beyond ASCII: written raw, they
		 * would be folded into a space */
		else if (ch == 0xc2 && (unsigned char)s[1] == 0x85) {
			sb_puts(b, "\\N");
			s++;
		} else if (ch == 0xe2 && (unsigned char)s[1] == 0x80 &&
			   ((unsigned char)s[2] == 0xa8 ||
			    (unsigned char)s[2] == 0xa9)) {
			sb_puts(b, (unsigned char)s[2] == 0xa8 ? "\\L" : "\\P");
			s += 2;
		} else if (ch < 0x20 || ch == 0x7f)
			sb_printf(b, "\\x%02x", ch);
		else
			sb_putc(b, (char)ch);
	}
	sb_putc(b, '"');
}

static void dump_list(struct strbuf *b, const char *key, char **v, size_t n)
{
	size_t i;

	if (!n)
		return;
	sb_printf(b, "      %s: [", key);
	for (i = 0; i < n; i++) {
		sb_puts(b, i ? ", " : "");
		put_quoted(b, v[i]);
	}
	sb_puts(b, "]\n");
}

void policy_peer_format(const struct policy *p, const struct pol_peer *peer,
			bool yaml, struct strbuf *b)
{
	char a[64];
	size_t i;

	switch (peer->kind) {
	case PEER_SERVICE:
		sb_puts(b, p->services[peer->service].name);
		return;
	case PEER_WORLD:
		sb_puts(b, "world");
		return;
	case PEER_HOST:
		sb_puts(b, "host");
		return;
	case PEER_FQDN:
		sb_printf(b, yaml ? "{ fqdn: %s }" : "%s", peer->fqdn);
		return;
	case PEER_CIDR:
		if (yaml)
			sb_puts(b, "{ cidr: [");
		for (i = 0; i < peer->ncidrs; i++) {
			addr_format(peer->cidrs[i].family, peer->cidrs[i].lo, a,
				    sizeof(a));
			sb_printf(b, yaml ? "%s\"%s/%d\"" : "%s%s/%d",
				  i ? ", " : "", a, peer->cidrs[i].plen);
		}
		if (yaml)
			sb_puts(b, "] }");
		return;
	}
}

void policy_add_edge(struct policy *p, const struct pol_edge *e)
{
	struct pol_edge *n;
	size_t cap = p->nedges, i;
	struct pol_peer *peers[2];

	n = PUSH(p->edges, p->nedges, cap);
	*n = *e;
	n->ports = xmalloc(sizeof(*n->ports) * (e->nports + 1));
	memcpy(n->ports, e->ports, sizeof(*n->ports) * e->nports);
	peers[0] = &n->src;
	peers[1] = &n->dst;
	for (i = 0; i < 2; i++) {
		struct pol_peer *q = peers[i];
		struct pol_cidr *c = q->cidrs;

		if (q->ncidrs) {
			q->cidrs = xmalloc(sizeof(*c) * q->ncidrs);
			memcpy(q->cidrs, c, sizeof(*c) * q->ncidrs);
		}
		if (q->fqdn)
			q->fqdn = xstrdup(q->fqdn);
	}
}

void policy_dump(const struct policy *p, struct strbuf *b)
{
	char port[32];
	size_t s, i, j;

	sb_puts(b, "version: 1\nsettings:\n");
	sb_printf(b,
		  "  mode: %s\n  unmatched: %s\n  log_rate: %u/%s\n"
		  "  log_group: %u\n  log_allowed: %s\n",
		  p->mode == POL_AUDIT ? "audit" : "enforce",
		  p->unmatched_allow ? "allow" : "deny", p->log_rate,
		  p->log_rate_unit, p->log_group,
		  p->log_allowed ? "true" : "false");
	if (p->networks_set) {
		sb_puts(b, "  networks: [");
		for (i = 0; i < p->nnetworks; i++) {
			sb_puts(b, i ? ", " : "");
			put_quoted(b, p->networks[i]);
		}
		sb_puts(b, "]\n");
	}
	sb_puts(b, "services:\n");
	for (s = 0; s < p->nservices; s++) {
		const struct pol_match *m = &p->services[s].match;
		bool any[2] = {false, false};

		sb_printf(b, "  %s:\n    match:\n", p->services[s].name);
		dump_list(b, "name", m->names, m->nnames);
		dump_list(b, "image", m->images, m->nimages);
		dump_list(b, "compose_service", m->compose, m->ncompose);
		dump_list(b, "compose_project", m->projects, m->nprojects);
		if (m->nlabels) {
			sb_puts(b, "      labels:\n");
			for (i = 0; i < m->nlabels; i++) {
				sb_puts(b, "        ");
				put_quoted(b, m->labels[i].key);
				sb_puts(b, ": ");
				put_quoted(b, m->labels[i].value);
				sb_putc(b, '\n');
			}
		}
		/* egress edges stay with their source, ingress with their
		 * destination, each in file order */
		for (i = 0; i < 2 * p->nedges; i++) {
			const struct pol_edge *e = &p->edges[i % p->nedges];
			int in = e->ingress;
			const struct pol_peer *self = in ? &e->dst : &e->src;

			if ((size_t)in != i / p->nedges ||
			    self->kind != PEER_SERVICE || self->service != s)
				continue;
			if (!any[in])
				sb_puts(b, in ? "    ingress:\n"
					      : "    egress:\n");
			any[in] = true;
			sb_printf(b, "      - %s: ", in ? "from" : "to");
			policy_peer_format(p, in ? &e->src : &e->dst, true, b);
			sb_puts(b, "\n        ports: [");
			for (j = 0; j < e->nports; j++) {
				policy_port_format(&e->ports[j], port,
						   sizeof(port));
				sb_printf(b, "%s%s", j ? ", " : "", port);
			}
			sb_puts(b, "]\n");
			if (e->log >= 0)
				sb_printf(b, "        log: %s\n",
					  e->log ? "true" : "false");
		}
	}
}
