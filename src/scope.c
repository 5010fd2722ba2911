/* Policy directories: every *.yaml file of a directory, read in name
 * order and merged into one policy. A file that declares `scope:` is a
 * team's: its services are named SCOPE/NAME (SCOPE: the file's name
 * without .yaml), hold only containers its scope matches too, and an
 * edge between them and another scope's services takes effect only where
 * the other side's file declares it as well (on the ports both name).
 * A file without scope is the host's: settings, host-wide edges, and
 * what scoped files may open to the world (settings.scopes_may).
 * Reads the directory, its files and the group database; nothing else. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bulkhead/policy.h"

struct part {
	char *path, *stem;
	struct stat st;
	struct policy *p;
	size_t svc0; /* its first service in the merged policy */
	long scope;  /* its scope's index, or -1 */
};

/* A directory's cross-scope edge, waiting for the other side. */
struct cross {
	struct pol_edge e;
	long by, other; /* the declaring scope, the other end's (-1 global) */
	bool accepted;
	/* the other side's declaration, sharing no port with this one */
	const char *empty_file;
	struct pol_loc empty;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.yaml names of dir, sorted; NULL with a diag. */
static char **list_dir(const char *dir, size_t *n, struct diags *d)
{
	struct stat st;
	struct dirent *de;
	char **v = NULL;
	size_t cap = 0, len;
	DIR *dp;

	if (stat(dir, &st)) {
		diags_add(d, DIAG_ERROR, dir, 0, 0, "cannot read: %s",
			  strerror(errno));
		return NULL;
	}
	if (!policy_trusted_uid(st.st_uid) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		diags_add(d, DIAG_ERROR, dir, 0, 0,
			  "refused: a policy directory may be writable by root "
			  "only, or others could add or replace its files "
			  "(owner uid %u, mode %04o)",
			  (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return NULL;
	}
	dp = opendir(dir);
	if (!dp) {
		diags_add(d, DIAG_ERROR, dir, 0, 0, "cannot read: %s",
			  strerror(errno));
		return NULL;
	}
	*n = 0;
	while ((de = readdir(dp))) {
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= 5 ||
		    strcmp(de->d_name + len - 5, ".yaml"))
			continue;
		*PUSH(v, *n, cap) = xstrdup(de->d_name);
	}
	closedir(dp);
	if (!*n) {
		diags_add(d, DIAG_ERROR, dir, 0, 0,
			  "no *.yaml policy file in this directory");
		free(v);
		return NULL;
	}
	qsort(v, *n, sizeof(*v), by_name);
	return v;
}

static void read_part(struct part *pt, const char *dir, const char *name,
		      struct diags *d)
{
	size_t len = 0;
	char *buf;

	pt->path = xasprintf("%s%s%s", dir,
			     dir[strlen(dir) - 1] == '/' ? "" : "/", name);
	pt->stem = xstrndup(name, strlen(name) - 5);
	pt->scope = -1;
	if (!policy_valid_name(pt->stem)) {
		diags_add(d, DIAG_ERROR, pt->path, 0, 0,
			  "the file's name names its scope: '%s' must be 1-64 "
			  "letters, digits, '_', '.' or '-', starting with a "
			  "letter or digit",
			  pt->stem);
		return;
	}
	buf = policy_read_file(pt->path, &pt->st, &len, d);
	if (!buf)
		return;
	pt->p = policy_parse_part(pt->path, buf, len, d);
	free(buf);
	if (pt->p && !pt->p->nscopes && (pt->st.st_mode & S_IWGRP) &&
	    pt->st.st_gid != 0) {
		diags_add(d, DIAG_ERROR, pt->path, 0, 0,
			  "refused: a file without 'scope' speaks for the "
			  "whole host, and its group (gid %u) may write it",
			  (unsigned)pt->st.st_gid);
	}
}

/* --- settings and scopes --------------------------------------------- */

static void take_setting(struct policy *m, struct policy *fp,
			 enum pol_setting k)
{
	switch (k) {
	case PS_MODE:
		m->mode = fp->mode;
		break;
	case PS_UNMATCHED:
		m->unmatched_allow = fp->unmatched_allow;
		break;
	case PS_LOG_RATE:
		m->log_rate = fp->log_rate;
		m->log_rate_unit = fp->log_rate_unit;
		break;
	case PS_NETWORKS:
		m->networks = fp->networks;
		m->nnetworks = fp->nnetworks;
		m->networks_set = true;
		fp->networks = NULL;
		fp->nnetworks = 0;
		break;
	case PS_LOG_GROUP:
		m->log_group = fp->log_group;
		break;
	case PS_LOG_ALLOWED:
		m->log_allowed = fp->log_allowed;
		break;
	case PS_SCOPES_MAY:
		m->scopes_may = fp->scopes_may;
		break;
	case PS_COUNT:
		break;
	}
}

static void merge_settings(struct policy *m, struct part *pt,
			   const char **set_in, struct diags *d)
{
	struct policy *fp = pt->p;
	enum pol_setting k;

	for (k = 0; k < PS_COUNT; k++) {
		struct pol_loc at = fp->set_at[k];

		if (!at.line)
			continue;
		if (m->set_at[k].line) {
			diags_add(d, DIAG_ERROR, pt->path, at.line, at.col,
				  "settings.%s is set already, at %s:%u:%u",
				  policy_setting_name(k), set_in[k],
				  m->set_at[k].line, m->set_at[k].col);
			continue;
		}
		m->set_at[k] = at;
		set_in[k] = pt->path;
		take_setting(m, fp, k);
	}
}

static bool lists_equal(char **a, size_t na, char **b, size_t nb)
{
	size_t i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

static bool match_equal(const struct pol_match *a, const struct pol_match *b)
{
	size_t i;

	if (!lists_equal(a->names, a->nnames, b->names, b->nnames) ||
	    !lists_equal(a->images, a->nimages, b->images, b->nimages) ||
	    !lists_equal(a->compose, a->ncompose, b->compose, b->ncompose) ||
	    !lists_equal(a->projects, a->nprojects, b->projects,
			 b->nprojects) ||
	    a->nlabels != b->nlabels)
		return false;
	for (i = 0; i < a->nlabels; i++)
		if (strcmp(a->labels[i].key, b->labels[i].key) ||
		    strcmp(a->labels[i].value, b->labels[i].value))
			return false;
	return true;
}

static void merge_scope(struct policy *m, struct part *pt, size_t *cap,
			struct diags *d)
{
	struct pol_scope *sc, *in = &pt->p->scopes[0];
	size_t i;

	for (i = 0; i < m->nscopes; i++)
		if (match_equal(&m->scopes[i].match, &in->match))
			diags_add(d, DIAG_ERROR, pt->path, in->loc.line,
				  in->loc.col,
				  "this scope is %s's already (%s:%u:%u): one "
				  "scope, one file",
				  m->scopes[i].name, m->scopes[i].file,
				  m->scopes[i].loc.line, m->scopes[i].loc.col);
	pt->scope = (long)m->nscopes;
	sc = PUSH(m->scopes, m->nscopes, *cap);
	*sc = *in;
	memset(in, 0, sizeof(*in));
	sc->name = xstrdup(pt->stem);
	sc->gids = xcalloc(sc->nowners + 1, sizeof(*sc->gids));
	for (i = 0; i < sc->nowners; i++) {
		struct group *g = getgrnam(sc->owners[i]);

		if (!g)
			diags_add(d, DIAG_ERROR, pt->path, sc->owners_loc.line,
				  sc->owners_loc.col,
				  "owners: no group '%s' on this host",
				  sc->owners[i]);
		else
			sc->gids[i] = (unsigned)g->gr_gid;
	}
}

/* --- services -------------------------------------------------------- */

/* Whether a service's values for one key can ever pass the scope's:
 * false only when every one is exact and none fits. */
static bool can_meet(char **scope, size_t ns, char **svc, size_t nv)
{
	size_t i, j;

	if (!ns || !nv)
		return true;
	for (j = 0; j < nv; j++) {
		if (policy_is_glob(svc[j]))
			return true;
		for (i = 0; i < ns; i++)
			if (!fnmatch(scope[i], svc[j], 0))
				return true;
	}
	return false;
}

/* The first key on which a service's match and its scope's cannot both
 * hold, or NULL. */
static const char *conflict(const struct pol_match *sc,
			    const struct pol_match *m)
{
	size_t i, j;

	if (!can_meet(sc->names, sc->nnames, m->names, m->nnames))
		return "name";
	if (!can_meet(sc->images, sc->nimages, m->images, m->nimages))
		return "image";
	if (!can_meet(sc->compose, sc->ncompose, m->compose, m->ncompose))
		return "compose_service";
	if (!can_meet(sc->projects, sc->nprojects, m->projects, m->nprojects))
		return "compose_project";
	for (i = 0; i < sc->nlabels; i++)
		for (j = 0; j < m->nlabels; j++)
			if (!strcmp(sc->labels[i].key, m->labels[j].key) &&
			    strcmp(sc->labels[i].value, "*") &&
			    strcmp(m->labels[j].value, "*") &&
			    strcmp(sc->labels[i].value, m->labels[j].value))
				return "labels";
	return NULL;
}

static void merge_services(struct policy *m, struct part *pt, size_t *cap,
			   struct diags *d)
{
	struct policy *fp = pt->p;
	size_t i;
	long dup;

	pt->svc0 = m->nservices;
	for (i = 0; i < fp->nservices; i++) {
		struct pol_service *sv = &fp->services[i], *n;
		const struct pol_scope *sc;
		const char *key;

		if (pt->scope < 0 &&
		    (dup = policy_service_index(m, sv->name)) >= 0)
			diags_add(
			    d, DIAG_ERROR, pt->path, sv->loc.line, sv->loc.col,
			    "service '%s' is defined already, at %s:%u:%u",
			    sv->name, m->services[dup].file,
			    m->services[dup].loc.line,
			    m->services[dup].loc.col);
		n = PUSH(m->services, m->nservices, *cap);
		*n = *sv;
		n->scope = pt->scope;
		if (pt->scope < 0)
			continue;
		n->name = xasprintf("%s/%s", pt->stem, sv->name);
		sc = &m->scopes[pt->scope];
		if ((key = conflict(&sc->match, &n->match)))
			diags_add(
			    d, DIAG_ERROR, pt->path, sv->loc.line, sv->loc.col,
			    "service '%s' can never hold a container: its "
			    "match.%s lies outside the file's scope "
			    "(%s:%u:%u)",
			    sv->name, key, pt->path, sc->loc.line, sc->loc.col);
		free(sv->name);
	}
	free(fp->services);
	fp->services = NULL;
	fp->nservices = 0;
}

/* --- edges ----------------------------------------------------------- */

/* The files that did not load (p NULL): what they would define is
 * not there, and saying that a name they define is unknown misleads. */
struct parts {
	const struct part *v;
	size_t n;
};

static bool failed(const struct parts *all, const char *scope, size_t len)
{
	size_t i;

	for (i = 0; i < all->n; i++)
		if (!all->v[i].p &&
		    (!scope || (strlen(all->v[i].stem) == len &&
				!strncmp(all->v[i].stem, scope, len))))
			return true;
	return false;
}

/* A peer of pt's edge, in merged indexes; false when it names none. */
static bool resolve(const struct policy *m, const struct part *pt,
		    const struct parts *all, struct pol_peer *q,
		    struct diags *d)
{
	const char *slash;
	long si;
	size_t i;

	if (q->kind != PEER_SERVICE)
		return true;
	if (!q->ref) {
		q->service += pt->svc0;
		return true;
	}
	si = policy_service_index(m, q->ref);
	slash = strchr(q->ref, '/');
	if (si >= 0) {
		q->service = (size_t)si;
	} else if (failed(all, slash ? q->ref : NULL,
			  slash ? (size_t)(slash - q->ref) : 0)) {
		; /* maybe in a file that did not load: said there */
	} else if (!slash) {
		diags_add(d, DIAG_ERROR, pt->path, q->ref_loc.line,
			  q->ref_loc.col,
			  "unknown peer '%s' (not a service of this file or of "
			  "a file without scope, nor world, host, cidr or "
			  "fqdn)",
			  q->ref);
	} else {
		for (i = 0; i < m->nscopes; i++)
			if (strlen(m->scopes[i].name) ==
				(size_t)(slash - q->ref) &&
			    !strncmp(m->scopes[i].name, q->ref,
				     (size_t)(slash - q->ref)))
				break;
		if (i < m->nscopes)
			diags_add(d, DIAG_ERROR, pt->path, q->ref_loc.line,
				  q->ref_loc.col,
				  "unknown peer '%s' (%s has no service '%s')",
				  q->ref, m->scopes[i].file, slash + 1);
		else
			diags_add(
			    d, DIAG_ERROR, pt->path, q->ref_loc.line,
			    q->ref_loc.col,
			    "unknown peer '%s' (no file of this directory "
			    "declares a scope '%.*s')",
			    q->ref, (int)(slash - q->ref), q->ref);
	}
	free(q->ref);
	q->ref = NULL;
	return si >= 0;
}

/* What a scoped file may open beyond the scopes: POL_MAY_* for an
 * edge's outside end, or 0. */
static unsigned may_need(const struct pol_edge *e, const char **what)
{
	const struct pol_peer *o = e->ingress ? &e->src : &e->dst;

	switch (o->kind) {
	case PEER_WORLD:
		*what = e->ingress ? "world-ingress" : "world-egress";
		return e->ingress ? POL_MAY_WORLD_INGRESS
				  : POL_MAY_WORLD_EGRESS;
	case PEER_HOST:
		*what = "host";
		return POL_MAY_HOST;
	case PEER_CIDR:
		*what = "cidr";
		return POL_MAY_CIDR;
	case PEER_FQDN:
		*what = "fqdn";
		return POL_MAY_FQDN;
	case PEER_SERVICE:
		break;
	}
	return 0;
}

static void merge_edges(struct policy *m, struct part *pt,
			const struct parts *all, size_t *cap, struct cross **cr,
			size_t *ncr, size_t *capcr, struct diags *d)
{
	struct policy *fp = pt->p;
	const char *what = NULL;
	unsigned need;
	size_t i;

	for (i = 0; i < fp->nedges; i++) {
		struct pol_edge e = fp->edges[i];
		const struct pol_peer *o = e.ingress ? &e.src : &e.dst;
		bool src_ok = resolve(m, pt, all, &e.src, d);
		long other;

		if (!resolve(m, pt, all, &e.dst, d) || !src_ok) {
			policy_edge_free(&e);
			continue;
		}
		if (pt->scope >= 0 && e.log < 0 &&
		    fp->set_at[PS_LOG_ALLOWED].line)
			e.log = fp->log_allowed;
		need = pt->scope >= 0 ? may_need(&e, &what) : 0;
		if (need && !(m->scopes_may & need))
			diags_add(d, DIAG_ERROR, pt->path, e.loc.line,
				  e.loc.col,
				  "a scoped file may not open its services "
				  "this way (%s); a file without scope allows "
				  "it with settings.scopes_may: [%s]",
				  what, what);
		other = o->kind == PEER_SERVICE && o->service < m->nservices
			    ? m->services[o->service].scope
			    : pt->scope;
		if (pt->scope < 0 || other == pt->scope) {
			*PUSH(m->edges, m->nedges, *cap) = e;
			continue;
		}
		*PUSH(*cr, *ncr, *capcr) =
		    (struct cross){.e = e, .by = pt->scope, .other = other};
	}
	free(fp->edges);
	fp->edges = NULL;
	fp->nedges = 0;
}

static bool same_ends(const struct pol_edge *a, const struct pol_edge *b)
{
	return a->src.kind == PEER_SERVICE && b->src.kind == PEER_SERVICE &&
	       a->dst.kind == PEER_SERVICE && b->dst.kind == PEER_SERVICE &&
	       a->src.service == b->src.service &&
	       a->dst.service == b->dst.service;
}

/* The ports both edges name, box by box; 0 when none. */
static size_t intersect(const struct pol_edge *a, const struct pol_edge *b,
			struct pol_port **out)
{
	size_t i, j, n = 0, cap = 0;

	*out = NULL;
	for (i = 0; i < a->nports; i++)
		for (j = 0; j < b->nports; j++) {
			const struct pol_port *x = &a->ports[i],
					      *y = &b->ports[j];
			struct pol_port r = {
			    .proto_lo = x->proto_lo > y->proto_lo ? x->proto_lo
								  : y->proto_lo,
			    .proto_hi = x->proto_hi < y->proto_hi ? x->proto_hi
								  : y->proto_hi,
			    .lo = x->lo > y->lo ? x->lo : y->lo,
			    .hi = x->hi < y->hi ? x->hi : y->hi,
			    .loc = x->loc};

			if (r.proto_lo <= r.proto_hi && r.lo <= r.hi)
				*PUSH(*out, n, cap) = r;
		}
	return n;
}

/* Both sides of a cross-scope edge: the ports they share, as one edge
 * declared where the egress side is and accepted where the ingress is. */
static void consent(struct policy *m, size_t *cap, struct cross *a,
		    struct cross *b)
{
	struct pol_edge n;
	struct pol_port *pp;
	size_t np = intersect(&a->e, &b->e, &pp);

	if (a->e.ingress && !b->e.ingress) {
		struct cross *t = a;

		a = b;
		b = t;
	}
	n = a->e;
	if (!np) {
		a->empty_file = b->e.file;
		a->empty = b->e.loc;
		b->empty_file = a->e.file;
		b->empty = a->e.loc;
		return;
	}
	a->accepted = b->accepted = true;
	n.ports = pp;
	n.nports = np;
	n.src.cidrs = n.dst.cidrs = NULL;
	n.src.fqdn = n.dst.fqdn = NULL;
	n.accepted_file = b->e.file;
	n.accepted = b->e.loc;
	if (a->e.log >= 0 || b->e.log >= 0)
		n.log = a->e.log > 0 || b->e.log > 0;
	*PUSH(m->edges, m->nedges, *cap) = n;
}

static void not_accepted(struct policy *m, struct cross *x, struct diags *d)
{
	const struct pol_edge *e = &x->e;
	const char
	    *own =
		m->services[e->ingress ? e->dst.service : e->src.service].name,
	    *other =
		m->services[e->ingress ? e->src.service : e->dst.service].name;
	const char *file = x->other >= 0 ? m->scopes[x->other].file : NULL,
		   *base = file && strrchr(file, '/') ? strrchr(file, '/') + 1
						      : file;

	if (x->empty_file)
		diags_add(d, DIAG_WARNING, e->file, e->loc.line, e->loc.col,
			  "%s accepts this edge on none of its ports "
			  "(%s:%u:%u names others); not programmed",
			  other, x->empty_file, x->empty.line, x->empty.col);
	else
		diags_add(d, DIAG_WARNING, e->file, e->loc.line, e->loc.col,
			  "%s does not accept this edge (no %s %s in %s); not "
			  "programmed",
			  other, e->ingress ? "egress to" : "ingress from", own,
			  base ? base : "a file without scope");
}

/* Pairs each cross-scope edge with the other side's declarations. */
static void settle(struct policy *m, size_t *cap, struct cross *cr, size_t n,
		   struct diags *d)
{
	size_t i, j, ncap = 0, nglobal = m->nedges;

	for (i = 0; i < n; i++) {
		for (j = i + 1; cr[i].other >= 0 && j < n; j++)
			if (cr[j].by == cr[i].other &&
			    same_ends(&cr[i].e, &cr[j].e))
				consent(m, cap, &cr[i], &cr[j]);
		/* a global service: a file without scope must allow it */
		for (j = 0; cr[i].other < 0 && j < nglobal; j++) {
			struct pol_port *pp = NULL;

			if (!same_ends(&cr[i].e, &m->edges[j]))
				continue;
			if (intersect(&cr[i].e, &m->edges[j], &pp))
				cr[i].accepted = true;
			else {
				cr[i].empty_file = m->edges[j].file;
				cr[i].empty = m->edges[j].loc;
			}
			free(pp);
		}
	}
	for (i = 0; i < n; i++) {
		if (!cr[i].accepted)
			not_accepted(m, &cr[i], d);
		*PUSH(m->cross, m->ncross, ncap) = cr[i].e;
	}
}

struct policy *policy_merge_dir(const char *dir, struct diags *d)
{
	const char *set_in[PS_COUNT] = {0};
	size_t nnames = 0, i, before = d->nerrors;
	size_t scap = 0, svcap = 0, ecap = 0, ncr = 0, capcr = 0;
	char **names = list_dir(dir, &nnames, d);
	struct part *pts;
	struct cross *cr = NULL;
	struct parts all;
	struct policy *m;

	if (!names)
		return NULL;
	pts = xcalloc(nnames, sizeof(*pts));
	all = (struct parts){pts, nnames};
	for (i = 0; i < nnames; i++)
		read_part(&pts[i], dir, names[i], d);
	m = xcalloc(1, sizeof(*m));
	m->file = xstrdup(dir);
	m->is_dir = true;
	m->log_rate = 20;
	m->log_rate_unit = "second";
	m->log_group = 100;
	m->scopes_may = POL_MAY_CIDR | POL_MAY_FQDN;
	m->files = xcalloc(nnames, sizeof(*m->files));
	/* what the files that loaded say together, so that check -p DIR
	 * reports every error at once (the result is refused anyway when a
	 * file did not load); every file's settings, scope and services
	 * first: edges name any of them */
	for (i = 0; i < nnames; i++) {
		if (!pts[i].p)
			continue;
		m->files[m->nfiles++] = pts[i].p->file;
		pts[i].p->file = NULL;
		pts[i].p->nfiles = 0;
		if (pts[i].p->nscopes)
			merge_scope(m, &pts[i], &scap, d);
		else
			merge_settings(m, &pts[i], set_in, d);
		merge_services(m, &pts[i], &svcap, d);
	}
	for (i = 0; i < nnames; i++)
		if (pts[i].p)
			merge_edges(m, &pts[i], &all, &ecap, &cr, &ncr, &capcr,
				    d);
	settle(m, &ecap, cr, ncr, d);
	for (i = 0; i < nnames; i++) {
		policy_free(pts[i].p);
		free(pts[i].path);
		free(pts[i].stem);
		free(names[i]);
	}
	free(pts);
	free(names);
	free(cr);
	if (d->nerrors == before)
		return m;
	policy_free(m);
	return NULL;
}
