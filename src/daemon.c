/* The daemon's loop: Docker's event stream, a signalfd, three timerfds
 * (periodic resync, reconnect backoff, DNS), DNS answers and the control
 * socket, in one epoll set. Each container event becomes one delta batch; any
 * gap in what Docker told us becomes a full resync. It never flushes our table:
 * on exit or failure the last good rules stay (fail closed). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cap-ng.h>
#include <jansson.h>

#include "bulkhead/compile.h"
#include "bulkhead/daemon.h"
#include "bulkhead/dns.h"
#include "bulkhead/docker.h"
#include "bulkhead/flowlog.h"
#include "bulkhead/fqdn.h"
#include "bulkhead/kernel.h"
#include "bulkhead/policy.h"
#include "bulkhead/ports.h"
#include "bulkhead/revoke.h"
#include "bulkhead/trace.h"

#define BACKOFF_MIN_MS 250u
#define BACKOFF_MAX_MS 15000u
#define RETRY_KERNEL_S 5u
#define LAT_N 1024u
#define EARLY_N 64u
#define REQUEST_MAX 4096u

enum watch_kind {
	W_DOCKER,
	W_SIGNAL,
	W_RESYNC,
	W_RETRY,
	W_CONTROL,
	W_CLIENT,
	W_NFLOG,
	W_NFT,
	W_DNS,
	W_DNS_TIMER,
	W_BIND,
	W_CT,
};

struct watch {
	enum watch_kind kind;
	int fd;
};

struct client {
	struct watch w; /* first: the epoll cookie */
	char buf[REQUEST_MAX];
	size_t len;
};

struct pending {
	struct docker_event ev;
	double t_read;	/* monotonic ms when its line was read */
	double t_reply; /* ... and when Docker's (last) answer came */
	bool listed;	/* CONNECT: the list entry is in, the network next */
};

/* Microseconds from an event read (v) or from Docker's last answer (own)
 * to the container's elements committed. */
struct lat {
	double v[LAT_N], own[LAT_N];
	size_t n, pos;
};

/* A container placed when it joined a network, before its start event:
 * when that was committed, and what bulkhead itself took. */
struct early {
	char id[DOCKER_ID_MAX + 1];
	double t_commit, own_us;
};

enum dk_state { DK_DOWN, DK_NEGOTIATING, DK_UP };

struct daemon {
	const struct daemon_opts *o;
	struct compile_opts co;
	struct policy *p;
	struct compiler *cc;
	struct inventory *inv;
	struct ir_ruleset *rs; /* the last full compile: sets for deltas */
	bool rs_stale;	       /* deltas committed since: rs lacks them */
	struct kernel *k;
	struct ports *ports; /* endpoints bound to their bridge ports */
	/* containers placed at their connect, before Docker moved their
	 * veth's peer into their namespace: bound a moment later */
	struct watch wbind;
	/* revocation: flows a change took the right of end after it */
	struct revoke *rv;
	struct watch wct; /* conntrack events: the index of live flows */
	bool revoke_wanted;
	struct gone_addr {
		char *id;
		struct revoke_addr a;
	} * gone_addrs; /* taken out since the last sweep */
	size_t ngone_addrs, capgone_addrs;
	unsigned long revoked, sweeps;
	double last_sweep_ms;
	char **unbound;
	size_t nunbound, capunbound;
	unsigned bind_ms;
	struct docker *dk;
	int ep;
	struct watch wdocker, wsignal, wresync, wretry, wcontrol, wnflog, wnft;
	struct watch wdns, wdnstimer;
	struct dns *dns;
	struct fqdn_cache fq;	  /* fqdn peers' answers */
	struct compile_fqdn *fql; /* co.fqdn: fq's addresses */
	unsigned long refills;	  /* fqdn sets refilled */
	struct kernel_watch *kw;  /* nftables events: others' changes */
	struct flowlog *fl;
	struct flowlog_sink *sink;
	/* containers gone lately, so that a record still names them */
	struct inventory *gone;
	time_t *gone_at;
	size_t capgone;
	time_t last_summary;
	struct flowlog_stats summarized;
	struct trace_index *ix; /* NULL when the inventory or policy moved */
	/* what the rate limit kept out of the log: the deny chain's count
	 * since base, less the records written since then */
	unsigned long records, records_base, suppressed, summarized_supp;
	uint64_t denied_base;
	bool based;
	struct strbuf line;

	enum dk_state dk_state;
	bool synced_once, snapshot_running, resync_wanted, busy;
	bool down_logged, garbage_logged, stop;
	unsigned backoff_ms;
	char down_why[256];

	struct pending *q;
	size_t qhead, qn, qcap;

	unsigned long events, deltas, resyncs, errors, restores;
	time_t last_restore;
	char last_restore_why[160];
	time_t started, last_sync;
	char last_error[512];
	char *last_diags;
	struct strbuf listed; /* a CONNECT's list entry, while it waits */
	struct lat lstart, lconnect;
	struct lat lbind; /* start read -> its port bound (identity) */
	struct early early[EARLY_N];
	size_t earlypos;
	unsigned long before_start; /* starts placed before they were read */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One line per event on stderr, for journald. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void fail(struct daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct daemon *d, const char *fmt, ...)
{
	char msg[sizeof(d->last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->errors++;
	/* the same failure again (a retry that fails alike) is counted,
	 * not logged again */
	if (strcmp(msg, d->last_error))
		say("error: %s", msg);
	memcpy(d->last_error, msg, sizeof(msg));
}

/* systemd's readiness protocol: a datagram to $NOTIFY_SOCKET. */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') ||
	    (n = strlen(path)) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
}

static void arm(int fd, unsigned ms)
{
	struct itimerspec its = {0};

	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	if (!ms)
		its.it_value.tv_nsec = 1;
	timerfd_settime(fd, 0, &its, NULL);
}

static int watch_add(struct daemon *d, struct watch *w, enum watch_kind kind,
		     int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};

	w->kind = kind;
	w->fd = fd;
	return epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev);
}

/* --- placing containers ------------------------------------------------ */

static void lat_add(struct lat *l, double us, double own_us)
{
	l->v[l->pos] = us;
	l->own[l->pos] = own_us;
	l->pos = (l->pos + 1) % LAT_N;
	if (l->n < LAT_N)
		l->n++;
}

/* A start or connect handled. A start whose container a connect placed
 * already counts the time from its read to that commit, zero when the
 * commit came first (the usual case: Docker sends the connect while it
 * creates the process, the start once it runs). */
static void lat_record(struct daemon *d, const struct pending *pe,
		       bool committed)
{
	double now = now_ms();
	size_t i;

	if (pe->ev.kind == DEV_CONNECT) {
		struct early *e;

		if (!committed)
			return;
		for (i = 0; i < EARLY_N; i++)
			if (!strcmp(d->early[i].id, pe->ev.id))
				d->early[i].id[0] = 0;
		e = &d->early[d->earlypos++ % EARLY_N];
		lat_add(&d->lconnect, (now - pe->t_read) * 1e3,
			(now - pe->t_reply) * 1e3);
		snprintf(e->id, sizeof(e->id), "%s", pe->ev.id);
		e->t_commit = now;
		e->own_us = (now - pe->t_reply) * 1e3;
		return;
	}
	if (!committed)
		for (i = 0; i < EARLY_N; i++) {
			struct early *e = &d->early[i];
			double us = (e->t_commit - pe->t_read) * 1e3;

			if (strcmp(e->id, pe->ev.id))
				continue;
			e->id[0] = 0;
			d->before_start += us <= 0;
			lat_add(&d->lstart, us > 0 ? us : 0, e->own_us);
			return;
		}
	lat_add(&d->lstart, (now - pe->t_read) * 1e3,
		(now - pe->t_reply) * 1e3);
}

