/* Placement and convergence. Each container event becomes one delta
 * batch, taken out and put in again as Docker says it is now; a gap in
 * what Docker told us asks for a full converge. Events are handled one
 * at a time, in order: a container's start and its connect can never be
 * applied the wrong way round. Commits go through the caller's
 * callbacks; nothing here does I/O. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>

#include "bulkhead/sync.h"

#define AT_CONNECT_N 64u
#define BIND_FIRST_MS 5u
#define BIND_LAST_MS 1280u

struct pending {
	struct docker_event ev;
	double t_read;	/* monotonic ms when its line was read */
	double t_reply; /* ... and when Docker's (last) answer came */
	bool listed;	/* CONNECT: the list entry is in, the network next */
	bool asked;	/* CONNECT: in the list being asked for */
};

/* Connects whose list entries one request asks for: a burst's cost in
 * requests is its length over this (the URL stays under 8 KiB). */
#define LIST_BATCH 48u

/* A container placed when it joined a network, before its start event:
 * when that was committed, and what bulkhead itself took. */
struct at_connect {
	char id[DOCKER_ID_MAX + 1];
	double t_commit, own_us;
};

struct sync {
	struct sync_ops ops;
	struct compile_opts co;
	struct compile_fqdn *fql; /* co.fqdn */
	struct policy *p;
	struct compiler *cc;
	struct inventory *inv;
	/* the last full compile (sets for deltas), with each delta
	 * committed since made to its elements too */
	struct ir_ruleset *rs;
	bool rs_stale;	/* deltas committed since: not a full compile's form */
	bool rs_behind; /* refilled since: its elements lack the kernel's */
	/* the deltas committed since rs's elements were last brought up to
	 * date: applied in one pass when a judge needs them, not each one
	 * into sets of every container as it is placed */
	struct ir_delta lag;
	struct ports *ports;
	struct docker *dk;
	struct trace_index *ix; /* NULL when the inventory or policy moved */
	struct trace_index *gone_ix; /* gone's, the same way */
	/* containers gone lately, so that a record still names them */
	struct inventory *gone;
	/* gone's entries in the order they left, for their expiry */
	struct gone_entry {
		char *id;
		time_t at;
	} * gone_fifo;
	size_t ngone_fifo, gone_head, capgone;
	time_t gone_s; /* how long they are kept: SYNC_GONE_S */
	/* addresses given up since the last revocation, and whose */
	struct gone_addr {
		char *id;
		struct revoke_addr a;
	} * gone_addrs;
	size_t ngone_addrs, capgone_addrs;
	/* "bridge family address" -> the id of the container holding it */
	struct smap owners;
	/* bridge port -> the id of the container bound to it */
	struct smap bound;
	bool revoke_wanted, resync_wanted, garbage_logged;
	/* containers placed at their connect, before Docker moved their
	 * veth's peer into their namespace: bound a moment later */
	char **unbound;
	size_t nunbound, capunbound;
	unsigned bind_ms;
	struct pending *q;
	size_t qhead, qn, qcap;
	char *path;	/* what sync_next asked for */
	json_t *listed; /* the connects' list entries, while they wait */
	/* The last network object Docker gave, and when it was asked: it
	 * holds every container that joined before, so a connect read
	 * before then needs no object of its own (a burst of n connects
	 * costs one answer of the network's size, not n). */
	struct strbuf net;
	char *net_id;
	double net_asked, asking_at; /* asking_at: the head's, being asked */
	char *last_diags;
	struct at_connect at_connect[AT_CONNECT_N];
	size_t at_connect_pos;
	struct sync_stats st;
};

static void say(struct sync *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(struct sync *s, const char *fmt, ...)
{
	char *line;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		line = NULL;
	va_end(ap);
	if (line)
		s->ops.say(s->ops.ctx, line);
	free(line);
}

static void fail(struct sync *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct sync *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->ops.fail(s->ops.ctx, msg);
}

struct sync *sync_new(struct policy *p, const struct compile_opts *co,
		      struct ports *ports, struct docker *dk,
		      const struct sync_ops *ops)
{
	struct sync *s = xcalloc(1, sizeof(*s));

	s->ops = *ops;
	s->co = *co;
	s->p = p;
	s->cc = compile_new(p, &s->co);
	s->ports = ports;
	s->dk = dk;
	s->inv = inventory_new();
	s->gone = inventory_new();
	s->gone_s = SYNC_GONE_S;
	return s;
}

void sync_free(struct sync *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->ngone_addrs; i++)
		free(s->gone_addrs[i].id);
	free(s->gone_addrs);
	for (i = 0; i < s->nunbound; i++)
		free(s->unbound[i]);
	free(s->unbound);
	trace_index_free(s->ix);
	trace_index_free(s->gone_ix);
	json_decref(s->listed);
	sb_free(&s->net);
	free(s->net_id);
	inventory_free(s->gone);
	for (i = s->gone_head; i < s->ngone_fifo; i++)
		free(s->gone_fifo[i].id);
	free(s->gone_fifo);
	ir_free(s->rs);
	ir_delta_free(&s->lag);
	inventory_free(s->inv);
	smap_free(&s->owners);
	smap_free(&s->bound);
	compile_free(s->cc);
	policy_free(s->p);
	free(s->fql);
	free(s->q);
	free(s->path);
	free(s->last_diags);
	free(s);
}

