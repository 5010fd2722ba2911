/* The daemon's loop: Docker's event stream, a signalfd, timerfds
 * (periodic resync, reconnect backoff, DNS, port binding), DNS answers,
 * NFLOG, nftables and conntrack events and the control socket, in one
 * epoll set. It keeps the fd registry, the signals and timers, set-up and
 * teardown, privileges and reload; placement and convergence are sync.c's,
 * the control socket and status control.c's. It never flushes our table:
 * on exit or failure the last good rules stay (fail closed). */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <malloc.h>
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

#include "bulkhead/allowed.h"
#include "bulkhead/control.h"
#include "bulkhead/daemon.h"
#include "bulkhead/denials.h"
#include "bulkhead/dns.h"
#include "bulkhead/docker.h"
#include "bulkhead/flowlog.h"
#include "bulkhead/fqdn.h"
#include "bulkhead/hostaddr.h"
#include "bulkhead/kernel.h"
#include "bulkhead/metrics.h"
#include "bulkhead/policy.h"
#include "bulkhead/ports.h"
#include "bulkhead/revoke.h"
#include "bulkhead/scrape.h"
#include "bulkhead/sync.h"
#include "bulkhead/trace.h"

#define BACKOFF_MIN_MS 250u
#define BACKOFF_MAX_MS 15000u
#define RETRY_KERNEL_S 5u

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
	W_LINK,
	W_ADDR,	   /* the host's addresses as they change */
	W_SCRAPE,  /* the metrics endpoint: its epoll fd, its timer */
	W_LOGSINK, /* the flow log's writer: failing started or ended */
};

/* One fd in the epoll set: the cookie its events carry. */
struct watch {
	enum watch_kind kind;
	int fd;
};

struct client {
	struct watch w; /* first: the epoll cookie */
	struct control_client *c;
};

enum dk_state { DK_DOWN, DK_NEGOTIATING, DK_UP };

struct daemon {
	const struct daemon_opts *o;
	struct sync *sync; /* placement and convergence */
	struct kernel *k;
	struct ports *ports; /* endpoints bound to their bridge ports */
	struct docker *dk;
	int ep;
	struct watch wdocker, wsignal, wresync, wretry, wcontrol, wnflog, wnft;
	struct watch wdns, wdnstimer, wbind, wct, wlink, waddr;
	/* revocation: flows a change took the right of */
	struct revoke *rv;
	unsigned long revoked, sweeps;
	double last_sweep_ms;
	struct dns *dns;
	struct fqdn_cache fq;	 /* fqdn peers' answers */
	struct kernel_watch *kw; /* nftables events: others' changes */
	struct flowlog *fl;
	struct flowlog_sink *sink;
	struct flowlog_account acct;
	struct strbuf line;
	/* allowed flows on record, from conntrack's events */
	struct allowed *allowed;
	struct strbuf ctline;
	struct hostaddrs *host; /* the host's addresses, kept by events */
	/* --metrics: the counters, the endpoint, and the kernel's counts
	 * as last read (at most once a second, whoever scrapes) */
	struct metrics *metrics;
	struct scrape *scrape;
	struct watch wscrape, wscrapetimer, wlogsink;
	double kread_ms;
	unsigned long kelements;
	long long kdenied;

	enum dk_state dk_state;
	bool synced_once, snapshot_running, busy;
	bool log_failing;	     /* as last said */
	unsigned long log_lost_base; /* lost when the failing began */
	bool down_logged, stop;
	unsigned backoff_ms;
	char down_why[256];

	unsigned long errors;
	char last_error[512];
};

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