static const char *svc_name(const struct daemon *d,
			    const struct inv_container *c)
{
	long a, b, s = compiler_assign(d->cc, c, &a, &b);

	return s >= 0		       ? d->p->services[s].name
	       : s == COMPILE_CONFLICT ? "(two services: denied)"
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

/* The inventory or policy changed: the addresses' index is stale. */
static void inv_changed(struct daemon *d)
{
	trace_index_free(d->ix);
	d->ix = NULL;
}

static void resync_soon(struct daemon *d)
{
	d->resync_wanted = true;
}

/* Takes container idx out of the inventory, its leaving into delta. */
static void take_out(struct daemon *d, size_t idx, struct ir_delta *delta)
{
	time_t now = time(NULL);
	size_t i;

	if (compile_delta(d->cc, d->inv, idx, false, delta))
		resync_soon(d);
	/* its addresses may go to another container: its flows end */
	for (i = 0; i < d->inv->c[idx].nnets; i++) {
		const struct inv_net *n = &d->inv->c[idx].nets[i];

		if (n->has4)
			*PUSH(d->gone_addrs, d->ngone_addrs, d->capgone_addrs) =
			    (struct gone_addr){xstrdup(d->inv->c[idx].id),
					       {AF_INET, n->ip4}};
		if (n->has6)
			*PUSH(d->gone_addrs, d->ngone_addrs, d->capgone_addrs) =
			    (struct gone_addr){xstrdup(d->inv->c[idx].id),
					       {AF_INET6, n->ip6}};
	}
	for (i = 0; i < d->gone->n; i++)
		if (now - d->gone_at[i] > DAEMON_GONE_S) {
			inventory_remove(d->gone, i);
			d->gone_at[i] = d->gone_at[d->gone->n];
			i--;
		}
	grow(&d->gone_at, &d->capgone, d->gone->n + 1, sizeof(*d->gone_at));
	d->gone_at[d->gone->n] = now;
	inventory_move(d->gone, d->inv, idx);
	inv_changed(d);
}

/* An address that a new container holds was another's: that one is gone
 * (its die event is late or lost), and its rights must not pass on. */
static void drop_stale(struct daemon *d, const struct inv_container *c,
		       struct ir_delta *delta)
{
	size_t i, j, k;

	for (i = 0; i < d->inv->n; i++) {
		const struct inv_container *o = &d->inv->c[i];
		bool clash = false;

		for (j = 0; j < c->nnets && !clash; j++)
			for (k = 0; k < o->nnets && !clash; k++) {
				const struct inv_net *a = &c->nets[j],
						     *b = &o->nets[k];

				clash =
				    !strcmp(a->bridge, b->bridge) &&
				    ((a->has4 && b->has4 && a->ip4 == b->ip4) ||
				     (a->has6 && b->has6 && a->ip6 == b->ip6));
			}
		if (!clash)
			continue;
		say("container %s holds an address of %s, which is gone: "
		    "removing %s",
		    c->name, o->name, o->name);
		take_out(d, i--, delta);
	}
}

static bool commit(struct daemon *d, struct ir_delta *delta)
{
	char err[512];
	size_t i;
	int r;

	ir_delta_cancel(d->rs, delta);
	if (!delta->n)
		return true;
	r = kernel_apply_delta(d->k, d->rs, delta, 0, err, sizeof(err));
	if (r) {
		fail(d, "kernel: %s; resyncing", err);
		resync_soon(d);
		return false;
	}
	d->deltas++;
	d->rs_stale = true;
	for (i = 0; i < delta->n; i++)
		d->revoke_wanted |= !delta->v[i].add;
	return true;
}

/* The whole ruleset the kernel should hold now: the last full compile,
 * compiled again from the inventory when deltas have moved on since. */
static const struct ir_ruleset *wanted(struct daemon *d)
{
	struct diags dg = {0};
	struct ir_ruleset *rs;

	if (!d->rs_stale || !d->rs)
		return d->rs;
	rs = compile_ruleset(d->cc, d->inv, "docker", &dg);
	diags_free(&dg);
	if (rs) {
		ir_free(d->rs);
		d->rs = rs;
		d->rs_stale = false;
	}
	return d->rs;
}

static size_t count(const struct ir_delta *delta, bool add)
{
	size_t i, n = 0;

	for (i = 0; i < delta->n; i++)
		n += delta->v[i].add == add;
	return n;
}

#define BIND_FIRST_MS 5u
#define BIND_LAST_MS 1280u

/* Whether a network of c that the policy manages has no port bound. */
static bool needs_port(const struct daemon *d, const struct inv_container *c)
{
	size_t j;

	for (j = 0; j < c->nnets; j++)
		if (!c->nets[j].port && (c->nets[j].has_mac || c->sandbox) &&
		    compiler_net_managed(d->cc, d->inv, c->nets[j].name))
			return true;
	return false;
}

static void bind_later(struct daemon *d, const char *id)
{
	size_t i;

	for (i = 0; i < d->nunbound && strcmp(d->unbound[i], id); i++)
		;
	if (i == d->nunbound)
		*PUSH(d->unbound, d->nunbound, d->capunbound) = xstrdup(id);
	/* from the start again: a start may come late after its connect */
	d->bind_ms = BIND_FIRST_MS;
	arm(d->wbind.fd, d->bind_ms);
}

static bool commit(struct daemon *d, struct ir_delta *delta);

static bool bport_in(const struct inv_bport *v, size_t n,
		     const struct inv_bport *b)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i].bridge, b->bridge) &&
		    !strcmp(v[i].port, b->port))
			return true;
	return false;
}

/* The unbound ports of c's bridges as the kernel shows them now, their
 * id_ports elements into delta: a port Docker has just made for a
 * container not bound yet passes nothing from its first frame; one
 * bound since, or gone, leaves (a binding's own element cancels). */
static void sync_bports(struct daemon *d, const struct inv_container *c,
			struct ir_delta *delta)
{
	struct inventory *inv = d->inv;
	struct inv_bport *old = xcalloc(inv->nbports + 1, sizeof(*old));
	size_t nold = inv->nbports, i, j;

	for (i = 0; i < nold; i++) {
		old[i].bridge = xstrdup(inv->bports[i].bridge);
		old[i].port = xstrdup(inv->bports[i].port);
	}
	for (j = 0; j < c->nnets; j++)
		if (ports_refresh_unbound(d->ports, inv, c->nets[j].bridge))
			resync_soon(d);
	/* a container gone: its ports go with it (Docker deletes the veth
	 * just after the event), they are nobody's to police */
	if (inventory_index(inv, c->id) < 0)
		for (i = 0; i < inv->nbports; i++)
			for (j = 0; j < c->nnets; j++)
				if (c->nets[j].port &&
				    !strcmp(c->nets[j].port,
					    inv->bports[i].port)) {
					free(inv->bports[i].bridge);
					free(inv->bports[i].port);
					inv->bports[i--] =
					    inv->bports[--inv->nbports];
					break;
				}
	for (i = 0; i < nold; i++)
		if (!bport_in(inv->bports, inv->nbports, &old[i]))
			compile_bport(d->cc, inv, old[i].bridge, old[i].port,
				      false, delta);
	for (i = 0; i < inv->nbports; i++)
		if (!bport_in(old, nold, &inv->bports[i]))
			compile_bport(d->cc, inv, inv->bports[i].bridge,
				      inv->bports[i].port, true, delta);
	for (i = 0; i < nold; i++) {
		free(old[i].bridge);
		free(old[i].port);
	}
	free(old);
}

/* Binds the containers still waiting for their ports: each one's
 * elements without the port out, with it in (what is the same cancels:
 * its identity elements remain), in one batch. Asks again, later each
 * time, for those the kernel does not show yet; the start's inspect
 * binds the rest. */
static void bind_pending(struct daemon *d)
{
	struct ir_delta delta = {0};
	size_t i, n = 0;
	long idx;

	for (i = 0; i < d->nunbound; i++) {
		struct diags dg = {0};
		struct inv_container *c;

		idx = inventory_index(d->inv, d->unbound[i]);
		if (idx < 0) {
			free(d->unbound[i]);
			continue;
		}
		c = &d->inv->c[idx];
		if (compile_delta(d->cc, d->inv, (size_t)idx, false, &delta) ||
		    ports_bind_container(d->ports, c, &dg) < 0 ||
		    compile_delta(d->cc, d->inv, (size_t)idx, true, &delta))
			resync_soon(d);
		diags_free(&dg);
		sync_bports(d, c, &delta);
		if (needs_port(d, c))
			d->unbound[n++] = d->unbound[i];
		else
			free(d->unbound[i]);
	}
	d->nunbound = n;
	if (commit(d, &delta) && delta.n)
		say("bound %zu elements to bridge ports", delta.n);
	ir_delta_free(&delta);
	d->bind_ms *= 2;
	if (!n || d->bind_ms > BIND_LAST_MS) {
		for (i = 0; i < n; i++) {
			idx = inventory_index(d->inv, d->unbound[i]);
			if (idx >= 0)
				say("warning: %s: the kernel shows no bridge "
				    "port of it yet: nothing from it passes "
				    "until it is bound; resyncing",
				    d->inv->c[idx].name);
			free(d->unbound[i]);
		}
		/* a full sync binds every container from scratch */
		if (n)
			resync_soon(d);
		d->nunbound = 0;
		d->bind_ms = 0;
		return;
	}
	arm(d->wbind.fd, d->bind_ms);
}

/* The policy is placed at the network connect; the port is bound at
 * the start, as Docker moves the veth's peer into the container's
 * namespace then: the two latencies are kept apart. */
static void record_latency(struct daemon *d, const struct pending *pe,
			   const struct ir_delta *delta)
{
	size_t i, policy = 0, identity = 0;

	for (i = 0; i < delta->n; i++) {
		if (d->rs->sets[delta->v[i].set].family == IRF_BRIDGE)
			identity++;
		else
			policy++;
	}
	lat_record(d, pe, policy > 0);
	if (identity && pe->ev.kind == DEV_START)
		lat_add(&d->lbind, (now_ms() - pe->t_read) * 1e3,
			(now_ms() - pe->t_reply) * 1e3);
}

/* The container with this id is as Docker says: scratch holds it, or
 * nothing when it no longer runs. */