/* --- latencies ---------------------------------------------------------- */

const double sync_lat_le[SYNC_LAT_NLE] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

static void lat_add(struct sync_lat *l, double us, double own_us)
{
	size_t i;

	for (i = 0; i < SYNC_LAT_NLE; i++)
		l->le[i] += us <= sync_lat_le[i] * 1e6;
	l->count++;
	l->sum_s += us / 1e6;
	l->v[l->pos] = us;
	l->own[l->pos] = own_us;
	l->pos = (l->pos + 1) % SYNC_LAT_N;
	if (l->n < SYNC_LAT_N)
		l->n++;
}

/* A start or connect handled. A start whose container a connect placed
 * already counts the time from its read to that commit, zero when the
 * commit came first (the usual case: Docker sends the connect while it
 * creates the process, the start once it runs). A start whose container
 * was gone by its inspect (removed at once) counts only so. */
static void lat_record(struct sync *s, const struct pending *pe, bool committed,
		       bool gone)
{
	double now = mono_ms();
	size_t i;

	if (pe->ev.kind == DEV_CONNECT) {
		struct at_connect *e;

		if (!committed)
			return;
		for (i = 0; i < AT_CONNECT_N; i++)
			if (!strcmp(s->at_connect[i].id, pe->ev.id))
				s->at_connect[i].id[0] = 0;
		e = &s->at_connect[s->at_connect_pos++ % AT_CONNECT_N];
		lat_add(&s->st.connect, (now - pe->t_read) * 1e3,
			(now - pe->t_reply) * 1e3);
		snprintf(e->id, sizeof(e->id), "%s", pe->ev.id);
		e->t_commit = now;
		e->own_us = (now - pe->t_reply) * 1e3;
		return;
	}
	if (!committed)
		for (i = 0; i < AT_CONNECT_N; i++) {
			struct at_connect *e = &s->at_connect[i];
			double us = (e->t_commit - pe->t_read) * 1e3;

			if (strcmp(e->id, pe->ev.id))
				continue;
			e->id[0] = 0;
			s->st.before_start += us <= 0;
			lat_add(&s->st.start, us > 0 ? us : 0, e->own_us);
			return;
		}
	if (gone)
		return;
	lat_add(&s->st.start, (now - pe->t_read) * 1e3,
		(now - pe->t_reply) * 1e3);
}

/* The policy is placed at the network connect; the port is bound at
 * the start, as Docker moves the veth's peer into the container's
 * namespace then: the two latencies are kept apart. */
static void record_latency(struct sync *s, const struct pending *pe,
			   const struct ir_delta *delta)
{
	size_t i, policy = 0, identity = 0;

	for (i = 0; i < delta->n; i++) {
		if (s->rs->sets[delta->v[i].set].family == IRF_BRIDGE)
			identity++;
		else
			policy++;
	}
	lat_record(s, pe, policy > 0, false);
	if (identity && pe->ev.kind == DEV_START)
		lat_add(&s->st.bound, (mono_ms() - pe->t_read) * 1e3,
			(mono_ms() - pe->t_reply) * 1e3);
}

/* --- placing containers ------------------------------------------------ */

static const char *svc_name(const struct sync *s, const struct inv_container *c)
{
	long a, b, i = compile_assign(s->cc, c, &a, &b);

	return i >= 0		       ? s->p->services[i].name
	       : i == COMPILE_CONFLICT ? "(two services: denied)"
				       : "(no service)";
}

static void where(const struct inv_container *c, struct strbuf *sb)
{
	size_t i;
	char a[64];

	for (i = 0; i < c->nnets; i++) {
		sb_printf(sb, " %s", c->nets[i].name);
		if (c->nets[i].has4) {
			addr_format(AF_INET, c->nets[i].ip4, a, sizeof(a));
			sb_printf(sb, " %s", a);
		}
		if (c->nets[i].has6) {
			addr_format(AF_INET6, c->nets[i].ip6, a, sizeof(a));
			sb_printf(sb, " %s", a);
		}
	}
}

/* The policy, the compiler or the whole inventory changed (or an
 * address changed hands): the addresses' index is built anew when next
 * asked. A container placed or taken out, the index follows itself. */
static void inv_changed(struct sync *s)
{
	trace_index_free(s->ix);
	s->ix = NULL;
	trace_index_free(s->gone_ix);
	s->gone_ix = NULL;
}

static void gone_addr(struct sync *s, const char *id, int family, u128 addr)
{
	*PUSH(s->gone_addrs, s->ngone_addrs, s->capgone_addrs) =
	    (struct gone_addr){xstrdup(id), {family, addr}};
}

/* fn over the keys of the owners map for c: each address it holds,
 * with its bridge ("br-1a2b 172.18.0.5"). */
typedef void owner_fn(struct sync *s, const char *key,
		      const struct inv_container *c, struct ir_delta *delta);

static void owner_keys(struct sync *s, const struct inv_container *c,
		       owner_fn *fn, struct ir_delta *delta)
{
	char a[64], key[320];
	size_t j;

	for (j = 0; j < c->nnets; j++) {
		const struct inv_net *net = &c->nets[j];

		if (net->has4) {
			addr_format(AF_INET, net->ip4, a, sizeof(a));
			snprintf(key, sizeof(key), "%s %s", net->bridge, a);
			fn(s, key, c, delta);
		}
		if (net->has6) {
			addr_format(AF_INET6, net->ip6, a, sizeof(a));
			snprintf(key, sizeof(key), "%s %s", net->bridge, a);
			fn(s, key, c, delta);
		}
	}
}