static void failed(struct daemon *d, const char *msg)
{
	d->errors++;
	/* the same failure again (a retry that fails alike) is counted,
	 * not logged again */
	if (strcmp(msg, d->last_error))
		say("error: %s", msg);
	snprintf(d->last_error, sizeof(d->last_error), "%s", msg);
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
	failed(d, msg);
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

/* --- sync's callbacks: the kernel, the log, the bind timer -------------- */

static int sy_apply(void *ctx, const struct ir_ruleset *rs,
		    const struct ir_delta *delta, char *err, size_t errlen)
{
	struct daemon *d = ctx;

	return kernel_apply_delta(d->k, rs, delta, 0, err, errlen);
}

/* A table replaced whole has a deny counter that counts from zero. */
static int sy_converge(void *ctx, const struct ir_ruleset *rs,
		       struct kernel_sync *res, char *err, size_t errlen)
{
	struct daemon *d = ctx;
	int r = kernel_sync(d->k, rs, false, res, err, errlen);

	if (!r && res->replaced)
		flowlog_account_restart(&d->acct);
	return r;
}

static int sy_refill(void *ctx, const struct ir_ruleset *rs, const size_t *sets,
		     size_t nsets, const struct ir_delta *adds, char *err,
		     size_t errlen)
{
	struct daemon *d = ctx;

	return kernel_refill(d->k, rs, sets, nsets, adds, err, errlen);
}

static void sy_say(void *ctx, const char *line)
{
	(void)ctx;
	say("%s", line);
}

static void sy_fail(void *ctx, const char *msg)
{
	failed(ctx, msg);
}

static void sy_bind_in(void *ctx, unsigned ms)
{
	struct daemon *d = ctx;

	arm(d->wbind.fd, ms);
}

/* --- Docker: connection, snapshot, events ------------------------------ */

static void docker_connect(struct daemon *d);

static void docker_lost(struct daemon *d, const char *why)
{
	docker_cancel_all(d->dk);
	d->dk_state = DK_DOWN;
	d->snapshot_running = d->busy = false;
	sync_drop_queue(d->sync); /* a resync follows the reconnect */
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

static void count_suppressed(struct daemon *d, const struct ir_ruleset *have);
static void on_nft_event(struct daemon *d);
static void on_links(struct daemon *d);

/* What a snapshot of Docker or a read of the whole table parsed (tens of
 * megabytes at 10,000 containers) is freed into the middle of the heap,
 * which malloc keeps: handed back to the system, the daemon's RSS is
 * what it holds, not what it once read. A few milliseconds, after work
 * that took a hundred. */
static void release_heap(void)
{
	malloc_trim(0);
}

static void on_snapshot(void *ctx, struct inventory *inv, const char *err)
{
	struct daemon *d = ctx;
	struct kernel_sync res;

	d->snapshot_running = false;
	if (!inv) {
		docker_lost(d, err);
		return;
	}
	/* another process's change made before this sync is put back and
	 * counted as a restore first: the converge would mend it silently */
	on_nft_event(d);
	if (sync_converge(d->sync, inv, &res)) {
		/* the kernel refused: keep what we had, try again soon */
		arm(d->wresync.fd, RETRY_KERNEL_S * 1000);
		return;
	}
	if (!d->acct.has_base)
		count_suppressed(d, NULL); /* the count starts here */
	release_heap(); /* the snapshot's answers, parsed and dropped */
	arm(d->wresync.fd, d->o->resync_s * 1000);
	if (d->down_logged || !d->synced_once)
		say("docker: in sync (API %s): %zu containers",
		    docker_api_version(d->dk), sync_inventory(d->sync)->n);
	if (!d->synced_once)
		notify("READY=1\nSTATUS=enforcing");
	else if (d->down_logged)
		notify("STATUS=enforcing");
	d->synced_once = true;
	d->down_logged = false;
	d->backoff_ms = BACKOFF_MIN_MS;
}

/* At start the first sync waits for every name's first answer (or
 * failure), so that a restart does not take the addresses in force
 * out of the kernel for the moments DNS takes. */
static bool dns_first(const struct daemon *d)
{
	return !d->synced_once && fqdn_first_round(&d->fq);
}

static void start_resync(struct daemon *d)
{
	sync_want_resync(d->sync, false);
	if (dns_first(d)) {
		sync_want_resync(d->sync, true);
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

	if (sync_event(d->sync, line, len))
		d->errors++; /* it does not parse */
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
			   const char *err)
{
	struct daemon *d = ctx;

	d->busy = false;
	/* the links Docker made before it answered are known first: the
	 * placement binds the container from the table they keep */
	on_links(d);
	sync_answer(d->sync, status, body, len, err);
	process_queue(d);
}

/* One event at a time, in order: what sync asks Docker for. */
static void process_queue(struct daemon *d)
{
	while (!d->busy && !d->snapshot_running && d->dk_state == DK_UP &&
	       !dns_first(d)) {
		const char *path = sync_next(d->sync);

		if (!path) {
			if (sync_wants_resync(d->sync))
				start_resync(d);
			return;
		}
		if (docker_get(d->dk, path, on_event_reply, d)) {
			docker_lost(d, "cannot start a request");
			return;
		}
		d->busy = true;
	}
}

/* --- others' changes to our table ------------------------------------- */

/* Someone else changed our table (nft delete table, flush ruleset, a rule
 * or element removed by hand): put back what the daemon holds, at once,
 * by the same read-back and converge as at start. */
static void on_nft_event(struct daemon *d)
{
	struct kernel_sync res;
	char what[160];

	if (!kernel_watch_read(d->kw, d->k, sync_ruleset(d->sync), what,
			       sizeof(what)))
		return;
	sync_restore(d->sync, what, &res);
}

/* --- fqdn peers --------------------------------------------------------- */

/* The compiler's view of the answers follows the cache (whose names the
 * list borrows): after every answer, failure and policy change. Returns
 * whether the list changed. */
static bool fqdn_relist(struct daemon *d)
{
	struct compile_fqdn *l;
	size_t n = fqdn_compile_list(&d->fq, &l);

	return sync_fqdn(d->sync, l, n);
}

/* Name's sets get its addresses anew, with fresh timeouts, in one
 * transaction. */
static void fqdn_program(struct daemon *d, const char *name)
{
	bool changed = fqdn_relist(d);

	sync_refill(d->sync, name, changed);
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
	uint64_t now = (uint64_t)mono_ms();
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
	uint64_t now = (uint64_t)mono_ms(), next, ms;
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

/* --- denied flows ------------------------------------------------------ */

static uint64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static void on_flow(void *ctx, const struct flow_pkt *pkt)
{
	struct daemon *d = ctx;
	struct trace_decision dec;
	char ts[40];

	/* our clock, at most the NFLOG batch timeout (0.1 s) late: not
	 * every packet carries a timestamp, nor one on the wall clock */
	flowlog_time(wall_us(), ts, sizeof(ts));
	d->line.len = 0;
	d->acct.records++;
	flowlog_attribute(pkt, sync_compiler(d->sync), sync_policy(d->sync),
			  sync_index(d->sync), sync_gone_index(d->sync), ts,
			  &d->line, &dec);
	flowlog_count(d->metrics, pkt, &dec, sync_policy(d->sync),
		      sync_gone_index(d->sync));
	/* a line the log cannot take is counted there (log_lost) */
	flowlog_sink_write_line(d->sink, d->line.s, d->line.len);
}

/* Whether conntrack's openings are judged: for the flow log, for the
 * metrics, or both. */
static bool judges_openings(const struct daemon *d)
{
	return d->metrics || policy_logs_allowed(sync_policy(d->sync));
}

/* Allowed flows' close records and byte metrics count bytes only with
 * conntrack's accounting on: turned on when something reads them. */
static void want_acct(struct daemon *d)
{
	int r;

	if (!judges_openings(d))
		return;
	r = sysctl_turn_on("/proc/sys/net/netfilter/nf_conntrack_acct");
	if (!r)
		say("net.netfilter.nf_conntrack_acct was off: turned it on, "
		    "so that allowed flows' close records count their bytes");
	else if (r < 0)
		say("warning: net.netfilter.nf_conntrack_acct is off and "
		    "could not be turned on (%s): allowed flows' close "
		    "records will carry no byte counts",
		    strerror(-r));
}

/* The host's addresses changed (or the changes were lost: read anew). */
static void on_addrs(struct daemon *d)
{
	int r = hostaddrs_read(d->host);

	if (r < 0)
		say("error: reading address events: %s", strerror(-r));
}

/* The host's own addresses, as the events read so far say (fresh: the
 * events waiting read first, as a sweep wants them). */
static const struct revoke_addr *host_addrs(struct daemon *d, bool fresh,
					    size_t *n)
{
	if (fresh)
		on_addrs(d);
	return hostaddrs_get(d->host, n);
}

/* A flow opened or ended, as conntrack says: an allowed flow's record
 * when its edge logs. */
static uint32_t on_ct_event(void *ctx, const struct revoke_event *ev)
{
	struct daemon *d = ctx;
	const struct policy *p = sync_policy(d->sync);
	uint32_t tag = 0;
	char ts[40];

	if (ev->open && !judges_openings(d))
		return 0;
	flowlog_time(wall_us(), ts, sizeof(ts));
	d->ctline.len = 0;
	if (ev->open) {
		struct allowed_judge j = {.cc = sync_compiler(d->sync),
					  .p = p,
					  .ix = sync_index(d->sync),
					  .gone = sync_gone_index(d->sync),
					  .m = d->metrics};

		j.host = host_addrs(d, false, &j.nhost);
		tag = allowed_open(d->allowed, &j, ev->f, ts,
				   (uint64_t)mono_ms(), &d->ctline);
	} else {
		allowed_close(d->allowed, d->metrics, ev, ts,
			      (uint64_t)mono_ms(), &d->ctline);
	}
	if (d->ctline.len)
		flowlog_sink_write_line(d->sink, d->ctline.s, d->ctline.len);
	return tag;
}

static void flow_summary(struct daemon *d);

/* The writer woken for what the loop queued; a run of failed writes
 * said once as it starts and once as it ends (the summary record then
 * carries the count). The loop never waits for the file. */
static void log_flush(struct daemon *d)
{
	struct flowlog_sink_stats st;

	if (!d->sink)
		return;
	flowlog_sink_flush(d->sink);
	flowlog_sink_stats(d->sink, &st);
	if (st.failing && !d->log_failing) {
		d->log_failing = true;
		d->log_lost_base = st.lost;
		d->last_error[0] = '\0'; /* said each time it starts */
		fail(d,
		     "flow log %s: cannot write (%s): records are counted "
		     "as lost until it can (status: log_lost)",
		     d->o->log, strerror(st.err));
	} else if (!st.failing && d->log_failing) {
		d->log_failing = false;
		say("flow log %s: writing again; %lu records lost meanwhile",
		    d->o->log, st.lost - d->log_lost_base);
		d->acct.last_summary = 0; /* the count on record now */
		flow_summary(d);
		flowlog_sink_flush(d->sink);
	}
}

static void on_ct(struct daemon *d)
{
	revoke_events(d->rv);
	log_flush(d);
}

/* At each resync: the flows from the table's first read that ended
 * untold leave the index (and the flows tracked in status). */
static void prune_flows(struct daemon *d)
{
	char err[256] = "";

	revoke_prune(d->rv, err, sizeof(err));
	if (*err)
		fail(d, "revocation: %s", err);
	log_flush(d);
}

/* have: our table as just read back, or NULL to read it here. */
static void count_suppressed(struct daemon *d, const struct ir_ruleset *have)
{
	struct ir_ruleset *own = NULL;
	char err[256];

	if (!have &&
	    !kernel_read(d->k, COMPILE_TABLE, &own, NULL, err, sizeof(err)))
		have = own;
	flowlog_account_count(&d->acct, have);
	if (own) {
		ir_free(own);
		release_heap();
	}
}

/* What the records cannot say themselves (the kernel dropped messages,
 * some did not parse) goes in a summary record, at most once a minute
 * and only when it changed: counted, never silently lost. */
static void flow_summary(struct daemon *d)
{
	const struct flowlog_stats *st = flowlog_stats(d->fl);
	unsigned long overruns = st->overruns - d->acct.summarized.overruns;
	struct flowlog_sink_stats ss;
	time_t now = time(NULL);
	char ts[40];
	json_t *rec;

	if (!flowlog_account_due(&d->acct, now))
		return;
	count_suppressed(d, NULL);
	flowlog_time(wall_us(), ts, sizeof(ts));
	flowlog_sink_stats(d->sink, &ss);
	rec = flowlog_account_summary(&d->acct, st, ss.lost, now, ts);
	if (!rec)
		return;
	flowlog_sink_write(d->sink, rec);
	json_decref(rec);
	if (overruns)
		say("warning: denied-flow log: the kernel dropped %lu NFLOG "
		    "batches (overrun); counted in the log's summary",
		    overruns);
}

static void on_nflog(struct daemon *d)
{
	flowlog_read(d->fl, on_flow, d);
	flow_summary(d);
	log_flush(d);
}

/* --- policy ------------------------------------------------------------ */

static void control_mode(struct daemon *d);

/* Loads the policy file anew; a broken one leaves the running policy in
 * force. Diagnostics go to errs (as lines) too. Returns 0, or 2 for a
 * bad file, 1 when the kernel refused the new ruleset. */
static int reload(struct daemon *d, json_t *errs)
{
	struct diags dg = {0};
	struct policy *p = policy_load(d->o->policy, &dg);
	struct flowlog *fl = NULL;
	struct kernel_sync res;
	char err[512];
	size_t i;

	for (i = 0; i < dg.n; i++) {
		const struct diag *g = &dg.v[i];
		const char *lv = g->level == DIAG_ERROR ? "error" : "warning";
		/* as diags_print says it: no 0:0 for a whole file */
		char *line = g->line
				 ? xasprintf("%s:%u:%u: %s: %s", g->file,
					     g->line, g->col, lv, g->msg)
				 : xasprintf("%s: %s: %s", g->file, lv, g->msg);

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
	if (p->log_group != sync_policy(d->sync)->log_group &&
	    !(fl = flowlog_open(p->log_group, err, sizeof(err)))) {
		fail(d, "reload: %s; the running policy stays in force", err);
		json_array_append_new(errs, json_string(d->last_error));
		policy_free(p);
		return 1;
	}
	if (sync_reload(d->sync, p, &res)) {
		json_array_append_new(errs, json_string(d->last_error));
		flowlog_close(fl);
		policy_free(p);
		return 1;
	}
	if (fl) {
		flowlog_close(d->fl); /* its fd leaves the epoll set */
		d->fl = fl;
		memset(&d->acct.summarized, 0, sizeof(d->acct.summarized));
		if (watch_add(d, &d->wnflog, W_NFLOG, flowlog_fd(fl)))
			fail(d, "reload: NFLOG group %u: %s", p->log_group,
			     strerror(errno));
	}
	/* names the new policy brings are asked about now; answers of
	 * names it dropped go with the next compile */
	fqdn_set_names(&d->fq, p);
	fqdn_relist(d);
	dns_tick(d);
	want_acct(d);
	control_mode(d);
	say("reloaded %s: %zu services, %zu edges", p->file, p->nservices,
	    p->nedges);
	return 0;
}

/* --- the status -------------------------------------------------------- */

static void iso_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Whole seconds from one monotonic ms time to a later one; 0 when it is
 * not later. */
static long secs(uint64_t from, uint64_t to)
{
	return to > from ? (long)((to - from) / 1000) : 0;
}

/* Each fqdn peer: its addresses, how fresh, and DNS failures. */
static void status_fqdn(const struct daemon *d, struct control_status *st)
{
	static const char *const state[] = {"pending", "ok", "stale",
					    "failing"};
	uint64_t now = (uint64_t)mono_ms();
	size_t i, j;

	st->fqdn = xcalloc(d->fq.n + 1, sizeof(*st->fqdn));
	st->nfqdn = d->fq.n;
	for (i = 0; i < d->fq.n; i++) {
		const struct fqdn_name *f = &d->fq.v[i];
		struct control_fqdn *o = &st->fqdn[i];
		char buf[64];

		o->name = xstrdup(f->name);
		o->state = xstrdup(state[f->state]);
		o->addrs = xcalloc(f->n + 1, sizeof(*o->addrs));
		o->naddrs = f->n;
		for (j = 0; j < f->n; j++) {
			addr_format(f->a[j].family, f->a[j].addr, buf,
				    sizeof(buf));
			o->addrs[j] = xstrdup(buf);
		}
		o->ttl_s = f->answered ? (long)f->ttl_s : -1;
		o->kept_s = f->answered ? (long)f->eff_s : -1;
		o->answered_s_ago =
		    f->answered ? secs(f->answered_at, now) : -1;
		o->next_ask_in_s = f->asking ? -1 : secs(now, f->next_at);
		o->expires_in_s = f->n ? secs(now, f->expires_at) : -1;
		if (f->failures) {
			o->error = xstrdup(f->error);
			o->failures = (long)f->failures;
			o->failing_for_s = secs(f->failing_since, now);
		}
		o->asked = (long)f->asked;
		o->answered = (long)f->answered;
		o->changed = (long)f->changed;
		o->failed = (long)f->failed;
	}
}

/* The containers as the policy places them, with their addresses. */
static void status_containers(const struct daemon *d, struct control_status *st)
{
	const struct policy *p = sync_policy(d->sync);
	const struct inventory *inv = sync_inventory(d->sync);
	size_t i, j;

	st->services = xcalloc(p->nservices + 1, sizeof(*st->services));
	for (i = 0; i < p->nservices; i++)
		st->services[st->nservices++] = xstrdup(p->services[i].name);
	st->containers = xcalloc(inv->n + 1, sizeof(*st->containers));
	for (i = 0; i < inv->n; i++) {
		const struct inv_container *c = &inv->c[i];
		struct control_container *o =
		    &st->containers[st->ncontainers++];
		long a, b,
		    s = compile_assign(sync_compiler(d->sync), c, &a, &b);
		char buf[64];

		o->name = xstrdup(c->name);
		o->id = xasprintf("%.12s", c->id);
		if (s >= 0)
			o->service = xstrdup(p->services[s].name);
		else
			o->why = xstrdup(s == COMPILE_CONFLICT
					     ? "matches two services"
					     : "matches no service");
		o->addrs = xcalloc(c->nnets + 1, sizeof(*o->addrs));
		for (j = 0; j < c->nnets; j++) {
			struct control_addr *ad = &o->addrs[o->naddrs++];

			ad->network = xstrdup(c->nets[j].name);
			if (c->nets[j].has4) {
				addr_format(AF_INET, c->nets[j].ip4, buf,
					    sizeof(buf));
				ad->ipv4 = xstrdup(buf);
			}
			if (c->nets[j].has6) {
				addr_format(AF_INET6, c->nets[j].ip6, buf,
					    sizeof(buf));
				ad->ipv6 = xstrdup(buf);
			}
		}
	}
}

/* Our table as the kernel holds it: its sets and their elements. */
/* Our table as the kernel holds it, or NULL with why in err; the log's
 * count of what the rate limit held back follows from the same read. */
static struct ir_ruleset *read_table(struct daemon *d, char *err, size_t errlen)
{
	struct ir_ruleset *have = NULL;

	if (kernel_read(d->k, COMPILE_TABLE, &have, NULL, err, errlen))
		return NULL;
	if (!have) {
		snprintf(err, errlen, "table inet bulkhead is missing");
		return NULL;
	}
	if (d->fl)
		count_suppressed(d, have);
	return have;
}

static void status_kernel(struct daemon *d, struct control_status *st)
{
	char err[256];
	struct ir_ruleset *have = read_table(d, err, sizeof(err));
	size_t i;

	if (!have) {
		st->kernel_error = xstrdup(err);
		return;
	}
	st->sets = xcalloc(have->nsets + 1, sizeof(*st->sets));
	st->kernel_sets = (long)have->nsets;
	st->kernel_elements = 0;
	for (i = 0; i < have->nsets; i++) {
		st->kernel_elements += (long)have->sets[i].n;
		if (have->sets[i].n) {
			st->sets[st->nsets].name = xstrdup(have->sets[i].name);
			st->sets[st->nsets++].n = (long)have->sets[i].n;
		}
	}
	ir_free(have);
}

static void status_fill(struct daemon *d, struct control_status *st)
{
	const struct sync_stats *ss = sync_stats(d->sync);
	struct diags dg = {0};
	char ts[32];
	size_t i;

	memset(st, 0, sizeof(*st));
	st->policy = xstrdup(sync_policy(d->sync)->file);
	st->audit = sync_audit(d->sync);
	st->docker_up = d->dk_state == DK_UP;
	if (!st->docker_up && d->down_logged)
		st->docker_error = xstrdup(d->down_why);
	st->api = xstrdup(docker_api_version(d->dk));
	st->last_sync_age_s = -1;
	if (ss->last_sync) {
		iso_time(ss->last_sync, ts, sizeof(ts));
		st->last_sync = xstrdup(ts);
		st->last_sync_age_s = (long)(time(NULL) - ss->last_sync);
	}
	st->events = (long)ss->events;
	st->deltas = (long)ss->deltas;
	st->resyncs = (long)ss->resyncs;
	st->errors = (long)d->errors;
	st->revoked_flows = (long)d->revoked;
	st->revocation_sweeps = (long)d->sweeps;
	st->last_sweep_ms = d->last_sweep_ms;
	st->flows_tracked = (long)revoke_tracked(d->rv);
	st->allowed_opened = (long)allowed_stats(d->allowed)->opened;
	st->allowed_closed = (long)allowed_stats(d->allowed)->closed;
	st->allowed_open = (long)allowed_stats(d->allowed)->open;
	st->allowed_suppressed = (long)allowed_stats(d->allowed)->suppressed;
	st->ct_overruns = (long)revoke_overruns(d->rv);
	/* what the running containers make of the policy now: unmatched
	 * ones, two services, ports published that the policy does not
	 * open */
	compile_check(sync_compiler(d->sync), sync_inventory(d->sync), "docker",
		      &dg);
	st->warnings = xcalloc(dg.n + 1, sizeof(*st->warnings));
	for (i = 0; i < dg.n; i++)
		st->warnings[st->nwarnings++] = xasprintf(
		    "%s: %s", dg.v[i].level == DIAG_ERROR ? "error" : "warning",
		    dg.v[i].msg);
	diags_free(&dg);
	status_fqdn(d, st);
	st->fqdn_refills = d->fq.n ? (long)ss->refills : -1;
	control_status_self(st);
	st->restores = (long)ss->restores;
	if (ss->restores) {
		iso_time(ss->last_restore, ts, sizeof(ts));
		st->last_restore_at = xstrdup(ts);
		st->last_restore_why = xstrdup(ss->last_restore_why);
	}
	if (d->last_error[0])
		st->last_error = xstrdup(d->last_error);
	status_containers(d, st);
	status_kernel(d, st);
	control_lat_fill(&st->start, ss->start.v, ss->start.own, ss->start.n);
	st->placed_before_start = (long)ss->before_start;
	control_lat_fill(&st->connect, ss->connect.v, ss->connect.own,
			 ss->connect.n);
	control_lat_fill(&st->bound, ss->bound.v, ss->bound.own, ss->bound.n);
	if (d->sink) {
		struct flowlog_sink_stats ls;

		flowlog_sink_stats(d->sink, &ls);
		st->log_lines = (long)ls.lines;
		st->log_written = (long)ls.written;
		st->log_lost = (long)ls.lost;
		if (ls.failing)
			st->log_failing = xstrdup(strerror(ls.err));
	}
	if (d->fl) {
		const struct flowlog_stats *fs = flowlog_stats(d->fl);

		st->has_log = true;
		st->log = xstrdup(d->o->log);
		st->records = (long)d->acct.records;
		st->suppressed = (long)d->acct.suppressed;
		st->overruns = (long)fs->overruns;
		st->malformed = (long)fs->malformed;
		st->foreign = (long)fs->foreign;
	}
}

/* --- metrics ----------------------------------------------------------- */

/* What the kernel holds (its elements, the deny chain's counter), read
 * at most once a second however often someone scrapes. */
static void metrics_kernel(struct daemon *d)
{
	struct ir_ruleset *have;
	char err[256];
	size_t i;

	if (d->kread_ms && mono_ms() - d->kread_ms < 1000)
		return;
	d->kread_ms = mono_ms();
	d->kdenied = -1;
	if (!(have = read_table(d, err, sizeof(err))))
		return;
	d->kelements = 0;
	for (i = 0; i < have->nsets; i++)
		d->kelements += have->sets[i].n;
	d->kdenied = (long long)flowlog_denied_packets(have);
	ir_free(have);
	release_heap();
}

static void render_metrics(void *ctx, struct strbuf *out)
{
	struct daemon *d = ctx;
	const struct sync_stats *ss = sync_stats(d->sync);
	const struct policy *p = sync_policy(d->sync);
	const struct inventory *inv = sync_inventory(d->sync);
	struct metrics_state st = {.version = d->o->version};
	size_t i;

	metrics_kernel(d);
	st.docker_connected = d->dk_state == DK_UP;
	st.containers = xcalloc(p->nservices + 1, sizeof(*st.containers));
	for (i = 0; i < p->nservices; i++)
		st.containers[i].label = p->services[i].name;
	st.containers[p->nservices].label = METRICS_UNMATCHED;
	st.ncontainers = p->nservices + 1;
	for (i = 0; i < inv->n; i++) {
		long a, b,
		    svc = compile_assign(sync_compiler(d->sync), &inv->c[i], &a,
					 &b);

		st.containers[svc >= 0 ? (size_t)svc : p->nservices].n++;
	}
	st.elements = d->kelements;
	st.commits_delta = ss->deltas;
	st.commits_full = ss->resyncs;
	st.commits_refill = ss->refills;
	st.restores = ss->restores;
	st.denied_packets = d->kdenied;
	if (d->sink) {
		struct flowlog_sink_stats ls;

		flowlog_sink_stats(d->sink, &ls);
		st.records = ls.written;
		st.log_lost = ls.lost;
	}
	st.suppressed_denied = d->acct.suppressed;
	st.suppressed_allowed = allowed_stats(d->allowed)->suppressed;
	st.log_overruns = d->fl ? flowlog_stats(d->fl)->overruns : 0;
	st.ct_overruns = revoke_overruns(d->rv);
	st.revoked = d->revoked;
	st.flows_open = allowed_stats(d->allowed)->open;
	st.errors = d->errors;
	st.le = sync_lat_le;
	st.buckets = ss->connect.le;
	st.nbuckets = SYNC_LAT_NLE;
	st.placements = ss->connect.count;
	st.placement_sum_s = ss->connect.sum_s;
	st.fqdn = xcalloc(d->fq.n + 1, sizeof(*st.fqdn));
	for (i = 0; i < d->fq.n; i++) {
		st.fqdn[i].label = d->fq.v[i].name;
		st.fqdn[i].n = d->fq.v[i].n > 0;
	}
	st.nfqdn = d->fq.n;
	metrics_render(d->metrics, &st, out);
	free(st.containers);
	free(st.fqdn);
}

/* --- requests ---------------------------------------------------------- */

/* visible: the services a scope's owners may name (NULL: all) */
static json_t *trace_json(struct daemon *d, json_t *req, const bool *visible)
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
	rs = compile_ruleset(sync_compiler(d->sync), sync_inventory(d->sync),
			     "docker", &dg);
	if (rs)
		r = trace_run_view(sync_compiler(d->sync), sync_policy(d->sync),
				   rs, sync_inventory(d->sync), src, dst, port,
				   visible, &out, &dg);
	for (i = 0; i < dg.n; i++)
		if (dg.v[i].level == DIAG_ERROR)
			json_array_append_new(errs, json_string(dg.v[i].msg));
	json_object_set_new(rep, "ok", json_boolean(r >= 0));
	json_object_set_new(rep, "output", json_string(out.s ? out.s : ""));
	json_object_set_new(rep, "errors", errs);
	json_object_set_new(rep, "policy",
			    json_string(sync_policy(d->sync)->file));
	ir_free(rs);
	sb_free(&out);
	diags_free(&dg);
	return rep;
}

static json_t *refusal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static json_t *refusal(const char *fmt, ...)
{
	json_t *rep = json_object();
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_set_new(rep, "ok", json_false());
	json_object_set_new(rep, "error", json_string(msg));
	return rep;
}

/* The scopes whose owners pe is in, names borrowed from p. */
static size_t owned_scopes(const struct policy *p,
			   const struct control_peer *pe, char **out,
			   size_t cap)
{
	size_t i, k, n = 0;

	for (i = 0; i < p->nscopes && n < cap; i++)
		for (k = 0; k < p->scopes[i].nowners; k++)
			if (control_peer_in(pe, p->scopes[i].gids[k])) {
				out[n++] = p->scopes[i].name;
				break;
			}
	return n;
}

/* Every scope owner's group: who may connect besides the full. */
static unsigned *owner_gids(const struct policy *p, size_t *n)
{
	unsigned *v = NULL;
	size_t i, k, cap = 0;

	*n = 0;
	for (i = 0; i < p->nscopes; i++)
		for (k = 0; k < p->scopes[i].nowners; k++)
			*PUSH(v, *n, cap) = p->scopes[i].gids[k];
	return v;
}

/* The socket is open to every user when scopes have owners (then
 * SO_PEERCRED and the groups decide), else to root and the group. */
static void control_mode(struct daemon *d)
{
	size_t n;
	unsigned *g = owner_gids(sync_policy(d->sync), &n);

	if (chmod(d->o->control, n ? 0666 : d->o->control_group ? 0660 : 0600))
		say("warning: control socket %s: %s", d->o->control,
		    strerror(errno));
	free(g);
}

#define FLOWS_REPLY_MAX (1u << 20)

/* The flow log's records from byte from on (the live file), as a
 * scope's owners may see them when scopes is not NULL: for `flows` and
 * `denials` run by someone who cannot read the file. */
static json_t *flows_json(struct daemon *d, json_t *req, char *const *scopes,
			  size_t nscopes)
{
	json_int_t from = json_integer_value(json_object_get(req, "from"));
	json_t *rep = json_object(), *lines = json_array(), *rec;
	FILE *f = fopen(d->o->log, "r");
	size_t cap = 0, total = 0;
	char *line = NULL, *s;
	struct stat st;
	ssize_t n;
	off_t at;

	if (!f) {
		json_decref(lines);
		json_decref(rep);
		return refusal("%s: %s", d->o->log, strerror(errno));
	}
	/* a file rotated since: start the new one over */
	if (from < 0 || fstat(fileno(f), &st) || from > st.st_size)
		from = 0;
	fseeko(f, (off_t)from, SEEK_SET);
	at = (off_t)from;
	while (total < FLOWS_REPLY_MAX && (n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n')
			break; /* being written: next time */
		at += n;
		rec = json_loadb(line, (size_t)n - 1, 0, NULL);
		if (scopes &&
		    (!json_is_object(rec) || !json_object_get(rec, "verdict") ||
		     !denials_scope(rec, scopes, nscopes))) {
			json_decref(rec);
			continue;
		}
		if (!scopes || !rec) {
			json_array_append_new(lines, json_stringn(line, n - 1));
			total += (size_t)n;
		} else if ((s = json_dumps(rec, JSON_COMPACT))) {
			total += strlen(s);
			json_array_append_new(lines, json_string(s));
			free(s);
		}
		json_decref(rec);
	}
	free(line);
	fclose(f);
	json_object_set_new(rep, "ok", json_true());
	json_object_set_new(rep, "log", json_string(d->o->log));
	json_object_set_new(rep, "lines", lines);
	json_object_set_new(rep, "next", json_integer((json_int_t)at));
	json_object_set_new(rep, "more",
			    json_boolean(total >= FLOWS_REPLY_MAX));
	return rep;
}

static json_t *answer(void *ctx, const struct control_peer *pe, json_t *req)
{
	struct daemon *d = ctx;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	const struct policy *pol = sync_policy(d->sync);
	char *scopes[64];
	size_t ns = 0, i;
	bool *visible = NULL;
	json_t *rep;

	if (!pe->full) {
		/* a scope's owners: their scope's part of each answer */
		ns = owned_scopes(pol, pe, scopes, 64);
		if (!ns)
			return refusal("not allowed: uid %u is in no scope's "
				       "owners (the policy changed)",
				       pe->uid);
		if (!cmd || (strcmp(cmd, "status") && strcmp(cmd, "trace") &&
			     strcmp(cmd, "flows") && strcmp(cmd, "reload")))
			return refusal("not allowed: a scope's owners may ask "
				       "status, trace, flows and reload");
		/* said once a question: not for each poll of a --follow */
		if (strcmp(cmd, "flows") ||
		    !json_integer_value(json_object_get(req, "from")))
			say("control: uid %u asks %s for scope %s%s", pe->uid,
			    cmd, scopes[0], ns > 1 ? " and more" : "");
		visible = xcalloc(pol->nservices + 1, sizeof(*visible));
		for (i = 0; i < pol->nservices; i++)
			visible[i] =
			    policy_in_scopes(pol->services[i].name, scopes, ns);
	}
	if (cmd && !strcmp(cmd, "status")) {
		struct control_status st;

		status_fill(d, &st);
		if (visible)
			control_status_limit(&st, scopes, ns);
		rep = control_status_json(&st);
		control_status_free(&st);
		release_heap(); /* the table read back, the check compiled */
	} else if (cmd && !strcmp(cmd, "trace")) {
		rep = trace_json(d, req, visible);
	} else if (cmd && !strcmp(cmd, "flows")) {
		rep = flows_json(d, req, visible ? scopes : NULL, ns);
	} else if (cmd && !strcmp(cmd, "reload")) {
		json_t *errs = json_array();
		int r = reload(d, errs);
		const struct policy *p = sync_policy(d->sync);

		rep = json_object();
		json_object_set_new(rep, "ok", json_boolean(!r));
		json_object_set_new(rep, "exit", json_integer(r));
		json_object_set_new(rep, "errors", errs);
		json_object_set_new(rep, "services",
				    json_integer((json_int_t)p->nservices));
		json_object_set_new(rep, "edges",
				    json_integer((json_int_t)p->nedges));
	} else {
		rep = json_object();
		json_object_set_new(rep, "ok", json_false());
		json_object_set_new(rep, "error",
				    json_string("unknown request"));
	}
	free(visible);
	return rep;
}

static void client_accept(struct daemon *d)
{
	char refused[200];
	size_t ng;
	unsigned *gids = owner_gids(sync_policy(d->sync), &ng);
	struct control_client *cc =
	    control_accept(d->wcontrol.fd, d->o->control_group, gids, ng,
			   refused, sizeof(refused));
	struct client *c;

	free(gids);
	if (!cc) {
		if (refused[0])
			say("control: refused %s", refused);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->c = cc;
	if (watch_add(d, &c->w, W_CLIENT, control_client_fd(cc))) {
		control_client_free(cc);
		free(c);
	}
}

static void client_read(struct daemon *d, struct client *c)
{
	if (!control_client_read(c->c, answer, d))
		return;
	epoll_ctl(d->ep, EPOLL_CTL_DEL, c->w.fd, NULL);
	control_client_free(c->c);
	free(c);
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
			if (d->sink)
				flowlog_sink_reopen(d->sink);
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
static void sweep(struct daemon *d)
{
	struct revoke_judge jd = {0};
	struct revoke_addr *gone;
	struct revoke_result res;
	char err[256];
	bool all;

	if (!sync_revocation(d->sync, &gone, &jd.ngone, &all))
		return;
	jd.only_gone = !all;
	if (sync_audit(d->sync)) {
		free(gone);
		return; /* nothing is denied, so nothing ends */
	}
	if (revoke_idle(d->rv)) {
		/* no flow to judge: no index built for none */
		d->sweeps++;
		d->last_sweep_ms = 0;
		free(gone);
		log_flush(d); /* what its events wrote */
		return;
	}
	jd.host = host_addrs(d, true, &jd.nhost);
	jd.cc = sync_compiler(d->sync);
	jd.p = sync_policy(d->sync);
	jd.inv = sync_inventory(d->sync);
	jd.ix = sync_index(d->sync);
	jd.rs = sync_judged(d->sync);
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
	free(gone);
	log_flush(d); /* the close records of what ended */
}

/* Links changed: ports of our bridges that nobody is bound to, listed
 * or gone. Changes lost (the socket overran): a full sync reads them. */
static void on_link(void *ctx, const char *ifname, const char *master)
{
	struct daemon *d = ctx;

	sync_link(d->sync, ifname, master);
}

static void on_links(struct daemon *d)
{
	int r = ports_watch_read(d->ports, on_link, d);

	if (r == -ENOBUFS) {
		say("warning: link events lost (the socket overran); "
		    "resyncing");
		sync_want_resync(d->sync, true);
	} else if (r < 0) {
		say("error: reading link events: %s", strerror(-r));
	}
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
	d->fl = flowlog_open(sync_policy(d->sync)->log_group, err, errlen);
	if (!d->fl)
		return -1;
	d->sink = flowlog_sink_open(d->o->log, d->o->log_max, FLOWLOG_KEEP, err,
				    errlen);
	if (!d->sink || watch_add(d, &d->wnflog, W_NFLOG, flowlog_fd(d->fl)))
		return -1;
	fd = flowlog_sink_fd(d->sink);
	if (fd >= 0 && watch_add(d, &d->wlogsink, W_LOGSINK, fd))
		goto sys;
	fd = control_listen(d->o->control, d->o->control_group, err, errlen);
	if (fd < 0)
		return -1;
	control_mode(d);
	if (watch_add(d, &d->wcontrol, W_CONTROL, fd))
		goto sys;
	d->rv = revoke_new(err, errlen);
	if (!d->rv)
		return -1;
	/* the live flows in an index of ours, kept by events: a sweep
	 * then judges memory (without it, each sweep reads the table) */
	d->allowed = allowed_new();
	revoke_on_events(d->rv, on_ct_event, d);
	want_acct(d);
	if (revoke_track(d->rv, err, errlen) ||
	    watch_add(d, &d->wct, W_CT, revoke_fd(d->rv)))
		say("warning: %s; each revocation will read the conntrack "
		    "table%s",
		    err,
		    judges_openings(d)
			? ", and no allowed flow is on record or counted"
			: "");
	fd = ports_watch(d->ports, err, errlen);
	if (fd < 0)
		return -1;
	if (watch_add(d, &d->wlink, W_LINK, fd))
		goto sys;
	d->host = hostaddrs_open(err, errlen);
	if (!d->host)
		return -1;
	if (watch_add(d, &d->waddr, W_ADDR, hostaddrs_fd(d->host)))
		goto sys;
	d->kw = kernel_watch_open(err, errlen);
	if (!d->kw || watch_add(d, &d->wnft, W_NFT, kernel_watch_fd(d->kw)))
		return -1;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0 || watch_add(d, &d->wdnstimer, W_DNS_TIMER, fd) ||
	    watch_add(d, &d->wdns, W_DNS, dns_fd(d->dns)))
		goto sys;
	if (d->o->metrics) {
		d->metrics = metrics_new();
		d->scrape = scrape_open(d->o->metrics, d->o->control_group,
					render_metrics, d, err, errlen);
		if (!d->scrape)
			return -1;
		if (watch_add(d, &d->wscrape, W_SCRAPE, scrape_fd(d->scrape)) ||
		    watch_add(d, &d->wscrapetimer, W_SCRAPE,
			      scrape_timer_fd(d->scrape)))
			goto sys;
	}
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
	sync_free(d->sync);
	docker_free(d->dk);
	dns_free(d->dns);
	fqdn_free(&d->fq);
	kernel_watch_close(d->kw);
	ports_free(d->ports);
	revoke_free(d->rv);
	allowed_free(d->allowed);
	scrape_close(d->scrape);
	metrics_free(d->metrics);
	hostaddrs_free(d->host);
	sb_free(&d->ctline);
	flowlog_close(d->fl);
	sb_free(&d->line);
	flowlog_sink_close(d->sink);
	kernel_close(d->k);
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
	struct compile_opts co = {.audit = o->audit, .conflicts_deny = true};
	struct sync_ops ops = {.ctx = &d,
			       .apply = sy_apply,
			       .converge = sy_converge,
			       .refill = sy_refill,
			       .say = sy_say,
			       .fail = sy_fail,
			       .bind_in = sy_bind_in};
	struct diags dg = {0};
	struct policy *p;
	char err[512];
	int ret = 1;

	p = policy_load(o->policy, &dg);
	diags_print(&dg, stderr);
	diags_free(&dg);
	if (!p)
		return 2;
	fqdn_init(&d.fq, o->dns_min_ttl, o->dns_max_ttl);
	fqdn_set_names(&d.fq, p);
	d.dns = dns_new(o->dns, err, sizeof(err));
	if (!d.dns) {
		say("error: %s", err);
		policy_free(p);
		ret = 2;
		goto out;
	}
	d.k = kernel_open(err, sizeof(err));
	d.ports = d.k ? ports_new(err, sizeof(err)) : NULL;
	d.dk = d.ports ? docker_new(o->docker, err, sizeof(err)) : NULL;
	if (!d.dk) {
		say("error: %s", err);
		policy_free(p);
		goto out;
	}
	d.sync = sync_new(p, &co, d.ports, d.dk, &ops);
	if (setup(&d, err, sizeof(err))) {
		say("error: %s", err);
		goto out;
	}
	say("bulkhead: policy %s (%zu services, %zu edges), docker %s, "
	    "control %s, denied flows from NFLOG group %u to %s%s%s",
	    p->file, p->nservices, p->nedges, o->docker, o->control,
	    p->log_group, o->log, o->metrics ? ", metrics on " : "",
	    o->metrics ? o->metrics : "");
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
				sync_want_resync(d.sync, true);
				prune_flows(&d);
				break;
			case W_RETRY:
				drain(w->fd);
				if (d.dk_state == DK_DOWN)
					docker_connect(&d);
				break;
			case W_BIND:
				drain(w->fd);
				on_links(&d);
				sync_bind(d.sync);
				break;
			case W_CT:
				on_ct(&d);
				break;
			case W_LINK:
				on_links(&d);
				break;
			case W_ADDR:
				on_addrs(&d);
				break;
			case W_SCRAPE:
				scrape_run(d.scrape);
				break;
			case W_LOGSINK:
				flowlog_sink_fd(d.sink); /* emptied */
				log_flush(&d);
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
		if (d.synced_once)
			sweep(&d);
	}
	notify("STOPPING=1");
	ret = 0;
out:
	teardown(&d);
	return ret;
}