static void place(struct daemon *d, const char *id, struct inventory *scratch,
		  const struct pending *pe)
{
	struct ir_delta delta = {0};
	struct strbuf sb = {0};
	long old = inventory_index(d->inv, id);
	char *name = NULL;

	if (old >= 0) {
		name = xstrdup(d->inv->c[old].name);
		take_out(d, (size_t)old, &delta);
	}
	if (scratch->n) {
		struct diags dg = {0};
		size_t i;

		/* its frames pass the bridge table only once bound */
		if (ports_bind_container(d->ports, &scratch->c[0], &dg) < 0)
			resync_soon(d);
		for (i = 0; i < dg.n; i++)
			say("warning: %s: %s", dg.v[i].file, dg.v[i].msg);
		diags_free(&dg);
		drop_stale(d, &scratch->c[0], &delta);
		inventory_move(d->inv, scratch, 0);
		inv_changed(d);
		if (compile_delta(d->cc, d->inv, d->inv->n - 1, true, &delta))
			resync_soon(d);
	}
	/* the bridges it was and is on: their ports nobody is bound to */
	if (old >= 0 && d->gone->n)
		sync_bports(d, &d->gone->c[d->gone->n - 1], &delta);
	if (inventory_index(d->inv, id) >= 0)
		sync_bports(d, &d->inv->c[inventory_index(d->inv, id)], &delta);
	if (commit(d, &delta)) {
		long now = inventory_index(d->inv, id);

		if (now >= 0 &&
		    (pe->ev.kind == DEV_START || pe->ev.kind == DEV_CONNECT))
			record_latency(d, pe, &delta);
		if (now >= 0 && (old < 0 || delta.n)) {
			const struct inv_container *c = &d->inv->c[now];

			where(c, &sb);
			say("placed %s (%s) on%s: +%zu -%zu elements", c->name,
			    svc_name(d, c), sb.s ? sb.s : " no network",
			    count(&delta, true), count(&delta, false));
		} else if (now < 0 && old >= 0) {
			say("removed %s: -%zu elements", name,
			    count(&delta, false));
		}
		/* placed, not bound yet (at its connect; or Docker not
		 * done at its start): asked again in a moment */
		if (now >= 0 && needs_port(d, &d->inv->c[now]))
			bind_later(d, d->inv->c[now].id);
		/* a start's inspect is the first to say what it publishes */
		if (now >= 0 && pe->ev.kind == DEV_START) {
			struct diags dg = {0};
			size_t i;

			compile_published(d->cc, &d->inv->c[now], &dg);
			for (i = 0; i < dg.n; i++)
				say("warning: %s", dg.v[i].msg);
			diags_free(&dg);
		}
	}
	free(name);
	sb_free(&sb);
	ir_delta_free(&delta);
}

/* --- Docker: connection, snapshot, events ------------------------------ */

static void docker_connect(struct daemon *d);

static void docker_lost(struct daemon *d, const char *why)
{
	docker_cancel_all(d->dk);
	d->dk_state = DK_DOWN;
	d->snapshot_running = d->busy = false;
	d->qhead = d->qn = 0; /* a resync follows the reconnect */
	if (!d->down_logged) {
		snprintf(d->down_why, sizeof(d->down_why), "%s", why);
		say("docker: %s; reconnecting with backoff (the rules in "
		    "force stay)",
		    why);
		d->down_logged = true;
		notify("STATUS=Docker unreachable; rules in force stay");
	}
	arm(d->wretry.fd, d->backoff_ms);
	d->backoff_ms = d->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							   : d->backoff_ms * 2;
}

/* Diagnostics from a compile, logged only when they change. */
static void report_diags(struct daemon *d, const struct diags *dg)
{
	struct strbuf sb = {0};
	size_t i;

	for (i = 0; i < dg->n; i++)
		sb_printf(&sb, "%s: %s\n",
			  dg->v[i].level == DIAG_ERROR ? "error" : "warning",
			  dg->v[i].msg);
	if (!sb.s)
		sb_puts(&sb, "");
	if (!d->last_diags || strcmp(d->last_diags, sb.s))
		fputs(sb.s, stderr);
	free(d->last_diags);
	d->last_diags = sb.s;
}

/* A table replaced whole has a deny counter that counts from zero. */
static void restart_counts(struct daemon *d, const struct kernel_sync *res)
{
	if (res->replaced && d->based) {
		d->denied_base = 0;
		d->records_base = d->records;
	}
}

/* Compiles inv under the current policy and converges the kernel on it;
 * on success the daemon's inventory and ruleset become these. */
static int converge(struct daemon *d, struct compiler *cc,
		    struct inventory *inv, struct ir_ruleset **out)
{
	struct diags dg = {0};
	struct kernel_sync res;
	struct ir_ruleset *rs;
	char err[512];
	int r = -EINVAL;

	r = ports_bind(d->ports, inv, &dg);
	if (r < 0)
		diags_add(&dg, DIAG_WARNING, "docker", 0, 0,
			  "binding containers to their bridge ports: %s",
			  strerror(-r));
	r = -EINVAL;
	rs = compile_ruleset(cc, inv, "docker", &dg);
	report_diags(d, &dg);
	diags_free(&dg);
	if (!rs) {
		fail(d, "compile failed");
		return r;
	}
	r = kernel_sync(d->k, rs, false, &res, err, sizeof(err));
	if (r) {
		fail(d, "kernel: %s", err);
		ir_free(rs);
		return r;
	}
	restart_counts(d, &res);
	d->revoke_wanted = true;
	if (res.replaced)
		say("kernel: table inet %s replaced in one transaction: "
		    "%zu elements, %zu containers",
		    rs->table, res.nadd, inv->n);
	else if (res.nadd || res.ndel)
		say("kernel: mended %zu elements added, %zu deleted "
		    "(%zu containers)",
		    res.nadd, res.ndel, inv->n);
	*out = rs;
	return 0;
}

static void count_suppressed(struct daemon *d, const struct ir_ruleset *have);

static void on_snapshot(void *ctx, struct inventory *inv, const char *err)
{
	struct daemon *d = ctx;
	struct ir_ruleset *rs = NULL;

	d->snapshot_running = false;
	if (!inv) {
		docker_lost(d, err);
		return;
	}
	d->resyncs++;
	if (converge(d, d->cc, inv, &rs)) {
		/* the kernel refused: keep what we had, try again soon */
		inventory_free(inv);
		arm(d->wresync.fd, RETRY_KERNEL_S * 1000);
		return;
	}
	inventory_free(d->inv);
	d->inv = inv;
	if (!d->based)
		count_suppressed(d, NULL); /* the count starts here */
	inv_changed(d);
	ir_free(d->rs);
	d->rs = rs;
	d->rs_stale = false;
	d->last_sync = time(NULL);
	arm(d->wresync.fd, d->o->resync_s * 1000);
	if (d->down_logged || !d->synced_once)
		say("docker: in sync (API %s): %zu containers",
		    docker_api_version(d->dk), inv->n);
	if (!d->synced_once)
		notify("READY=1\nSTATUS=enforcing");
	else if (d->down_logged)
		notify("STATUS=enforcing");
	d->synced_once = true;
	d->down_logged = false;
	d->backoff_ms = BACKOFF_MIN_MS;
}

static bool dns_first(const struct daemon *d);

static void start_resync(struct daemon *d)
{
	d->resync_wanted = false;
	if (dns_first(d)) {
		d->resync_wanted = true;
		return;
	}
	if (d->dk_state != DK_UP || d->snapshot_running)
		return;
	if (docker_snapshot(d->dk, on_snapshot, d)) {
		docker_lost(d, "cannot start a snapshot");
		return;
	}
	d->snapshot_running = true;
}

/* Runs inside libcurl's write callback: queue only, never call back into
 * the docker client from here. */
static void on_event_line(void *ctx, const char *line, size_t len)
{
	struct daemon *d = ctx;
	struct pending *pe;
	struct docker_event ev;

	if (docker_event_parse(line, len, &ev)) {
		d->errors++;
		if (!d->garbage_logged)
			say("warning: docker: an event that does not parse "
			    "(%.*s); ignored, and the next resync covers it",
			    (int)(len < 60 ? len : 60), line);
		d->garbage_logged = true;
		resync_soon(d);
		return;
	}
	if (ev.kind == DEV_OTHER)
		return;
	if (d->qhead == d->qn)
		d->qhead = d->qn = 0;
	pe = PUSH(d->q, d->qn, d->qcap);
	pe->ev = ev;
	pe->t_read = now_ms();
	pe->t_reply = 0;
	pe->listed = false;
}

static void on_stream_end(void *ctx, long status, const char *body, size_t len,
			  const char *err)
{
	struct daemon *d = ctx;
	char why[300];

	(void)body;
	(void)len;
	if (status && status != 200)
		snprintf(why, sizeof(why), "event stream: HTTP status %ld",
			 status);
	else
		snprintf(why, sizeof(why), "event stream ended%s%s",
			 err && *err ? ": " : "", err ? err : "");
	docker_lost(d, why);
}

static void on_negotiated(void *ctx, long status, const char *body, size_t len,
			  const char *err)
{
	struct daemon *d = ctx;
	char why[300];

	(void)body;
	(void)len;
	if (status != 200) {
		if (status)
			snprintf(why, sizeof(why), "/version: HTTP status %ld",
				 status);
		else
			snprintf(why, sizeof(why), "%s", err);
		docker_lost(d, why);
		return;
	}
	/* the stream first, then the list: nothing falls between them */
	if (docker_events(d->dk, on_event_line, on_stream_end, d)) {
		docker_lost(d, "cannot open the event stream");
		return;
	}
	d->dk_state = DK_UP;
	d->garbage_logged = false;
	start_resync(d);
}

static void docker_connect(struct daemon *d)
{
	docker_cancel_all(d->dk);
	d->dk_state = DK_NEGOTIATING;
	if (docker_negotiate(d->dk, on_negotiated, d))
		docker_lost(d, "cannot start a request");
}