static void owner_put(struct sync *s, const char *key,
		      const struct inv_container *c, struct ir_delta *delta)
{
	(void)delta;
	smap_put(&s->owners, key, c->id);
}

static void owner_del(struct sync *s, const char *key,
		      const struct inv_container *c, struct ir_delta *delta)
{
	(void)delta;
	smap_del(&s->owners, key, c->id);
}

/* c's ports into the bound map (in), or out of it. */
static void bound_keys(struct sync *s, const struct inv_container *c, bool in)
{
	size_t j;

	for (j = 0; j < c->nnets; j++)
		if (c->nets[j].port) {
			if (in)
				smap_put(&s->bound, c->nets[j].port, c->id);
			else
				smap_del(&s->bound, c->nets[j].port, c->id);
		}
}

static void owners_rebuild(struct sync *s)
{
	size_t i;

	smap_free(&s->owners);
	smap_free(&s->bound);
	for (i = 0; i < s->inv->n; i++) {
		owner_keys(s, &s->inv->c[i], owner_put, NULL);
		bound_keys(s, &s->inv->c[i], true);
	}
}

/* What is kept by container of the inventory (its addresses' owner, its
 * ports bound, the addresses' index) follows c, placed (in) or about to
 * be taken out. */
static void track(struct sync *s, const struct inv_container *c, bool in)
{
	owner_keys(s, c, in ? owner_put : owner_del, NULL);
	bound_keys(s, c, in);
	if (!s->ix)
		return;
	if (!in)
		trace_index_del(s->ix, c);
	else if (!trace_index_add(s->ix, c))
		inv_changed(s); /* an address taken from another: anew */
}

/* Takes container idx out of the inventory, its leaving into delta. */
static void take_out(struct sync *s, size_t idx, struct ir_delta *delta)
{
	time_t now = time(NULL);
	size_t i;

	track(s, &s->inv->c[idx], false);
	if (compile_delta(s->cc, s->inv, idx, false, delta))
		s->resync_wanted = true;
	/* its addresses may go to another container: its flows end */
	for (i = 0; i < s->inv->c[idx].nnets; i++) {
		const struct inv_net *n = &s->inv->c[idx].nets[i];

		if (n->has4)
			gone_addr(s, s->inv->c[idx].id, AF_INET, n->ip4);
		if (n->has6)
			gone_addr(s, s->inv->c[idx].id, AF_INET6, n->ip6);
	}
	/* the oldest first: those past SYNC_GONE_S leave, by id */
	while (s->gone_head < s->ngone_fifo &&
	       now - s->gone_fifo[s->gone_head].at > s->gone_s) {
		struct gone_entry *e = &s->gone_fifo[s->gone_head++];
		long g = inventory_index(s->gone, e->id);

		if (g >= 0) {
			if (s->gone_ix)
				trace_index_del(s->gone_ix, &s->gone->c[g]);
			inventory_remove(s->gone, (size_t)g);
		}
		free(e->id);
	}
	if (s->gone_head && s->gone_head * 2 >= s->ngone_fifo) {
		s->ngone_fifo -= s->gone_head;
		memmove(s->gone_fifo, s->gone_fifo + s->gone_head,
			s->ngone_fifo * sizeof(*s->gone_fifo));
		s->gone_head = 0;
	}
	*PUSH(s->gone_fifo, s->ngone_fifo, s->capgone) =
	    (struct gone_entry){xstrdup(s->inv->c[idx].id), now};
	inventory_move(s->gone, s->inv, idx);
	if (s->gone_ix &&
	    !trace_index_add(s->gone_ix, &s->gone->c[s->gone->n - 1])) {
		trace_index_free(s->gone_ix); /* an address twice: anew */
		s->gone_ix = NULL;
	}
}

/* An address that a new container holds was another's: that one is gone
 * (its die event is late or lost), and its rights must not pass on. */
static void stale_one(struct sync *s, const char *key,
		      const struct inv_container *c, struct ir_delta *delta)
{
	const char *owner = smap_get(&s->owners, key);
	long o =
	    owner && strcmp(owner, c->id) ? inventory_index(s->inv, owner) : -1;

	if (o < 0)
		return;
	say(s,
	    "container %s holds an address of %s, which is gone: removing %s",
	    c->name, s->inv->c[o].name, s->inv->c[o].name);
	take_out(s, (size_t)o, delta);
}

static void drop_stale(struct sync *s, const struct inv_container *c,
		       struct ir_delta *delta)
{
	owner_keys(s, c, stale_one, delta);
}

/* rs, a full compile, is what the kernel holds now: no delta since. */
static void rs_install(struct sync *s, struct ir_ruleset *rs)
{
	ir_free(s->rs);
	s->rs = rs;
	s->rs_stale = s->rs_behind = false;
	s->lag.n = 0;
}

/* delta into the kernel. A deletion may end flows' right: those of the
 * addresses given up (gone_addrs) are judged by them alone when only
 * containers left (by_addr); any other asks for every flow judged. */
static bool commit_by(struct sync *s, struct ir_delta *delta, bool by_addr)
{
	char err[512];
	size_t i;

	ir_delta_cancel(s->rs, delta);
	if (!delta->n)
		return true;
	if (s->ops.apply(s->ops.ctx, s->rs, delta, err, sizeof(err))) {
		fail(s, "kernel: %s; resyncing", err);
		s->resync_wanted = true;
		return false;
	}
	s->st.deltas++;
	for (i = 0; i < delta->n; i++) {
		*PUSH(s->lag.v, s->lag.n, s->lag.cap) = delta->v[i];
		s->revoke_wanted |= !by_addr && !delta->v[i].add;
	}
	s->rs_stale = true;
	return true;
}

static bool commit(struct sync *s, struct ir_delta *delta)
{
	return commit_by(s, delta, false);
}

const struct ir_ruleset *sync_wanted(struct sync *s)
{
	struct diags dg = {0};
	struct ir_ruleset *rs;

	if (!s->rs_stale || !s->rs)
		return s->rs;
	rs = compile_ruleset(s->cc, s->inv, "docker", &dg);
	diags_free(&dg);
	if (rs)
		rs_install(s, rs);
	return s->rs;
}

const struct ir_ruleset *sync_judged(struct sync *s)
{
	if (s->rs_behind)
		return sync_wanted(s);
	if (s->rs && s->lag.n)
		ir_delta_apply(s->rs, &s->lag);
	s->lag.n = 0;
	return s->rs;
}

static size_t changes(const struct ir_delta *delta, bool add)
{
	size_t i, n = 0;

	for (i = 0; i < delta->n; i++)
		n += delta->v[i].add == add;
	return n;
}

/* Whether a network of c that the policy manages has no port bound. */
static bool needs_port(const struct sync *s, const struct inv_container *c)
{
	size_t j;

	if (!s->ports)
		return false;
	for (j = 0; j < c->nnets; j++)
		if (!c->nets[j].port && (c->nets[j].has_mac || c->sandbox) &&
		    compile_net_managed(s->cc, s->inv, c->nets[j].name))
			return true;
	return false;
}

static void bind_later(struct sync *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->nunbound && strcmp(s->unbound[i], id); i++)
		;
	if (i == s->nunbound)
		*PUSH(s->unbound, s->nunbound, s->capunbound) = xstrdup(id);
	/* from the start again: a start may come late after its connect */
	s->bind_ms = BIND_FIRST_MS;
	s->ops.bind_in(s->ops.ctx, s->bind_ms);
}

/* c's ports are nobody's no more: bound to c now, or gone with it
 * (Docker deletes the veth just after the event). Their id_ports
 * elements, listed while nobody was bound, leave into delta. The ports
 * that appear with nobody bound, the link watch lists (sync_link). */
static void sync_bports(struct sync *s, const struct inv_container *c,
			struct ir_delta *delta)
{
	struct inventory *inv = s->inv;
	size_t i, j;

	for (j = 0; s->ports && j < c->nnets; j++)
		for (i = 0; c->nets[j].port && i < inv->nbports; i++)
			if (!strcmp(c->nets[j].port, inv->bports[i].port)) {
				compile_bport(s->cc, inv, inv->bports[i].bridge,
					      inv->bports[i].port, false,
					      delta);
				free(inv->bports[i].bridge);
				free(inv->bports[i].port);
				inv->bports[i] = inv->bports[--inv->nbports];
				break;
			}
}

void sync_link(struct sync *s, const char *ifname, const char *master)
{
	struct inventory *inv = s->inv;
	struct ir_delta delta = {0};
	size_t i;

	if (!s->ports)
		return;
	for (i = 0; i < inv->nbports && strcmp(inv->bports[i].port, ifname);
	     i++)
		;
	if (i < inv->nbports) {
		if (master && !strcmp(master, inv->bports[i].bridge))
			return; /* as it was */
		compile_bport(s->cc, inv, inv->bports[i].bridge, ifname, false,
			      &delta);
		free(inv->bports[i].bridge);
		free(inv->bports[i].port);
		inv->bports[i] = inv->bports[--inv->nbports];
	}
	/* a port of one of our bridges that no endpoint holds: listed, so
	 * that nothing from it passes */
	if (master && !smap_get(&s->bound, ifname)) {
		size_t before = delta.n;

		compile_bport(s->cc, inv, master, ifname, true, &delta);
		if (delta.n > before) {
			struct inv_bport *b =
			    PUSH(inv->bports, inv->nbports, inv->capbports);

			b->bridge = xstrdup(master);
			b->port = xstrdup(ifname);
		}
	}
	commit(s, &delta);
	ir_delta_free(&delta);
}

static int bind_container(struct sync *s, struct inv_container *c, bool ask,
			  struct diags *dg)
{
	return s->ports ? ports_bind_container(s->ports, c, ask, dg) : 0;
}

/* Binds the containers still waiting for their ports: each one's
 * elements without the port out, with it in (what is the same cancels:
 * its identity elements remain), in one batch. Asks again, later each
 * time, for those the kernel does not show yet; the start's inspect
 * binds the rest. */