static void process_queue(struct daemon *d);
static void on_event_reply(void *ctx, long status, const char *body, size_t len,
			   const char *err);

static void ask(struct daemon *d, const char *path)
{
	if (docker_get(d->dk, path, on_event_reply, d))
		docker_lost(d, "cannot start a request");
	else
		d->busy = true;
}

/* A container joined a network: its list entry, then the network's
 * object with the address it holds there (both answer while the
 * container starts; inspect would wait for the start to finish). */
static void on_connect_reply(struct daemon *d, struct pending *pe, long status,
			     const char *body, size_t len)
{
	struct inventory *scratch;
	char why[512], *path;
	long old;

	if (status != 200) {
		/* the slow way, which also covers a network gone since */
		pe->ev.kind = DEV_UPDATE;
		process_queue(d);
		return;
	}
	if (!pe->listed) {
		pe->listed = true;
		d->listed.len = 0;
		sb_putn(&d->listed, body, len);
		path = xasprintf("/networks/%s", pe->ev.net);
		ask(d, path);
		free(path);
		return;
	}
	pe->t_reply = now_ms();
	d->qhead++;
	d->events++;
	scratch = inventory_new();
	if (docker_parse_connect(d->dk, d->listed.s, d->listed.len, body, len,
				 pe->ev.id, scratch, why, sizeof(why))) {
		fail(d, "docker: container %.12s: %s", pe->ev.id, why);
		resync_soon(d);
	} else if (scratch->n) {
		old = inventory_index(d->inv, pe->ev.id);
		if (old >= 0)
			inventory_merge_nets(&scratch->c[0], &d->inv->c[old]);
		place(d, pe->ev.id, scratch, pe);
	}
	inventory_free(scratch);
	process_queue(d);
}

static void on_event_reply(void *ctx, long status, const char *body, size_t len,
			   const char *err)
{
	struct daemon *d = ctx;
	struct pending pe;
	struct inventory *scratch;
	char why[512];

	d->busy = false;
	if (d->q[d->qhead].ev.kind == DEV_CONNECT) {
		on_connect_reply(d, &d->q[d->qhead], status, body, len);
		return;
	}
	pe = d->q[d->qhead++];
	pe.t_reply = now_ms();
	d->events++;
	scratch = inventory_new();
	if (pe.ev.kind == DEV_NETWORK_NEW) {
		if (status == 200)
			docker_learn_network(d->dk, body, len);
	} else if (status == 200) {
		if (docker_parse_inspect(d->dk, body, len, scratch, why,
					 sizeof(why))) {
			fail(d, "docker: container %.12s: %s", pe.ev.id, why);
			resync_soon(d);
		} else
			place(d, pe.ev.id, scratch, &pe);
	} else if (status == 404) {
		place(d, pe.ev.id, scratch, &pe); /* gone already */
	} else {
		fail(d, "docker: container %.12s: %s", pe.ev.id,
		     status ? "unexpected HTTP status" : err);
		resync_soon(d);
	}
	inventory_free(scratch);
	process_queue(d);
}

/* One event at a time, in order: a container's start and its connect
 * can never be applied the wrong way round. */
static void process_queue(struct daemon *d)
{
	while (!d->busy && !d->snapshot_running && d->dk_state == DK_UP &&
	       !dns_first(d)) {
		struct pending *pe;
		char *path;

		if (d->qhead == d->qn) {
			if (d->resync_wanted)
				start_resync(d);
			return;
		}
		pe = &d->q[d->qhead];
		if (pe->ev.kind == DEV_STOP) {
			struct inventory *none = inventory_new();

			d->qhead++;
			d->events++;
			if (inventory_index(d->inv, pe->ev.id) >= 0)
				place(d, pe->ev.id, none, pe);
			inventory_free(none);
			continue;
		}
		if (pe->ev.kind == DEV_CONNECT)
			path = xasprintf(
			    "/containers/json?all=1&filters="
			    "%%7B%%22id%%22%%3A%%5B%%22%s%%22%%5D%%7D",
			    pe->ev.id);
		else
			path = xasprintf(pe->ev.kind == DEV_NETWORK_NEW
					     ? "/networks/%s"
					     : "/containers/%s/json",
					 pe->ev.id);
		ask(d, path);
		free(path);
	}
}

/* --- others' changes to our table ------------------------------------- */

/* Someone else changed our table (nft delete table, flush ruleset, a rule
 * or element removed by hand): put back what the daemon holds, at once,
 * by the same read-back and converge as at start. */
static void on_nft_event(struct daemon *d)
{
	struct kernel_sync res;
	char what[160], err[512];
	double t0;

	if (!kernel_watch_read(d->kw, d->k, d->rs, what, sizeof(what)) ||
	    !d->rs)
		return;
	t0 = now_ms();
	if (kernel_sync(d->k, wanted(d), false, &res, err, sizeof(err))) {
		fail(d,
		     "kernel: restoring table inet %s after another "
		     "process changed it (%s): %s; retrying",
		     d->rs->table, what, err);
		resync_soon(d);
		return;
	}
	if (!res.replaced && !res.nadd && !res.ndel)
		return; /* nothing of ours had changed after all */
	restart_counts(d, &res);
	d->restores++;
	d->last_restore = time(NULL);
	snprintf(d->last_restore_why, sizeof(d->last_restore_why), "%s", what);
	say("kernel: table inet %s changed by another process (%s): "
	    "restored in %.1f ms (%s)",
	    d->rs->table, what, now_ms() - t0,
	    res.replaced ? "table replaced" : "elements mended");
}

/* --- fqdn peers --------------------------------------------------------- */

/* The compiler's view of the answers follows the cache (whose names the
 * list borrows): after every answer, failure and policy change. Most
 * refreshes answer what was answered before: then the compiler stays.
 * Returns whether the list changed. */
static bool fqdn_relist(struct daemon *d)
{
	struct compile_fqdn *l;
	size_t n = fqdn_compile_list(&d->fq, &l), i;
	struct compile_opts co = d->co;
	struct compiler *cc;

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
	cc = compiler_new(d->p, &co);
	free(d->fql);
	d->fql = l;
	d->co = co;
	compiler_free(d->cc);
	d->cc = cc;
	inv_changed(d);
	return true;
}

/* Name's sets get its addresses anew, with fresh timeouts, in one
 * transaction. */
static void fqdn_program(struct daemon *d, const char *name)
{
	struct ir_delta adds = {0};
	size_t *sets, n;
	char err[512];
	bool changed = fqdn_relist(d);

	if (!d->rs)
		return; /* the first sync programs them */
	n = compile_fqdn_sets(d->cc, name, &adds, &sets);
	if (n && kernel_refill(d->k, d->rs, sets, n, &adds, err, sizeof(err))) {
		fail(d, "kernel: refilling the sets of fqdn %s: %s; resyncing",
		     name, err);
		resync_soon(d);
	} else if (n) {
		/* new timeouts alone leave the full compile as it was; an
		 * address that left the answer ends its flows */
		d->rs_stale |= changed;
		d->revoke_wanted |= changed;
		d->refills++;
	}
	free(sets);
	ir_delta_free(&adds);
}

static void addr_list(const struct fqdn_name *f, struct strbuf *sb)
{
	char buf[64];
	size_t i;

	sb_puts(sb, "");
	for (i = 0; i < f->n; i++) {
		addr_format(f->a[i].family, f->a[i].addr, buf, sizeof(buf));
		sb_printf(sb, "%s%s", i ? ", " : "", buf);
	}
}

static void on_dns(void *ctx, const char *name, const struct fqdn_addr *a,
		   size_t n, unsigned ttl_s, const char *err)
{
	struct daemon *d = ctx;
	uint64_t now = (uint64_t)now_ms();
	long i = fqdn_find(&d->fq, name);
	struct fqdn_name *f;
	struct strbuf sb = {0};
	uint64_t since;
	unsigned r;

	if (i < 0)
		return; /* a reload dropped it meanwhile */
	f = &d->fq.v[i];
	since = f->failing_since;
	r = err ? fqdn_failed(&d->fq, (size_t)i, now, err)
		: fqdn_answer(&d->fq, (size_t)i, now, a, n, ttl_s);
	addr_list(f, &sb);
	if (r & FQDN_OUTAGE)
		say("warning: fqdn %s: %s; %s%s", f->name, f->error,
		    f->n ? "keeping the last good addresses: "
			 : "nothing is allowed to it until it resolves",
		    sb.s);
	if (r & FQDN_RECOVERED)
		say("fqdn %s: resolves again after %.0f s", f->name,
		    (double)(now - since) / 1e3);
	if (r & FQDN_CHANGED)
		say("fqdn %s: %s (ttl %u s, kept %u s)", f->name, sb.s,
		    f->ttl_s, f->eff_s);
	if (r & FQDN_PROGRAM)
		fqdn_program(d, f->name);
	sb_free(&sb);
}

/* Asks about every name due, and sets the timer for the next one (or
 * for c-ares's next timeout). */