void sync_bind(struct sync *s)
{
	struct ir_delta delta = {0};
	size_t i, n = 0;
	long idx;

	for (i = 0; i < s->nunbound; i++) {
		struct diags dg = {0};
		struct inv_container *c;

		idx = inventory_index(s->inv, s->unbound[i]);
		if (idx < 0) {
			free(s->unbound[i]);
			continue;
		}
		c = &s->inv->c[idx];
		bound_keys(s, c, false);
		if (s->ix)
			trace_index_del(s->ix, c); /* its link-local may come */
		if (compile_delta(s->cc, s->inv, (size_t)idx, false, &delta) ||
		    bind_container(s, c, true, &dg) < 0 ||
		    compile_delta(s->cc, s->inv, (size_t)idx, true, &delta))
			s->resync_wanted = true;
		bound_keys(s, c, true);
		if (s->ix && !trace_index_add(s->ix, c))
			inv_changed(s);
		diags_free(&dg);
		sync_bports(s, c, &delta);
		if (needs_port(s, c))
			s->unbound[n++] = s->unbound[i];
		else
			free(s->unbound[i]);
	}
	s->nunbound = n;
	if (commit(s, &delta) && delta.n)
		say(s, "bound %zu elements to bridge ports", delta.n);
	ir_delta_free(&delta);
	s->bind_ms *= 2;
	if (!n || s->bind_ms > BIND_LAST_MS) {
		for (i = 0; i < n; i++) {
			idx = inventory_index(s->inv, s->unbound[i]);
			if (idx >= 0)
				say(s,
				    "warning: %s: the kernel shows no bridge "
				    "port of it yet: nothing from it passes "
				    "until it is bound; resyncing",
				    s->inv->c[idx].name);
			free(s->unbound[i]);
		}
		/* a full sync binds every container from scratch */
		if (n)
			s->resync_wanted = true;
		s->nunbound = 0;
		s->bind_ms = 0;
		return;
	}
	s->ops.bind_in(s->ops.ctx, s->bind_ms);
}

/* The container with this id is as Docker says: scratch holds it, or
 * nothing when it no longer runs. */
static void place(struct sync *s, const char *id, struct inventory *scratch,
		  const struct pending *pe)
{
	struct ir_delta delta = {0};
	struct strbuf sb = {0};
	long old = inventory_index(s->inv, id), now;
	char *name = NULL;
	size_t i;

	if (old >= 0) {
		name = xstrdup(s->inv->c[old].name);
		take_out(s, (size_t)old, &delta);
	}
	if (scratch->n) {
		struct diags dg = {0};

		/* its frames pass the bridge table only once bound. At the
		 * connect of a container not placed yet (a start's), its
		 * peer is not in its namespace yet: what the kernel would
		 * say of the ports being made cannot bind it, and asking
		 * (a request each, behind RTNL while Docker makes links)
		 * would only delay its elements. bind_later asks. (A running
		 * container new to the inventory, connected from a network
		 * not managed, waits for it too, dropped meanwhile.) */
		bool ask = !(pe->ev.kind == DEV_CONNECT && old < 0);

		if (bind_container(s, &scratch->c[0], ask, &dg) < 0)
			s->resync_wanted = true;
		for (i = 0; i < dg.n; i++)
			say(s, "warning: %s: %s", dg.v[i].file, dg.v[i].msg);
		diags_free(&dg);
		drop_stale(s, &scratch->c[0], &delta);
		inventory_move(s->inv, scratch, 0);
		track(s, &s->inv->c[s->inv->n - 1], true);
		if (compile_delta(s->cc, s->inv, s->inv->n - 1, true, &delta))
			s->resync_wanted = true;
	}
	/* the bridges it was and is on: their ports nobody is bound to */
	if (old >= 0 && s->gone->n)
		sync_bports(s, &s->gone->c[s->gone->n - 1], &delta);
	if (inventory_index(s->inv, id) >= 0)
		sync_bports(s, &s->inv->c[inventory_index(s->inv, id)], &delta);
	/* what it deletes is what the containers taken out held (and ports
	 * no longer nobody's): their addresses are in gone_addrs */
	if (!commit_by(s, &delta, true))
		goto out;
	now = inventory_index(s->inv, id);
	if (now >= 0 &&
	    (pe->ev.kind == DEV_START || pe->ev.kind == DEV_CONNECT))
		record_latency(s, pe, &delta);
	if (now >= 0 && (old < 0 || delta.n)) {
		const struct inv_container *c = &s->inv->c[now];

		where(c, &sb);
		say(s, "placed %s (%s) on%s: +%zu -%zu elements", c->name,
		    svc_name(s, c), sb.s ? sb.s : " no network",
		    changes(&delta, true), changes(&delta, false));
	} else if (now < 0 && old >= 0) {
		say(s, "removed %s: -%zu elements", name,
		    changes(&delta, false));
	}
	if (now < 0 && pe->ev.kind == DEV_START)
		lat_record(s, pe, false, true);
	/* placed, not bound yet (at its connect; or Docker not done at its
	 * start): asked again in a moment */
	if (now >= 0 && needs_port(s, &s->inv->c[now]))
		bind_later(s, s->inv->c[now].id);
	/* a start's inspect is the first to say what it publishes */
	if (now >= 0 && pe->ev.kind == DEV_START) {
		struct diags dg = {0};

		compile_published(s->cc, &s->inv->c[now], &dg);
		for (i = 0; i < dg.n; i++)
			say(s, "warning: %s", dg.v[i].msg);
		diags_free(&dg);
	}
out:
	free(name);
	sb_free(&sb);
	ir_delta_free(&delta);
}