static void dns_tick(struct daemon *d)
{
	struct itimerspec off = {0};
	uint64_t now = (uint64_t)now_ms(), next, ms;
	size_t i;
	int t;

	for (i = 0; i < d->fq.n; i++)
		if (fqdn_due(&d->fq, i, now)) {
			fqdn_asking(&d->fq, i);
			dns_ask(d->dns, d->fq.v[i].name, on_dns, d);
		}
	next = fqdn_next(&d->fq);
	ms = next == FQDN_NEVER ? UINT64_MAX : next > now ? next - now : 0;
	t = dns_timeout_ms(d->dns);
	if (t >= 0 && (uint64_t)t < ms)
		ms = (uint64_t)t;
	if (ms == UINT64_MAX)
		timerfd_settime(d->wdnstimer.fd, 0, &off, NULL);
	else
		arm(d->wdnstimer.fd, ms > 86400000u ? 86400000u : (unsigned)ms);
}

/* At start the first sync waits for every name's first answer (or
 * failure), so that a restart does not take the addresses in force
 * out of the kernel for the moments DNS takes. */
static bool dns_first(const struct daemon *d)
{
	return !d->synced_once && fqdn_first_round(&d->fq);
}

/* --- denied flows ------------------------------------------------------ */

static void iso_time_us(uint64_t us, char *buf, size_t len)
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03uZ", (unsigned)(us / 1000 % 1000));
}

static uint64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static void on_flow(void *ctx, const struct flow_pkt *pkt)
{
	struct daemon *d = ctx;
	char ts[40];

	/* our clock, at most the NFLOG batch timeout (0.1 s) late: not
	 * every packet carries a timestamp, nor one on the wall clock */
	iso_time_us(wall_us(), ts, sizeof(ts));
	d->line.len = 0;
	d->records++;
	flowlog_attribute(pkt, d->cc, d->p, d->ix, d->gone, ts, &d->line);
	if (flowlog_sink_write_line(d->sink, d->line.s, d->line.len))
		fail(d, "denied-flow log %s: cannot write", d->o->log);
}

/* The deny chain's count of denied packets (its last rule's counter),
 * or -1 when it cannot be read. */
/* The deny chain's count of denied packets (its last rule's counter) in
 * a ruleset read back, or -1. */
static int64_t denied_packets(const struct ir_ruleset *have)
{
	const struct ir_chain *c = have ? ir_chain_find(have, "deny") : NULL;
	int64_t n = -1;
	size_t i;

	for (i = 0; c && i < c->n; i++)
		if (c->r[i].counter)
			n = (int64_t)c->r[i].packets;
	return n;
}

/* have: our table as just read back, or NULL to read it here. */
static void count_suppressed(struct daemon *d, const struct ir_ruleset *have)
{
	struct ir_ruleset *own = NULL;
	char err[256];
	int64_t n;
	uint64_t denied, logged;

	if (!have &&
	    !kernel_read(d->k, COMPILE_TABLE, &own, NULL, err, sizeof(err)))
		have = own;
	n = denied_packets(have);
	ir_free(own);
	if (n < 0)
		return;
	if (!d->based || (uint64_t)n < d->denied_base) {
		/* first look, or the table was replaced under us */
		d->denied_base = d->based ? 0 : (uint64_t)n;
		d->records_base = d->records;
		d->based = true;
	}
	denied = (uint64_t)n - d->denied_base;
	logged = d->records - d->records_base;
	d->suppressed = denied > logged ? (unsigned long)(denied - logged) : 0;
}

/* What the records cannot say themselves (the kernel dropped messages,
 * some did not parse) goes in a summary record, at most once a minute
 * and only when it changed: counted, never silently lost. */
static void flow_summary(struct daemon *d)
{
	const struct flowlog_stats *st = flowlog_stats(d->fl);
	time_t now = time(NULL);
	char ts[40];
	json_t *rec;

	if (now - d->last_summary < 60)
		return;
	count_suppressed(d, NULL);
	if (st->overruns == d->summarized.overruns &&
	    st->malformed == d->summarized.malformed &&
	    d->suppressed == d->summarized_supp)
		return;
	iso_time_us(wall_us(), ts, sizeof(ts));
	rec = json_pack(
	    "{s:s, s:s, s:I, s:I, s:I, s:I}", "ts", ts, "verdict", "summary",
	    "suppressed",
	    (json_int_t)(d->suppressed > d->summarized_supp
			     ? d->suppressed - d->summarized_supp
			     : 0),
	    "overruns", (json_int_t)(st->overruns - d->summarized.overruns),
	    "malformed", (json_int_t)(st->malformed - d->summarized.malformed),
	    "records", (json_int_t)d->records);
	d->summarized_supp = d->suppressed;
	flowlog_sink_write(d->sink, rec);
	json_decref(rec);
	if (st->overruns != d->summarized.overruns)
		say("warning: denied-flow log: the kernel dropped %lu NFLOG "
		    "batches (overrun); counted in the log's summary",
		    st->overruns - d->summarized.overruns);
	d->summarized = *st;
	d->last_summary = now;
}

static void on_nflog(struct daemon *d)
{
	/* addresses indexed once per change of the inventory or policy */
	if (!d->ix)
		d->ix = trace_index_new(d->cc, d->p, d->inv);
	flowlog_read(d->fl, on_flow, d);
	flow_summary(d);
	flowlog_sink_flush(d->sink);
}

/* --- policy ------------------------------------------------------------ */

/* Loads the policy file anew; a broken one leaves the running policy in
 * force. Diagnostics go to errs (as lines) too. Returns 0, or 2 for a
 * bad file, 1 when the kernel refused the new ruleset. */
static int reload(struct daemon *d, json_t *errs)
{
	struct diags dg = {0};
	struct policy *p = policy_load(d->o->policy, &dg);
	struct compiler *cc;
	struct ir_ruleset *rs = NULL;
	struct flowlog *fl = NULL;
	char err[512];
	size_t i;

	for (i = 0; i < dg.n; i++) {
		char *line = xasprintf(
		    "%s:%u:%u: %s: %s", dg.v[i].file ? dg.v[i].file : "",
		    dg.v[i].line, dg.v[i].col,
		    dg.v[i].level == DIAG_ERROR ? "error" : "warning",
		    dg.v[i].msg);

		say("reload: %s", line);
		json_array_append_new(errs, json_string(line));
		free(line);
	}
	diags_free(&dg);
	if (!p) {
		fail(d,
		     "reload: %s does not load; the running policy stays "
		     "in force",
		     d->o->policy);
		return 2;
	}
	/* a new log group is bound before the ruleset that logs to it */
	if (p->log_group != d->p->log_group &&
	    !(fl = flowlog_open(p->log_group, err, sizeof(err)))) {
		fail(d, "reload: %s; the running policy stays in force", err);
		json_array_append_new(errs, json_string(d->last_error));
		policy_free(p);
		return 1;
	}
	cc = compiler_new(p, &d->co);
	if (converge(d, cc, d->inv, &rs)) {
		json_array_append_new(errs, json_string(d->last_error));
		flowlog_close(fl);
		compiler_free(cc);
		policy_free(p);
		return 1;
	}
	if (fl) {
		flowlog_close(d->fl); /* its fd leaves the epoll set */
		d->fl = fl;
		memset(&d->summarized, 0, sizeof(d->summarized));
		if (watch_add(d, &d->wnflog, W_NFLOG, flowlog_fd(fl)))
			fail(d, "reload: NFLOG group %u: %s", p->log_group,
			     strerror(errno));
	}
	compiler_free(d->cc);
	policy_free(d->p);
	ir_free(d->rs);
	d->p = p;
	d->cc = cc;
	inv_changed(d);
	d->rs = rs;
	d->rs_stale = false;
	/* names the new policy brings are asked about now; answers of
	 * names it dropped go with the next compile */
	fqdn_set_names(&d->fq, p);
	fqdn_relist(d);
	dns_tick(d);
	say("reloaded %s: %zu services, %zu edges", p->file, p->nservices,
	    p->nedges);
	return 0;
}