/* --- Docker's events ---------------------------------------------------- */

int sync_event(struct sync *s, const char *line, size_t len)
{
	struct pending *pe;
	struct docker_event ev;

	if (docker_event_parse(line, len, &ev)) {
		if (!s->garbage_logged)
			say(s,
			    "warning: docker: an event that does not parse "
			    "(%.*s); ignored, and the next resync covers it",
			    (int)(len < 60 ? len : 60), line);
		s->garbage_logged = true;
		s->resync_wanted = true;
		return -EINVAL;
	}
	if (ev.kind == DEV_OTHER)
		return 0;
	if (s->qhead == s->qn)
		s->qhead = s->qn = 0;
	pe = PUSH(s->q, s->qn, s->qcap);
	pe->ev = ev;
	pe->t_read = mono_ms();
	pe->t_reply = 0;
	pe->listed = false;
	pe->asked = false;
	return 0;
}

void sync_drop_queue(struct sync *s)
{
	s->qhead = s->qn = 0;
	s->garbage_logged = false; /* a new stream may say it again */
}

static void connect_answer(struct sync *s, struct pending *pe, long status,
			   const char *body, size_t len, bool fresh);

/* The list entries of the connects waiting from the head on (the head
 * first; at most LIST_BATCH), in one request: {"id":["A","B",...]}. */
static char *list_path(struct sync *s)
{
	struct strbuf b = {0};
	size_t i, n = 0;

	sb_puts(&b, "/containers/json?all=1&filters=%7B%22id%22%3A%5B");
	for (i = s->qhead; i < s->qn; i++)
		s->q[i].asked = false; /* a question that failed before */
	for (i = s->qhead; i < s->qn && n < LIST_BATCH; i++) {
		struct pending *pe = &s->q[i];

		if (pe->ev.kind != DEV_CONNECT || pe->listed)
			continue;
		sb_printf(&b, "%s%%22%s%%22", n ? "%2C" : "", pe->ev.id);
		pe->asked = true;
		n++;
	}
	sb_puts(&b, "%5D%7D");
	return b.s;
}

const char *sync_next(struct sync *s)
{
	struct pending *pe;

	free(s->path);
	s->path = NULL;
	while (s->qhead < s->qn) {
		pe = &s->q[s->qhead];
		if (pe->ev.kind == DEV_STOP) {
			struct inventory *none = inventory_new();

			s->qhead++;
			s->st.events++;
			if (inventory_index(s->inv, pe->ev.id) >= 0)
				place(s, pe->ev.id, none, pe);
			inventory_free(none);
			continue;
		}
		/* a connect: its list entry, then the network's object with
		 * the address it holds there (both answer while the
		 * container starts; inspect waits for the start to end) */
		if (pe->ev.kind == DEV_CONNECT && pe->listed && s->net_id &&
		    !strcmp(s->net_id, pe->ev.net) &&
		    s->net_asked >= pe->t_read) {
			s->st.net_reused++;
			connect_answer(s, pe, 200, s->net.s, s->net.len, false);
			continue;
		}
		if (pe->ev.kind == DEV_CONNECT && pe->listed) {
			s->path = xasprintf("/networks/%s", pe->ev.net);
			s->asking_at = mono_ms();
		} else if (pe->ev.kind == DEV_CONNECT)
			s->path = list_path(s);
		else
			s->path = xasprintf(pe->ev.kind == DEV_NETWORK_NEW
						? "/networks/%s"
						: "/containers/%s/json",
					    pe->ev.id);
		return s->path;
	}
	/* nothing waits: no later connect can use what we hold */
	free(s->net_id);
	s->net_id = NULL;
	sb_free(&s->net);
	return NULL;
}

/* Whether a connect behind the head, read before the network object
 * was asked, can take it: only then is the object (megabytes at
 * 10,000) worth a copy. */
static bool net_wanted(const struct sync *s, const char *net, double asked)
{
	size_t i;

	for (i = s->qhead + 1; i < s->qn; i++)
		if (s->q[i].ev.kind == DEV_CONNECT && s->q[i].t_read <= asked &&
		    !strcmp(s->q[i].ev.net, net))
			return true;
	return false;
}

/* fresh: Docker's answer to our question (kept for the connects
 * behind), not the one kept */
static void connect_answer(struct sync *s, struct pending *pe, long status,
			   const char *body, size_t len, bool fresh)
{
	struct inventory *scratch;
	char why[512];
	long old;

	if (status != 200) {
		/* the slow way, which also covers a network gone since */
		pe->ev.kind = DEV_UPDATE;
		return;
	}
	if (!pe->listed) {
		size_t i;

		/* every connect it asked for has its entry (or none: gone) */
		for (i = s->qhead; i < s->qn; i++)
			if (s->q[i].asked) {
				s->q[i].listed = true;
				s->q[i].asked = false;
			}
		pe->listed = true;
		json_decref(s->listed);
		s->listed = json_loadb(body, len, 0, NULL);
		return;
	}
	pe->t_reply = mono_ms();
	/* fresh: the head's own network, asked at asking_at */
	if (fresh && net_wanted(s, pe->ev.net, s->asking_at)) {
		s->net.len = 0;
		sb_putn(&s->net, body, len);
		free(s->net_id);
		s->net_id = xstrdup(pe->ev.net);
		s->net_asked = s->asking_at;
	}
	s->qhead++;
	s->st.events++;
	scratch = inventory_new();
	if (docker_parse_connect_in(s->dk, s->listed, body, len, pe->ev.id,
				    scratch, why, sizeof(why))) {
		fail(s, "docker: container %.12s: %s", pe->ev.id, why);
		s->resync_wanted = true;
	} else if (scratch->n) {
		old = inventory_index(s->inv, pe->ev.id);
		if (old >= 0)
			inventory_merge_nets(&scratch->c[0], &s->inv->c[old]);
		place(s, pe->ev.id, scratch, pe);
	}
	inventory_free(scratch);
}

void sync_answer(struct sync *s, long status, const char *body, size_t len,
		 const char *err)
{
	struct inventory *scratch;
	struct pending pe;
	char why[512];

	if (s->qhead >= s->qn)
		return;
	if (s->q[s->qhead].ev.kind == DEV_CONNECT) {
		connect_answer(s, &s->q[s->qhead], status, body, len, true);
		return;
	}
	pe = s->q[s->qhead++];
	pe.t_reply = mono_ms();
	s->st.events++;
	scratch = inventory_new();
	if (pe.ev.kind == DEV_NETWORK_NEW) {
		if (status == 200)
			docker_learn_network(s->dk, body, len);
	} else if (status == 200) {
		if (docker_parse_inspect(s->dk, body, len, scratch, why,
					 sizeof(why))) {
			fail(s, "docker: container %.12s: %s", pe.ev.id, why);
			s->resync_wanted = true;
		} else
			place(s, pe.ev.id, scratch, &pe);
	} else if (status == 404) {
		place(s, pe.ev.id, scratch, &pe); /* gone already */
	} else {
		fail(s, "docker: container %.12s: %s", pe.ev.id,
		     status ? "unexpected HTTP status" : err);
		s->resync_wanted = true;
	}
	inventory_free(scratch);
}

bool sync_wants_resync(const struct sync *s)
{
	return s->resync_wanted;
}

void sync_want_resync(struct sync *s, bool want)
{
	s->resync_wanted = want;
}

/* --- the kernel as a whole ---------------------------------------------- */