/* --- the control socket ------------------------------------------------ */

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void iso_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A line of /proc/self/status ("CapEff", "NoNewPrivs"), for status. */
static json_t *proc_status(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t n = strlen(key);
	json_t *v = NULL;

	while (f && !v && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			line[strcspn(line, "\n")] = 0;
			v = json_string(line + n + 1 +
					strspn(line + n + 1, " \t"));
		}
	if (f)
		fclose(f);
	return v ? v : json_null();
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Median and 99th percentile of n samples, as PREFIXmedian_us and
 * PREFIXp99_us. */
static void percentiles(json_t *o, const char *prefix, const double *samples,
			size_t n)
{
	double v[LAT_N];
	char key[32];

	memcpy(v, samples, n * sizeof(*v));
	qsort(v, n, sizeof(*v), dcmp);
	json_object_set_new(o, "n", json_integer((json_int_t)n));
	snprintf(key, sizeof(key), "%smedian_us", prefix);
	json_object_set_new(o, key, json_real(v[n / 2]));
	snprintf(key, sizeof(key), "%sp99_us", prefix);
	json_object_set_new(o, key, json_real(v[(n * 99) / 100]));
}

static void lat_json(json_t *st, const char *key, const struct lat *l)
{
	json_t *o = json_object();

	if (l->n) {
		percentiles(o, "", l->v, l->n);
		percentiles(o, "own_", l->own, l->n);
	}
	json_object_set_new(st, key, o);
}

/* Whole seconds from one monotonic ms time to a later one; 0 when it is
 * not later. */
static json_t *secs(uint64_t from, uint64_t to)
{
	return json_integer(to > from ? (json_int_t)((to - from) / 1000) : 0);
}

/* Each fqdn peer: its addresses, how fresh, and DNS failures. */
static json_t *fqdn_json(const struct daemon *d)
{
	json_t *arr = json_array();
	uint64_t now = (uint64_t)now_ms();
	static const char *const state[] = {"pending", "ok", "stale",
					    "failing"};
	size_t i, j;

	for (i = 0; i < d->fq.n; i++) {
		const struct fqdn_name *f = &d->fq.v[i];
		json_t *o = json_object(), *a = json_array();
		char buf[64];

		for (j = 0; j < f->n; j++) {
			addr_format(f->a[j].family, f->a[j].addr, buf,
				    sizeof(buf));
			json_array_append_new(a, json_string(buf));
		}
		json_object_set_new(o, "name", json_string(f->name));
		json_object_set_new(o, "state", json_string(state[f->state]));
		json_object_set_new(o, "addresses", a);
		if (f->answered) {
			json_object_set_new(o, "ttl_s", json_integer(f->ttl_s));
			json_object_set_new(o, "kept_s",
					    json_integer(f->eff_s));
			json_object_set_new(o, "answered_s_ago",
					    secs(f->answered_at, now));
		}
		if (!f->asking)
			json_object_set_new(o, "next_ask_in_s",
					    secs(now, f->next_at));
		if (f->n)
			json_object_set_new(o, "expires_in_s",
					    secs(now, f->expires_at));
		if (f->failures) {
			json_object_set_new(o, "error", json_string(f->error));
			json_object_set_new(o, "failures",
					    json_integer(f->failures));
			json_object_set_new(o, "failing_for_s",
					    secs(f->failing_since, now));
		}
		json_object_set_new(o, "counts",
				    json_pack("{s:I, s:I, s:I, s:I}", "asked",
					      (json_int_t)f->asked, "answered",
					      (json_int_t)f->answered,
					      "changed", (json_int_t)f->changed,
					      "failed", (json_int_t)f->failed));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *status_json(struct daemon *d)
{
	json_t *st = json_object(), *svcs = json_object(), *un = json_array();
	json_t *sets = json_object();
	struct ir_ruleset *have = NULL;
	char err[256], ts[32];
	size_t i, j, total = 0;
	int r;

	json_object_set_new(st, "ok", json_true());
	json_object_set_new(st, "policy", json_string(d->p->file));
	json_object_set_new(st, "mode",
			    json_string(d->co.audit || d->p->mode == POL_AUDIT
					    ? "audit"
					    : "enforce"));
	json_object_set_new(
	    st, "docker",
	    json_string(d->dk_state == DK_UP ? "connected" : "unreachable"));
	if (d->dk_state != DK_UP && d->down_logged)
		json_object_set_new(st, "docker_error",
				    json_string(d->down_why));
	json_object_set_new(st, "api", json_string(docker_api_version(d->dk)));
	if (d->last_sync) {
		iso_time(d->last_sync, ts, sizeof(ts));
		json_object_set_new(st, "last_sync", json_string(ts));
		json_object_set_new(
		    st, "last_sync_age_s",
		    json_integer((json_int_t)(time(NULL) - d->last_sync)));
	}
	json_object_set_new(st, "events", json_integer((json_int_t)d->events));
	json_object_set_new(st, "deltas", json_integer((json_int_t)d->deltas));
	json_object_set_new(st, "revoked_flows",
			    json_integer((json_int_t)d->revoked));
	json_object_set_new(st, "revocation_sweeps",
			    json_integer((json_int_t)d->sweeps));
	json_object_set_new(st, "last_sweep_ms", json_real(d->last_sweep_ms));
	json_object_set_new(st, "flows_tracked",
			    json_integer((json_int_t)revoke_tracked(d->rv)));
	json_object_set_new(st, "resyncs",
			    json_integer((json_int_t)d->resyncs));
	json_object_set_new(st, "errors", json_integer((json_int_t)d->errors));
	{
		/* what the running containers make of the policy now:
		 * unmatched ones, two services, ports published that the
		 * policy does not open */
		struct diags dg = {0};
		json_t *w = json_array();
		size_t k;

		compile_check(d->cc, d->inv, "docker", &dg);
		for (k = 0; k < dg.n; k++)
			json_array_append_new(
			    w, json_sprintf("%s: %s",
					    dg.v[k].level == DIAG_ERROR
						? "error"
						: "warning",
					    dg.v[k].msg));
		diags_free(&dg);
		json_object_set_new(st, "warnings", w);
	}
	if (d->fq.n) {
		json_object_set_new(st, "fqdn", fqdn_json(d));
		json_object_set_new(st, "fqdn_refills",
				    json_integer((json_int_t)d->refills));
	}
	json_object_set_new(st, "capabilities", proc_status("CapEff"));
	json_object_set_new(st, "no_new_privs", proc_status("NoNewPrivs"));
	json_object_set_new(st, "restores",
			    json_integer((json_int_t)d->restores));
	if (d->restores) {
		char t[32];

		iso_time(d->last_restore, t, sizeof(t));
		json_object_set_new(st, "last_restore",
				    json_pack("{s:s, s:s}", "at", t, "why",
					      d->last_restore_why));
	}
	if (d->last_error[0])
		json_object_set_new(st, "last_error",
				    json_string(d->last_error));
	json_object_set_new(st, "rss_kb", json_integer(rss_kb()));
	for (i = 0; i < d->p->nservices; i++)
		json_object_set_new(svcs, d->p->services[i].name, json_array());
	for (i = 0; i < d->inv->n; i++) {
		const struct inv_container *c = &d->inv->c[i];
		json_t *o = json_object(), *addrs = json_array();
		long a, b, s = compiler_assign(d->cc, c, &a, &b);

		json_object_set_new(o, "name", json_string(c->name));
		json_object_set_new(o, "id", json_stringn(c->id, 12));
		for (j = 0; j < c->nnets; j++) {
			json_t *n = json_object();
			char buf[64];

			json_object_set_new(n, "network",
					    json_string(c->nets[j].name));
			if (c->nets[j].has4) {
				addr_format(AF_INET, c->nets[j].ip4, buf,
					    sizeof(buf));
				json_object_set_new(n, "ipv4",
						    json_string(buf));
			}
			if (c->nets[j].has6) {
				addr_format(AF_INET6, c->nets[j].ip6, buf,
					    sizeof(buf));
				json_object_set_new(n, "ipv6",
						    json_string(buf));
			}
			json_array_append_new(addrs, n);
		}
		json_object_set_new(o, "addresses", addrs);
		if (s >= 0) {
			json_array_append_new(
			    json_object_get(svcs, d->p->services[s].name), o);
		} else {
			json_object_set_new(
			    o, "why",
			    json_string(s == COMPILE_CONFLICT
					    ? "matches two services"
					    : "matches no service"));
			json_array_append_new(un, o);
		}
	}
	json_object_set_new(st, "services", svcs);
	json_object_set_new(st, "unplaced", un);
	r = kernel_read(d->k, COMPILE_TABLE, &have, NULL, err, sizeof(err));
	if (!r && have && d->fl)
		count_suppressed(d, have); /* the same read, for the log */
	if (!r && have) {
		for (i = 0; i < have->nsets; i++) {
			total += have->sets[i].n;
			if (have->sets[i].n)
				json_object_set_new(
				    sets, have->sets[i].name,
				    json_integer((json_int_t)have->sets[i].n));
		}
		json_object_set_new(st, "kernel_sets",
				    json_integer((json_int_t)have->nsets));
		json_object_set_new(st, "kernel_elements",
				    json_integer((json_int_t)total));
		json_object_set_new(st, "elements", sets);
	} else {
		json_object_set_new(
		    st, "kernel_error",
		    json_string(r ? err : "table inet bulkhead is missing"));
		json_decref(sets);
	}
	ir_free(have);
	lat_json(st, "start_to_commit", &d->lstart);
	json_object_set_new(json_object_get(st, "start_to_commit"),
			    "placed_before_start",
			    json_integer((json_int_t)d->before_start));
	lat_json(st, "connect_to_commit", &d->lconnect);
	lat_json(st, "start_to_bound", &d->lbind);
	if (d->fl) {
		const struct flowlog_stats *fs = flowlog_stats(d->fl);

		json_object_set_new(
		    st, "denied_flows",
		    json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "log",
			      d->o->log, "records", (json_int_t)d->records,
			      "suppressed", (json_int_t)d->suppressed,
			      "overruns", (json_int_t)fs->overruns, "malformed",
			      (json_int_t)fs->malformed, "foreign",
			      (json_int_t)fs->foreign));
	}
	return st;
}

static json_t *trace_json(struct daemon *d, json_t *req)
{
	const char *src = json_string_value(json_object_get(req, "src"));
	const char *dst = json_string_value(json_object_get(req, "dst"));
	const char *port = json_string_value(json_object_get(req, "port"));
	json_t *rep = json_object(), *errs = json_array();
	struct diags dg = {0};
	struct strbuf out = {0};
	struct ir_ruleset *rs;
	size_t i;
	int r = -EINVAL;

	if (!src || !dst || !port) {
		json_object_set_new(rep, "ok", json_false());
		json_object_set_new(rep, "error",
				    json_string("trace needs src, dst, port"));
		json_decref(errs);
		return rep;
	}
	rs = compile_ruleset(d->cc, d->inv, "docker", &dg);
	if (rs)
		r = trace_run(d->cc, d->p, rs, d->inv, src, dst, port, &out,
			      &dg);
	for (i = 0; i < dg.n; i++)
		if (dg.v[i].level == DIAG_ERROR)
			json_array_append_new(errs, json_string(dg.v[i].msg));
	json_object_set_new(rep, "ok", json_boolean(r >= 0));
	json_object_set_new(rep, "output", json_string(out.s ? out.s : ""));
	json_object_set_new(rep, "errors", errs);
	json_object_set_new(rep, "policy", json_string(d->p->file));
	ir_free(rs);
	sb_free(&out);
	diags_free(&dg);
	return rep;
}

static json_t *answer(struct daemon *d, const char *line, size_t len)
{
	json_t *req = json_loadb(line, len, 0, NULL), *rep;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (cmd && !strcmp(cmd, "status")) {
		rep = status_json(d);
	} else if (cmd && !strcmp(cmd, "trace")) {
		rep = trace_json(d, req);
	} else if (cmd && !strcmp(cmd, "reload")) {
		json_t *errs = json_array();
		int r = reload(d, errs);

		rep = json_object();
		json_object_set_new(rep, "ok", json_boolean(!r));
		json_object_set_new(rep, "exit", json_integer(r));
		json_object_set_new(rep, "errors", errs);
		json_object_set_new(rep, "services",
				    json_integer((json_int_t)d->p->nservices));
		json_object_set_new(rep, "edges",
				    json_integer((json_int_t)d->p->nedges));
	} else {
		rep = json_object();
		json_object_set_new(rep, "ok", json_false());
		json_object_set_new(rep, "error",
				    json_string("unknown request"));
	}
	json_decref(req);
	return rep;
}

static void client_close(struct daemon *d, struct client *c)
{
	epoll_ctl(d->ep, EPOLL_CTL_DEL, c->w.fd, NULL);
	close(c->w.fd);
	free(c);
}

/* Who may ask: root, our own user, or a member of the control group. */
/* cr receives the peer's credentials (left as they were when they cannot
 * be read). */
static bool peer_allowed(const struct daemon *d, int fd, struct ucred *cr)
{
	socklen_t len = sizeof(*cr);
	struct group *g;
	struct passwd *pw;
	gid_t groups[64];
	int ng = 64, i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cr, &len))
		return false;
	if (cr->uid == 0 || cr->uid == geteuid())
		return true;
	if (!d->o->control_group || !(g = getgrnam(d->o->control_group)))
		return false;
	if (cr->gid == g->gr_gid)
		return true;
	pw = getpwuid(cr->uid);
	if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) < 0)
		return false;
	for (i = 0; i < ng; i++)
		if (groups[i] == g->gr_gid)
			return true;
	return false;
}

static void client_read(struct daemon *d, struct client *c)
{
	ssize_t n = read(c->w.fd, c->buf + c->len, sizeof(c->buf) - c->len);
	char *nl;
	json_t *rep;
	char *s;
	struct timeval tv = {.tv_sec = 2};

	if (n < 0 && errno == EAGAIN)
		return;
	if (n > 0)
		c->len += (size_t)n;
	nl = memchr(c->buf, '\n', c->len);
	if (!nl && n > 0 && c->len < sizeof(c->buf))
		return;
	if (!nl) {
		client_close(d, c);
		return;
	}
	rep = answer(d, c->buf, (size_t)(nl - c->buf));
	s = json_dumps(rep, JSON_COMPACT);
	json_decref(rep);
	/* a reader that stalls gets two seconds, not the loop */
	fcntl(c->w.fd, F_SETFL, 0);
	setsockopt(c->w.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (s) {
		size_t off = 0, len = strlen(s);

		while (off < len) {
			n = send(c->w.fd, s + off, len - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		free(s);
	}
	client_close(d, c);
}

static void client_accept(struct daemon *d)
{
	int fd =
	    accept4(d->wcontrol.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct client *c;
	struct ucred cr = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};

	if (fd < 0)
		return;
	if (!peer_allowed(d, fd, &cr)) {
		char msg[200];
		int n = snprintf(msg, sizeof(msg),
				 "{\"error\":\"not allowed: uid %u gid %u is "
				 "neither root nor %s\"}\n",
				 (unsigned)cr.uid, (unsigned)cr.gid,
				 d->o->control_group ? "in the control group"
						     : "the daemon's user");

		say("control: refused pid %d (uid %u, gid %u): neither root, "
		    "the daemon's user nor in the control group",
		    (int)cr.pid, (unsigned)cr.uid, (unsigned)cr.gid);
		/* a small answer into an empty socket buffer: it fits, and
		 * if it does not, closing says enough */
		(void)!write(fd, msg, (size_t)n);
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	if (watch_add(d, &c->w, W_CLIENT, fd)) {
		close(fd);
		free(c);
	}
}

static int control_open(const struct daemon_opts *o, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = -1, probe;
	struct group *g = NULL;
	mode_t mode = 0600;

	if (strlen(o->control) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path too long: %s",
			 o->control);
		return -1;
	}
	strcpy(sa.sun_path, o->control);
	if (o->control_group && !(g = getgrnam(o->control_group))) {
		snprintf(err, errlen, "control group '%s' does not exist",
			 o->control_group);
		return -1;
	}
	/* a live daemon answers: refuse to take its socket */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
		close(probe);
		snprintf(err, errlen, "%s: another bulkhead daemon is running",
			 o->control);
		return -1;
	}
	if (probe >= 0)
		close(probe);
	unlink(o->control);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    (g && chown(o->control, (uid_t)-1, g->gr_gid)) ||
	    chmod(o->control, g ? (mode = 0660) : mode) || listen(fd, 16)) {
		snprintf(err, errlen, "control socket %s: %s", o->control,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int daemon_request(const char *control, const char *request, char **reply,
		   char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct strbuf sb = {0};
	struct timeval tv = {.tv_sec = 30};
	char buf[4096];
	ssize_t n;
	int fd, r = 0;

	*reply = NULL;
	if (strlen(control) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, control);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		r = -errno;
		snprintf(err, errlen,
			 "cannot reach the daemon at %s: %s (is `bulkhead "
			 "run` running?)",
			 control, strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* a daemon that refuses us says why and closes, maybe before our
	 * request is sent: its answer is still there to read */
	if ((send(fd, request, strlen(request), MSG_NOSIGNAL) < 0 ||
	     send(fd, "\n", 1, MSG_NOSIGNAL) < 0) &&
	    errno != EPIPE) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", control, strerror(errno));
		goto out;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		sb_putn(&sb, buf, (size_t)n);
	/* a refusing daemon closes with our request unread: the kernel
	 * then reports a reset after its answer */
	if (n < 0 && errno == ECONNRESET && sb.len)
		n = 0;
	if (n < 0 || !sb.len) {
		r = n < 0 ? -errno : -ECONNRESET;
		snprintf(err, errlen, "%s: no answer from the daemon%s%s",
			 control, n < 0 ? ": " : "",
			 n < 0 ? strerror(errno) : "");
		goto out;
	}
	sb_putc(&sb, '\0');
	*reply = sb.s;
	sb.s = NULL;
out:
	sb_free(&sb);
	if (fd >= 0)
		close(fd);
	return r;
}

/* --- the loop ---------------------------------------------------------- */

static void on_signal(struct daemon *d)
{
	struct signalfd_siginfo si;
	json_t *errs;

	while (read(d->wsignal.fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			notify("RELOADING=1");
			if (d->sink && flowlog_sink_reopen(d->sink))
				fail(d, "denied-flow log %s: cannot reopen",
				     d->o->log);
			errs = json_array();
			reload(d, errs);
			json_decref(errs);
			notify("READY=1");
			break;
		case SIGTERM:
		case SIGINT:
			say("exiting on signal %u; the rules stay in force",
			    si.ssi_signo);
			d->stop = true;
			break;
		}
	}
}

static void drain(int fd)
{
	uint64_t ticks;

	if (read(fd, &ticks, sizeof(ticks)) < 0)
		return;
}

/* Ends the flows that what is in force now no longer allows: judged by
 * trace's decision, against the inventory and policy the kernel holds. */
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
 * (a start after its connect) keeps its own. Empties the list. */
static struct revoke_addr *gone_addrs(struct daemon *d, size_t *n)
{
	struct revoke_addr *v = xcalloc(d->ngone_addrs + 1, sizeof(*v));
	size_t i;
	long idx;

	*n = 0;
	for (i = 0; i < d->ngone_addrs; i++) {
		struct gone_addr *g = &d->gone_addrs[i];

		idx = inventory_index(d->inv, g->id);
		if (idx < 0 || !holds(&d->inv->c[idx], &g->a))
			v[(*n)++] = g->a;
		free(g->id);
	}
	d->ngone_addrs = 0;
	return v;
}

static void sweep(struct daemon *d)
{
	struct revoke_judge jd = {.cc = d->cc, .p = d->p, .inv = d->inv};
	struct revoke_addr *host, *gone;
	struct revoke_result res;
	char err[256];

	gone = gone_addrs(d, &jd.ngone);
	/* a container placed again (its start after its connect) kept its
	 * addresses: nothing to read */
	if (!d->revoke_wanted && !jd.ngone) {
		free(gone);
		return;
	}
	d->revoke_wanted = false;
	if (d->co.audit || d->p->mode == POL_AUDIT) {
		free(gone);
		return; /* nothing is denied, so nothing ends */
	}
	if (!d->ix)
		d->ix = trace_index_new(d->cc, d->p, d->inv);
	host = revoke_host_addrs(&jd.nhost);
	jd.ix = d->ix;
	jd.rs = wanted(d);
	jd.host = host;
	jd.gone = gone;
	if (revoke_sweep(d->rv, &jd, &res, err, sizeof(err)))
		fail(d, "revocation: %s", err);
	d->sweeps++;
	d->last_sweep_ms = res.ms;
	if (res.ended) {
		d->revoked += res.ended;
		say("revoked %zu flow%s: %s", res.ended,
		    res.ended == 1 ? "" : "s", res.pairs.s);
	}
	sb_free(&res.pairs);
	free(host);
	free(gone);
}

static int setup(struct daemon *d, char *err, size_t errlen)
{
	sigset_t mask;
	int fd;

	d->ep = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->ep < 0 || fd < 0 || watch_add(d, &d->wsignal, W_SIGNAL, fd))
		goto sys;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || watch_add(d, &d->wresync, W_RESYNC, fd))
		goto sys;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || watch_add(d, &d->wretry, W_RETRY, fd))
		goto sys;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || watch_add(d, &d->wbind, W_BIND, fd))
		goto sys;
	if (watch_add(d, &d->wdocker, W_DOCKER, docker_fd(d->dk)))
		goto sys;
	d->fl = flowlog_open(d->p->log_group, err, errlen);
	if (!d->fl)
		return -1;
	d->sink = flowlog_sink_open(d->o->log, d->o->log_max, DAEMON_LOG_KEEP,
				    err, errlen);
	if (!d->sink || watch_add(d, &d->wnflog, W_NFLOG, flowlog_fd(d->fl)))
		return -1;
	fd = control_open(d->o, err, errlen);
	if (fd < 0)
		return -1;
	if (watch_add(d, &d->wcontrol, W_CONTROL, fd))
		goto sys;
	d->ports = ports_new(err, errlen);
	if (!d->ports)
		return -1;
	d->rv = revoke_new(err, errlen);
	if (!d->rv)
		return -1;
	/* the live flows in an index of ours, kept by events: a sweep
	 * then judges memory (without it, each sweep reads the table) */
	if (revoke_track(d->rv, err, errlen) ||
	    watch_add(d, &d->wct, W_CT, revoke_fd(d->rv)))
		say("warning: %s; each revocation will read the conntrack "
		    "table",
		    err);
	d->kw = kernel_watch_open(err, errlen);
	if (!d->kw || watch_add(d, &d->wnft, W_NFT, kernel_watch_fd(d->kw)))
		return -1;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || watch_add(d, &d->wdnstimer, W_DNS_TIMER, fd) ||
	    watch_add(d, &d->wdns, W_DNS, dns_fd(d->dns)))
		goto sys;
	return 0;
sys:
	snprintf(err, errlen, "setting up the event loop: %s", strerror(errno));
	return -1;
}