/* Diagnostics from a compile, logged only when they change. */
static void report_diags(struct sync *s, const struct diags *dg)
{
	struct strbuf sb = {0};
	size_t i;

	for (i = 0; i < dg->n; i++)
		sb_printf(&sb, "%s: %s\n",
			  dg->v[i].level == DIAG_ERROR ? "error" : "warning",
			  dg->v[i].msg);
	if (!sb.s)
		sb_puts(&sb, "");
	if (!s->last_diags || strcmp(s->last_diags, sb.s)) {
		char *line, *save = NULL, *copy = xstrdup(sb.s);

		for (line = strtok_r(copy, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			s->ops.say(s->ops.ctx, line);
		free(copy);
	}
	free(s->last_diags);
	s->last_diags = sb.s;
}

/* Compiles inv under cc and converges the kernel on it. */
static int converge(struct sync *s, struct compiler *cc, struct inventory *inv,
		    struct ir_ruleset **out, struct kernel_sync *res)
{
	struct diags dg = {0};
	struct ir_ruleset *rs;
	char err[512];
	int r;

	r = s->ports ? ports_bind(s->ports, inv, &dg) : 0;
	if (r < 0)
		diags_add(&dg, DIAG_WARNING, "docker", 0, 0,
			  "binding containers to their bridge ports: %s",
			  strerror(-r));
	rs = compile_ruleset(cc, inv, "docker", &dg);
	report_diags(s, &dg);
	diags_free(&dg);
	if (!rs) {
		fail(s, "compile failed");
		return -1;
	}
	if (s->ops.converge(s->ops.ctx, rs, res, err, sizeof(err))) {
		fail(s, "kernel: %s", err);
		ir_free(rs);
		return -1;
	}
	s->revoke_wanted = true;
	if (res->replaced)
		say(s,
		    "kernel: table inet %s replaced in one transaction: "
		    "%zu elements, %zu containers",
		    rs->table, res->nadd, inv->n);
	else if (res->nadd || res->ndel)
		say(s,
		    "kernel: mended %zu elements added, %zu deleted "
		    "(%zu containers)",
		    res->nadd, res->ndel, inv->n);
	*out = rs;
	return 0;
}

int sync_converge(struct sync *s, struct inventory *inv,
		  struct kernel_sync *res)
{
	struct ir_ruleset *rs = NULL;

	s->st.resyncs++;
	if (converge(s, s->cc, inv, &rs, res)) {
		inventory_free(inv);
		return -1;
	}
	inventory_free(s->inv);
	s->inv = inv;
	owners_rebuild(s);
	inv_changed(s);
	rs_install(s, rs);
	s->resync_wanted = false;
	s->st.last_sync = time(NULL);
	return 0;
}

int sync_restore(struct sync *s, const char *what, struct kernel_sync *res)
{
	char err[512];
	double t0 = mono_ms();

	if (!s->rs)
		return 0;
	if (s->ops.converge(s->ops.ctx, sync_wanted(s), res, err,
			    sizeof(err))) {
		fail(s,
		     "kernel: restoring table inet %s after another process "
		     "changed it (%s): %s; retrying",
		     s->rs->table, what, err);
		s->resync_wanted = true;
		return -1;
	}
	if (!res->replaced && !res->nadd && !res->ndel)
		return 0; /* nothing of ours had changed after all */
	s->st.restores++;
	s->st.last_restore = time(NULL);
	snprintf(s->st.last_restore_why, sizeof(s->st.last_restore_why), "%s",
		 what);
	say(s,
	    "kernel: table inet %s changed by another process (%s): "
	    "restored in %.1f ms (%s)",
	    s->rs->table, what, mono_ms() - t0,
	    res->replaced ? "table replaced" : "elements mended");
	return 1;
}

int sync_reload(struct sync *s, struct policy *p, struct kernel_sync *res)
{
	struct compiler *cc = compile_new(p, &s->co);
	struct ir_ruleset *rs = NULL;

	if (converge(s, cc, s->inv, &rs, res)) {
		compile_free(cc);
		return -1;
	}
	compile_free(s->cc);
	policy_free(s->p);
	s->p = p;
	s->cc = cc;
	inv_changed(s);
	rs_install(s, rs);
	return 0;
}

bool sync_fqdn(struct sync *s, struct compile_fqdn *l, size_t n)
{
	struct compile_opts co = s->co;
	size_t i;

	for (i = 0; n == co.nfqdn && i < n; i++)
		if (l[i].name != co.fqdn[i].name ||
		    l[i].family != co.fqdn[i].family ||
		    l[i].addr != co.fqdn[i].addr ||
		    l[i].timeout_ms != co.fqdn[i].timeout_ms)
			break;
	if (n == co.nfqdn && i == n) {
		free(l);
		return false;
	}
	co.fqdn = l;
	co.nfqdn = n;
	compile_free(s->cc);
	s->cc = compile_new(s->p, &co);
	free(s->fql);
	s->fql = l;
	s->co = co;
	inv_changed(s);
	return true;
}

void sync_refill(struct sync *s, const char *name, bool changed)
{
	struct ir_delta adds = {0};
	size_t *sets, n;
	char err[512];

	if (!s->rs)
		return; /* the first converge programs them */
	n = compile_fqdn_sets(s->cc, name, &adds, &sets);
	if (n && s->ops.refill(s->ops.ctx, s->rs, sets, n, &adds, err,
			       sizeof(err))) {
		fail(s, "kernel: refilling the sets of fqdn %s: %s; resyncing",
		     name, err);
		s->resync_wanted = true;
	} else if (n) {
		/* new timeouts alone leave the full compile as it was; an
		 * address that left the answer ends its flows */
		s->rs_stale |= changed;
		s->rs_behind |= changed;
		s->revoke_wanted |= changed;
		s->st.refills++;
	}
	free(sets);
	ir_delta_free(&adds);
}

/* --- what it holds ------------------------------------------------------ */

const struct policy *sync_policy(const struct sync *s)
{
	return s->p;
}

struct compiler *sync_compiler(const struct sync *s)
{
	return s->cc;
}

const struct inventory *sync_inventory(const struct sync *s)
{
	return s->inv;
}

const struct inventory *sync_gone(const struct sync *s)
{
	return s->gone;
}

const struct ir_ruleset *sync_ruleset(const struct sync *s)
{
	return s->rs;
}

struct trace_index *sync_index(struct sync *s)
{
	if (!s->ix)
		s->ix = trace_index_new(s->cc, s->p, s->inv);
	return s->ix;
}

void sync_keep_gone(struct sync *s, unsigned seconds)
{
	s->gone_s = (time_t)seconds;
}

const struct trace_index *sync_gone_index(struct sync *s)
{
	if (!s->gone_ix)
		s->gone_ix = trace_index_new(s->cc, s->p, s->gone);
	return s->gone_ix;
}

bool sync_audit(const struct sync *s)
{
	return s->co.audit || s->p->mode == POL_AUDIT;
}

const struct sync_stats *sync_stats(const struct sync *s)
{
	return &s->st;
}

static bool holds(const struct inv_container *c, const struct revoke_addr *a)
{
	size_t i;

	for (i = 0; i < c->nnets; i++)
		if ((a->family == AF_INET && c->nets[i].has4 &&
		     c->nets[i].ip4 == a->addr) ||
		    (a->family == AF_INET6 && c->nets[i].has6 &&
		     c->nets[i].ip6 == a->addr))
			return true;
	return false;
}

/* The addresses containers no longer hold: a container placed again
 * (a start after its connect) keeps its own. */
bool sync_revocation(struct sync *s, struct revoke_addr **gone, size_t *n,
		     bool *all)
{
	struct revoke_addr *v;
	bool due;
	size_t i;
	long idx;

	*n = 0;
	*gone = NULL;
	if (!s->revoke_wanted && !s->ngone_addrs)
		return false;
	v = xcalloc(s->ngone_addrs + 1, sizeof(*v));
	for (i = 0; i < s->ngone_addrs; i++) {
		struct gone_addr *g = &s->gone_addrs[i];

		idx = inventory_index(s->inv, g->id);
		if (idx < 0 || !holds(&s->inv->c[idx], &g->a))
			v[(*n)++] = g->a;
		free(g->id);
	}
	s->ngone_addrs = 0;
	due = s->revoke_wanted || *n;
	*all = s->revoke_wanted;
	s->revoke_wanted = false;
	if (!due) {
		free(v);
		return false;
	}
	*gone = v;
	return true;
}