static void teardown(struct daemon *d)
{
	struct watch *w[] = {&d->wsignal,  &d->wresync,	  &d->wretry,
			     &d->wcontrol, &d->wdnstimer, &d->wbind};
	size_t i;

	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (w[i]->fd > 0)
			close(w[i]->fd);
	if (d->wcontrol.fd > 0)
		unlink(d->o->control);
	if (d->ep >= 0)
		close(d->ep);
	docker_free(d->dk);
	dns_free(d->dns);
	fqdn_free(&d->fq);
	free(d->fql);
	kernel_watch_close(d->kw);
	ports_free(d->ports);
	revoke_free(d->rv);
	for (i = 0; i < d->ngone_addrs; i++)
		free(d->gone_addrs[i].id);
	free(d->gone_addrs);
	for (i = 0; i < d->nunbound; i++)
		free(d->unbound[i]);
	free(d->unbound);
	flowlog_close(d->fl);
	trace_index_free(d->ix);
	sb_free(&d->line);
	sb_free(&d->listed);
	flowlog_sink_close(d->sink);
	inventory_free(d->gone);
	free(d->gone_at);
	kernel_close(d->k);
	ir_free(d->rs);
	inventory_free(d->inv);
	compiler_free(d->cc);
	policy_free(d->p);
	free(d->q);
	free(d->last_diags);
}

/* Every socket and file that needs more is open now: keep CAP_NET_ADMIN
 * alone (kernel batches, the nftables events, the NFLOG group a reload
 * may move), in the bounding set too where we may change it, and never
 * gain a privilege again (no_new_privs); with a user, go on as that user
 * and its groups. A daemon started without CAP_NET_ADMIN has already
 * failed to read its table. */
static int drop_privileges(const char *user, char *err, size_t errlen)
{
	struct passwd *pw = NULL;
	int r;

	if (user && !(pw = getpwnam(user))) {
		snprintf(err, errlen, "--user %s: no such user", user);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	capng_clear(CAPNG_SELECT_BOTH);
	capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED,
		     CAP_NET_ADMIN);
	capng_update(CAPNG_ADD, CAPNG_BOUNDING_SET, CAP_NET_ADMIN);
	if (pw) {
		/* the user's uid, gid and groups (docker's among them),
		 * CAP_NET_ADMIN kept across the change */
		r = capng_change_id((int)pw->pw_uid, (int)pw->pw_gid,
				    CAPNG_INIT_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
		if (r) {
			snprintf(err, errlen,
				 "--user %s: changing to uid %u gid %u failed "
				 "(libcap-ng: %d): %s",
				 user, (unsigned)pw->pw_uid,
				 (unsigned)pw->pw_gid, r, strerror(errno));
			return -1;
		}
		return 0;
	}
	/* the bounding set needs CAP_SETPCAP, which a unit that already
	 * bounds us to CAP_NET_ADMIN has taken away */
	if (capng_apply(CAPNG_SELECT_BOTH) && capng_apply(CAPNG_SELECT_CAPS)) {
		snprintf(err, errlen, "dropping capabilities: %s",
			 strerror(errno));
		return -1;
	}
	return 0;
}

int daemon_run(const struct daemon_opts *o)
{
	struct daemon d = {.o = o, .ep = -1, .backoff_ms = BACKOFF_MIN_MS};
	struct diags dg = {0};
	char err[512];
	int ret = 1;

	d.started = time(NULL);
	d.co.audit = o->audit;
	d.co.conflicts_deny = true;
	d.p = policy_load(o->policy, &dg);
	diags_print(&dg, stderr);
	diags_free(&dg);
	if (!d.p)
		return 2;
	d.cc = compiler_new(d.p, &d.co);
	fqdn_init(&d.fq, o->dns_min_ttl, o->dns_max_ttl);
	fqdn_set_names(&d.fq, d.p);
	d.dns = dns_new(o->dns, err, sizeof(err));
	if (!d.dns) {
		say("error: %s", err);
		ret = 2;
		goto out;
	}
	d.inv = inventory_new();
	d.gone = inventory_new();
	d.k = kernel_open(err, sizeof(err));
	if (!d.k) {
		say("error: %s", err);
		goto out;
	}
	d.dk = docker_new(o->docker, err, sizeof(err));
	if (!d.dk || setup(&d, err, sizeof(err))) {
		say("error: %s", err);
		goto out;
	}
	say("bulkhead: policy %s (%zu services, %zu edges), docker %s, "
	    "control %s, denied flows from NFLOG group %u to %s",
	    d.p->file, d.p->nservices, d.p->nedges, o->docker, o->control,
	    d.p->log_group, o->log);
	if (drop_privileges(o->user, err, sizeof(err))) {
		say("error: %s", err);
		goto out;
	}
	docker_connect(&d);
	dns_tick(&d);
	while (!d.stop) {
		struct epoll_event ev[16];
		int n = epoll_wait(d.ep, ev, 16, -1), i;

		if (n < 0 && errno != EINTR) {
			say("error: epoll: %s", strerror(errno));
			goto out;
		}
		for (i = 0; i < n; i++) {
			struct watch *w = ev[i].data.ptr;

			switch (w->kind) {
			case W_DOCKER:
				docker_dispatch(d.dk);
				break;
			case W_SIGNAL:
				on_signal(&d);
				break;
			case W_RESYNC:
				drain(w->fd);
				resync_soon(&d);
				break;
			case W_RETRY:
				drain(w->fd);
				if (d.dk_state == DK_DOWN)
					docker_connect(&d);
				break;
			case W_BIND:
				drain(w->fd);
				bind_pending(&d);
				break;
			case W_CT:
				revoke_events(d.rv);
				break;
			case W_CONTROL:
				client_accept(&d);
				break;
			case W_CLIENT:
				client_read(&d, (struct client *)w);
				break;
			case W_NFLOG:
				on_nflog(&d);
				break;
			case W_NFT:
				on_nft_event(&d);
				break;
			case W_DNS:
				dns_process(d.dns);
				dns_tick(&d);
				break;
			case W_DNS_TIMER:
				drain(w->fd);
				dns_process(d.dns);
				dns_tick(&d);
				break;
			}
		}
		process_queue(&d);
		if ((d.revoke_wanted || d.ngone_addrs) && d.synced_once)
			sweep(&d);
	}
	notify("STOPPING=1");
	ret = 0;
out:
	teardown(&d);
	return ret;
}
