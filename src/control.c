/* The control socket: server, client and the status schema. Every key
 * of the status answer is written and read in this file only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "bulkhead/control.h"
#include "bulkhead/policy.h"
#include "bulkhead/util.h"

/* --- the status ---------------------------------------------------------- */

static void strs_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void control_status_free(struct control_status *st)
{
	size_t i, j;

	free(st->policy);
	free(st->view);
	free(st->docker_error);
	free(st->api);
	free(st->last_sync);
	strs_free(st->warnings, st->nwarnings);
	for (i = 0; i < st->nfqdn; i++) {
		free(st->fqdn[i].name);
		free(st->fqdn[i].state);
		free(st->fqdn[i].error);
		strs_free(st->fqdn[i].addrs, st->fqdn[i].naddrs);
	}
	free(st->fqdn);
	free(st->capabilities);
	free(st->no_new_privs);
	free(st->last_restore_at);
	free(st->last_restore_why);
	free(st->last_error);
	free(st->log_failing);
	strs_free(st->services, st->nservices);
	for (i = 0; i < st->ncontainers; i++) {
		struct control_container *c = &st->containers[i];

		free(c->name);
		free(c->id);
		free(c->service);
		free(c->why);
		for (j = 0; j < c->naddrs; j++) {
			free(c->addrs[j].network);
			free(c->addrs[j].ipv4);
			free(c->addrs[j].ipv6);
		}
		free(c->addrs);
	}
	free(st->containers);
	free(st->kernel_error);
	for (i = 0; i < st->nsets; i++)
		free(st->sets[i].name);
	free(st->sets);
	free(st->log);
	memset(st, 0, sizeof(*st));
}

void control_status_limit(struct control_status *st, char *const *scopes,
			  size_t nscopes)
{
	struct control_status gone = {0};
	struct strbuf view = {0};
	size_t i, k;

	/* host-wide details that name others: freed with gone */
	gone.warnings = st->warnings;
	gone.nwarnings = st->nwarnings;
	gone.fqdn = st->fqdn;
	gone.nfqdn = st->nfqdn;
	gone.sets = st->sets;
	gone.nsets = st->nsets;
	gone.last_error = st->last_error;
	gone.last_restore_why = st->last_restore_why;
	st->warnings = NULL;
	st->fqdn = NULL;
	st->sets = NULL;
	st->nwarnings = st->nfqdn = st->nsets = 0;
	st->last_error = st->last_restore_why = NULL;
	gone.services = xcalloc(st->nservices + 1, sizeof(char *));
	for (i = k = 0; i < st->nservices; i++) {
		if (policy_in_scopes(st->services[i], scopes, nscopes))
			st->services[k++] = st->services[i];
		else
			gone.services[gone.nservices++] = st->services[i];
	}
	st->nservices = k;
	gone.containers =
	    xcalloc(st->ncontainers + 1, sizeof(*gone.containers));
	for (i = k = 0; i < st->ncontainers; i++) {
		if (policy_in_scopes(st->containers[i].service, scopes,
				     nscopes))
			st->containers[k++] = st->containers[i];
		else
			gone.containers[gone.ncontainers++] = st->containers[i];
	}
	st->ncontainers = k;
	control_status_free(&gone);
	sb_puts(&view, "scope ");
	for (i = 0; i < nscopes; i++)
		sb_printf(&view, "%s%s", i ? ", " : "", scopes[i]);
	free(st->view);
	st->view = view.s;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void median_p99(const double *samples, size_t n, double *median,
		       double *p99)
{
	double *v = xcalloc(n + 1, sizeof(*v));

	memcpy(v, samples, n * sizeof(*v));
	qsort(v, n, sizeof(*v), dcmp);
	*median = v[n / 2];
	*p99 = v[(n * 99) / 100];
	free(v);
}

void control_lat_fill(struct control_lat *l, const double *v, const double *own,
		      size_t n)
{
	memset(l, 0, sizeof(*l));
	l->n = (long)n;
	if (!n)
		return;
	median_p99(v, n, &l->median_us, &l->p99_us);
	median_p99(own, n, &l->own_median_us, &l->own_p99_us);
}

/* A line of /proc/self/status ("CapEff", "NoNewPrivs"), or NULL. */
static char *proc_status(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256], *v = NULL;
	size_t n = strlen(key);

	while (f && !v && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			line[strcspn(line, "\n")] = 0;
			v = xstrdup(line + n + 1 + strspn(line + n + 1, " \t"));
		}
	if (f)
		fclose(f);
	return v;
}

void control_status_self(struct control_status *st)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	st->capabilities = proc_status("CapEff");
	st->no_new_privs = proc_status("NoNewPrivs");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	st->rss_kb = rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Sets key to an integer unless it is absent (-1). */
static void put_long(json_t *o, const char *key, long v)
{
	if (v >= 0)
		json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void put_str(json_t *o, const char *key, const char *v)
{
	if (v)
		json_object_set_new(o, key, json_string(v));
}

static json_t *strs_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *lat_json(const struct control_lat *l)
{
	json_t *o = json_object();

	if (!l->n)
		return o;
	json_object_set_new(o, "n", json_integer(l->n));
	json_object_set_new(o, "median_us", json_real(l->median_us));
	json_object_set_new(o, "p99_us", json_real(l->p99_us));
	json_object_set_new(o, "own_median_us", json_real(l->own_median_us));
	json_object_set_new(o, "own_p99_us", json_real(l->own_p99_us));
	return o;
}

static json_t *fqdn_json(const struct control_fqdn *f)
{
	json_t *o = json_object();

	put_str(o, "name", f->name);
	put_str(o, "state", f->state);
	json_object_set_new(o, "addresses", strs_json(f->addrs, f->naddrs));
	put_long(o, "ttl_s", f->ttl_s);
	put_long(o, "kept_s", f->kept_s);
	put_long(o, "answered_s_ago", f->answered_s_ago);
	put_long(o, "next_ask_in_s", f->next_ask_in_s);
	put_long(o, "expires_in_s", f->expires_in_s);
	if (f->error) {
		put_str(o, "error", f->error);
		put_long(o, "failures", f->failures);
		put_long(o, "failing_for_s", f->failing_for_s);
	}
	json_object_set_new(
	    o, "counts",
	    json_pack("{s:I, s:I, s:I, s:I}", "asked", (json_int_t)f->asked,
		      "answered", (json_int_t)f->answered, "changed",
		      (json_int_t)f->changed, "failed", (json_int_t)f->failed));
	return o;
}

static json_t *container_json(const struct control_container *c)
{
	json_t *o = json_object(), *addrs = json_array();
	size_t j;

	put_str(o, "name", c->name);
	put_str(o, "id", c->id);
	for (j = 0; j < c->naddrs; j++) {
		json_t *n = json_object();

		put_str(n, "network", c->addrs[j].network);
		put_str(n, "ipv4", c->addrs[j].ipv4);
		put_str(n, "ipv6", c->addrs[j].ipv6);
		json_array_append_new(addrs, n);
	}
	json_object_set_new(o, "addresses", addrs);
	if (!c->service)
		put_str(o, "why", c->why);
	return o;
}

json_t *control_status_json(const struct control_status *st)
{
	json_t *o = json_object(), *svcs = json_object(), *un = json_array();
	json_t *v;
	size_t i;

	json_object_set_new(o, "ok", json_true());
	put_str(o, "policy", st->policy);
	put_str(o, "view", st->view);
	put_str(o, "mode", st->audit ? "audit" : "enforce");
	put_str(o, "docker", st->docker_up ? "connected" : "unreachable");
	put_str(o, "docker_error", st->docker_error);
	put_str(o, "api", st->api ? st->api : "");
	if (st->last_sync) {
		put_str(o, "last_sync", st->last_sync);
		put_long(o, "last_sync_age_s", st->last_sync_age_s);
	}
	put_long(o, "events", st->events);
	put_long(o, "deltas", st->deltas);
	put_long(o, "revoked_flows", st->revoked_flows);
	put_long(o, "revocation_sweeps", st->revocation_sweeps);
	json_object_set_new(o, "last_sweep_ms", json_real(st->last_sweep_ms));
	put_long(o, "flows_tracked", st->flows_tracked);
	put_long(o, "allowed_opened", st->allowed_opened);
	put_long(o, "allowed_closed", st->allowed_closed);
	put_long(o, "allowed_open", st->allowed_open);
	put_long(o, "allowed_suppressed", st->allowed_suppressed);
	put_long(o, "ct_overruns", st->ct_overruns);
	put_long(o, "log_lines", st->log_lines);
	put_long(o, "log_written", st->log_written);
	put_long(o, "log_lost", st->log_lost);
	put_str(o, "log_failing", st->log_failing);
	put_long(o, "resyncs", st->resyncs);
	put_long(o, "errors", st->errors);
	json_object_set_new(o, "warnings",
			    strs_json(st->warnings, st->nwarnings));
	if (st->nfqdn) {
		v = json_array();
		for (i = 0; i < st->nfqdn; i++)
			json_array_append_new(v, fqdn_json(&st->fqdn[i]));
		json_object_set_new(o, "fqdn", v);
		put_long(o, "fqdn_refills", st->fqdn_refills);
	}
	json_object_set_new(o, "capabilities",
			    st->capabilities ? json_string(st->capabilities)
					     : json_null());
	json_object_set_new(o, "no_new_privs",
			    st->no_new_privs ? json_string(st->no_new_privs)
					     : json_null());
	put_long(o, "restores", st->restores);
	if (st->last_restore_at)
		json_object_set_new(
		    o, "last_restore",
		    json_pack("{s:s, s:s}", "at", st->last_restore_at, "why",
			      st->last_restore_why ? st->last_restore_why
						   : ""));
	put_str(o, "last_error", st->last_error);
	put_long(o, "rss_kb", st->rss_kb);
	for (i = 0; i < st->nservices; i++)
		json_object_set_new(svcs, st->services[i], json_array());
	for (i = 0; i < st->ncontainers; i++) {
		const struct control_container *c = &st->containers[i];
		json_t *list =
		    c->service ? json_object_get(svcs, c->service) : un;

		if (!list) {
			list = json_array();
			json_object_set_new(svcs, c->service, list);
		}
		json_array_append_new(list, container_json(c));
	}
	json_object_set_new(o, "services", svcs);
	json_object_set_new(o, "unplaced", un);
	if (!st->kernel_error) {
		v = json_object();
		for (i = 0; i < st->nsets; i++)
			json_object_set_new(v, st->sets[i].name,
					    json_integer(st->sets[i].n));
		put_long(o, "kernel_sets", st->kernel_sets);
		put_long(o, "kernel_elements", st->kernel_elements);
		json_object_set_new(o, "elements", v);
	} else {
		put_str(o, "kernel_error", st->kernel_error);
	}
	v = lat_json(&st->start);
	json_object_set_new(v, "placed_before_start",
			    json_integer(st->placed_before_start));
	json_object_set_new(o, "start_to_commit", v);
	json_object_set_new(o, "connect_to_commit", lat_json(&st->connect));
	json_object_set_new(o, "start_to_bound", lat_json(&st->bound));
	if (st->has_log)
		json_object_set_new(
		    o, "denied_flows",
		    json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "log",
			      st->log ? st->log : "", "records",
			      (json_int_t)st->records, "suppressed",
			      (json_int_t)st->suppressed, "overruns",
			      (json_int_t)st->overruns, "malformed",
			      (json_int_t)st->malformed, "foreign",
			      (json_int_t)st->foreign));
	return o;
}

/* --- reading it back ----------------------------------------------------- */

static char *get_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? xstrdup(s) : NULL;
}

static long get_long(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static char **get_strs(json_t *a, size_t *n)
{
	char **v = xcalloc(json_array_size(a) + 1, sizeof(*v));
	size_t i;
	json_t *x;

	*n = 0;
	json_array_foreach(a, i, x) if (json_is_string(x)) v[(*n)++] =
	    xstrdup(json_string_value(x));
	return v;
}

static void get_lat(json_t *o, struct control_lat *l)
{
	memset(l, 0, sizeof(*l));
	if (get_long(o, "n") <= 0)
		return;
	l->n = get_long(o, "n");
	l->median_us = json_number_value(json_object_get(o, "median_us"));
	l->p99_us = json_number_value(json_object_get(o, "p99_us"));
	l->own_median_us =
	    json_number_value(json_object_get(o, "own_median_us"));
	l->own_p99_us = json_number_value(json_object_get(o, "own_p99_us"));
}

static void get_container(json_t *o, const char *service,
			  struct control_container *c)
{
	json_t *a;
	size_t i;

	c->name = get_str(o, "name");
	c->id = get_str(o, "id");
	c->service = service ? xstrdup(service) : NULL;
	c->why = get_str(o, "why");
	c->addrs = xcalloc(json_array_size(json_object_get(o, "addresses")) + 1,
			   sizeof(*c->addrs));
	json_array_foreach(json_object_get(o, "addresses"), i, a)
	{
		struct control_addr *ad = &c->addrs[c->naddrs++];

		ad->network = get_str(a, "network");
		ad->ipv4 = get_str(a, "ipv4");
		ad->ipv6 = get_str(a, "ipv6");
	}
}

static void get_fqdn(json_t *o, struct control_fqdn *f)
{
	json_t *counts = json_object_get(o, "counts");

	f->name = get_str(o, "name");
	f->state = get_str(o, "state");
	f->addrs = get_strs(json_object_get(o, "addresses"), &f->naddrs);
	f->ttl_s = get_long(o, "ttl_s");
	f->kept_s = get_long(o, "kept_s");
	f->answered_s_ago = get_long(o, "answered_s_ago");
	f->next_ask_in_s = get_long(o, "next_ask_in_s");
	f->expires_in_s = get_long(o, "expires_in_s");
	f->error = get_str(o, "error");
	f->failures = get_long(o, "failures");
	f->failing_for_s = get_long(o, "failing_for_s");
	f->asked = get_long(counts, "asked");
	f->answered = get_long(counts, "answered");
	f->changed = get_long(counts, "changed");
	f->failed = get_long(counts, "failed");
}

int control_status_parse(json_t *j, struct control_status *st)
{
	json_t *v, *svcs = json_object_get(j, "services"), *c, *fl;
	const char *key, *mode;
	size_t i, n = 0;

	memset(st, 0, sizeof(*st));
	if (!json_is_object(j) || !json_is_true(json_object_get(j, "ok")))
		return -1;
	st->policy = get_str(j, "policy");
	st->view = get_str(j, "view");
	mode = json_string_value(json_object_get(j, "mode"));
	st->audit = mode && !strcmp(mode, "audit");
	v = json_object_get(j, "docker");
	st->docker_up =
	    json_string_value(v) && !strcmp(json_string_value(v), "connected");
	st->docker_error = get_str(j, "docker_error");
	st->api = get_str(j, "api");
	st->last_sync = get_str(j, "last_sync");
	st->last_sync_age_s = get_long(j, "last_sync_age_s");
	st->events = get_long(j, "events");
	st->deltas = get_long(j, "deltas");
	st->revoked_flows = get_long(j, "revoked_flows");
	st->revocation_sweeps = get_long(j, "revocation_sweeps");
	st->last_sweep_ms =
	    json_number_value(json_object_get(j, "last_sweep_ms"));
	st->flows_tracked = get_long(j, "flows_tracked");
	st->allowed_opened = get_long(j, "allowed_opened");
	st->allowed_closed = get_long(j, "allowed_closed");
	st->allowed_open = get_long(j, "allowed_open");
	st->allowed_suppressed = get_long(j, "allowed_suppressed");
	st->ct_overruns = get_long(j, "ct_overruns");
	st->log_lines = get_long(j, "log_lines");
	st->log_written = get_long(j, "log_written");
	st->log_lost = get_long(j, "log_lost");
	st->log_failing = get_str(j, "log_failing");
	st->resyncs = get_long(j, "resyncs");
	st->errors = get_long(j, "errors");
	st->warnings = get_strs(json_object_get(j, "warnings"), &st->nwarnings);
	v = json_object_get(j, "fqdn");
	st->fqdn = xcalloc(json_array_size(v) + 1, sizeof(*st->fqdn));
	json_array_foreach(v, i, c) get_fqdn(c, &st->fqdn[st->nfqdn++]);
	st->fqdn_refills = get_long(j, "fqdn_refills");
	st->capabilities = get_str(j, "capabilities");
	st->no_new_privs = get_str(j, "no_new_privs");
	st->restores = get_long(j, "restores");
	v = json_object_get(j, "last_restore");
	st->last_restore_at = get_str(v, "at");
	st->last_restore_why = get_str(v, "why");
	st->last_error = get_str(j, "last_error");
	st->rss_kb = get_long(j, "rss_kb");
	st->services = xcalloc(json_object_size(svcs) + 1, sizeof(char *));
	json_object_foreach(svcs, key, v)
	{
		st->services[st->nservices++] = xstrdup(key);
		n += json_array_size(v);
	}
	n += json_array_size(json_object_get(j, "unplaced"));
	st->containers = xcalloc(n + 1, sizeof(*st->containers));
	json_object_foreach(svcs, key, v) json_array_foreach(v, i, c)
	    get_container(c, key, &st->containers[st->ncontainers++]);
	json_array_foreach(json_object_get(j, "unplaced"), i, c)
	    get_container(c, NULL, &st->containers[st->ncontainers++]);
	st->kernel_error = get_str(j, "kernel_error");
	st->kernel_sets = get_long(j, "kernel_sets");
	st->kernel_elements = get_long(j, "kernel_elements");
	v = json_object_get(j, "elements");
	st->sets = xcalloc(json_object_size(v) + 1, sizeof(*st->sets));
	json_object_foreach(v, key, c)
	{
		st->sets[st->nsets].name = xstrdup(key);
		st->sets[st->nsets++].n = (long)json_integer_value(c);
	}
	if (!st->kernel_error && st->kernel_elements < 0)
		st->kernel_error = xstrdup("not read");
	v = json_object_get(j, "start_to_commit");
	get_lat(v, &st->start);
	st->placed_before_start = get_long(v, "placed_before_start");
	get_lat(json_object_get(j, "connect_to_commit"), &st->connect);
	get_lat(json_object_get(j, "start_to_bound"), &st->bound);
	fl = json_object_get(j, "denied_flows");
	st->has_log = json_is_object(fl);
	st->log = get_str(fl, "log");
	st->records = get_long(fl, "records");
	st->suppressed = get_long(fl, "suppressed");
	st->overruns = get_long(fl, "overruns");
	st->malformed = get_long(fl, "malformed");
	st->foreign = get_long(fl, "foreign");
	return 0;
}

/* --- the text ------------------------------------------------------------ */

static void print_container(const struct control_container *c, FILE *out)
{
	size_t k;

	fprintf(out, "    %-24s", c->name ? c->name : "");
	for (k = 0; k < c->naddrs; k++) {
		fprintf(out, " %s",
			c->addrs[k].network ? c->addrs[k].network : "");
		if (c->addrs[k].ipv4)
			fprintf(out, " %s", c->addrs[k].ipv4);
		if (c->addrs[k].ipv6)
			fprintf(out, " %s", c->addrs[k].ipv6);
	}
	fputc('\n', out);
}

static void print_fqdn(const struct control_fqdn *f, FILE *out)
{
	size_t k;

	fprintf(out, "  %-30s %-7s", f->name, f->state ? f->state : "");
	for (k = 0; k < f->naddrs; k++)
		fprintf(out, " %s", f->addrs[k]);
	if (f->ttl_s >= 0)
		fprintf(out, " (ttl %ld s, asked again in %ld s)", f->ttl_s,
			f->next_ask_in_s > 0 ? f->next_ask_in_s : 0);
	if (f->error)
		fprintf(out, "\n    DNS failing for %ld s: %s%s",
			f->failing_for_s > 0 ? f->failing_for_s : 0, f->error,
			f->naddrs ? " (the last good addresses stay)" : "");
	fputc('\n', out);
}

void control_status_print(const struct control_status *st, FILE *out)
{
	size_t i, j, n;

	fprintf(out, "daemon: policy %s (%s), docker %s", st->policy,
		st->audit ? "audit" : "enforce",
		st->docker_up ? "connected" : "unreachable");
	if (st->api && *st->api)
		fprintf(out, " (API %s)", st->api);
	if (st->docker_error)
		fprintf(out, ": %s", st->docker_error);
	if (st->view)
		fprintf(out, "\nview: %s (what its owners may see)", st->view);
	if (st->last_sync)
		fprintf(out, "\nlast sync: %s (%ld s ago)", st->last_sync,
			st->last_sync_age_s);
	else
		fprintf(out, "\nlast sync: never");
	fprintf(out, "\nevents %ld, deltas %ld, resyncs %ld, errors %ld",
		st->events, st->deltas, st->resyncs, st->errors);
	if (st->last_error)
		fprintf(out, " (last: %s)", st->last_error);
	fprintf(out,
		"\nrevoked %ld flows in %ld sweeps (the last took %.1f ms)",
		st->revoked_flows, st->revocation_sweeps, st->last_sweep_ms);
	if (st->allowed_opened || st->allowed_suppressed)
		fprintf(out,
			"\nallowed flows on record: %ld opened, %ld closed, "
			"%ld open now (%ld more held back by the rate limit; "
			"conntrack's events lost %ld times)",
			st->allowed_opened, st->allowed_closed,
			st->allowed_open, st->allowed_suppressed,
			st->ct_overruns);
	if (st->has_log)
		fprintf(out,
			"\nflow log: %ld lines written, %ld lost of %ld%s%s",
			st->log_written, st->log_lost, st->log_lines,
			st->log_failing ? "; failing: " : "",
			st->log_failing ? st->log_failing : "");
	if (st->last_restore_at)
		fprintf(out,
			"\nrestored %ld times after another process changed "
			"our table (last %s: %s)",
			st->restores, st->last_restore_at,
			st->last_restore_why ? st->last_restore_why : "");
	if (!st->kernel_error)
		fprintf(out,
			"\nkernel: table inet bulkhead, %ld elements in %ld "
			"sets",
			st->kernel_elements, st->kernel_sets);
	else
		fprintf(out, "\nkernel: %s", st->kernel_error);
	/* a figure of nothing measured is said to be none */
	if (st->start.n && st->placed_before_start == st->start.n)
		fprintf(out,
			"\ncontainer start to committed: nothing measured "
			"(all %ld placed at their network connect, before "
			"their start event)",
			st->start.n);
	else if (st->start.n)
		fprintf(out,
			"\ncontainer start to committed: median %.0f us, p99 "
			"%.0f us (last %ld starts, %ld placed before their "
			"start event)",
			st->start.median_us, st->start.p99_us, st->start.n,
			st->placed_before_start);
	if (st->bound.n)
		fprintf(out,
			"\ncontainer start to bound to its bridge port: median "
			"%.0f us, p99 %.0f us (last %ld)",
			st->bound.median_us, st->bound.p99_us, st->bound.n);
	if (st->connect.n)
		fprintf(out,
			"\nnetwork connect to committed: median %.0f us, p99 "
			"%.0f us; from Docker's answer: median %.0f us, p99 "
			"%.0f us (last %ld)",
			st->connect.median_us, st->connect.p99_us,
			st->connect.own_median_us, st->connect.own_p99_us,
			st->connect.n);
	if (st->has_log)
		fprintf(out,
			"\ndenied flows: %ld records to %s (%ld more held back "
			"by the rate limit, %ld NFLOG overruns, %ld "
			"malformed)",
			st->records, st->log ? st->log : "", st->suppressed,
			st->overruns, st->malformed);
	fprintf(out, "\nservices:\n");
	for (i = 0; i < st->nservices; i++) {
		for (j = n = 0; j < st->ncontainers; j++)
			n +=
			    st->containers[j].service &&
			    !strcmp(st->containers[j].service, st->services[i]);
		fprintf(out, "  %s: %zu container%s\n", st->services[i], n,
			n == 1 ? "" : "s");
		for (j = 0; j < st->ncontainers; j++)
			if (st->containers[j].service &&
			    !strcmp(st->containers[j].service, st->services[i]))
				print_container(&st->containers[j], out);
	}
	if (st->nfqdn)
		fprintf(out, "fqdn peers:\n");
	for (i = 0; i < st->nfqdn; i++)
		print_fqdn(&st->fqdn[i], out);
	if (st->nwarnings)
		fprintf(out, "warnings:\n");
	for (i = 0; i < st->nwarnings; i++)
		fprintf(out, "  %s\n", st->warnings[i]);
	for (i = n = 0; i < st->ncontainers; i++)
		n += !st->containers[i].service;
	if (n)
		fprintf(
		    out,
		    "unplaced (denied unless settings.unmatched allows):\n");
	for (i = 0; i < st->ncontainers; i++)
		if (!st->containers[i].service)
			fprintf(out, "  %-26s %s\n", st->containers[i].name,
				st->containers[i].why ? st->containers[i].why
						      : "");
}

/* --- the server ---------------------------------------------------------- */

struct control_client {
	int fd;
	char buf[CONTROL_REQUEST_MAX];
	size_t len;
	struct control_peer peer;
};

int control_listen(const char *path, const char *group, char *err,
		   size_t errlen)
{
	return control_listen_unix("control socket", path, group, err, errlen);
}

int control_listen_unix(const char *what, const char *path, const char *group,
			char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = -1, probe;
	struct group *g = NULL;
	mode_t mode = 0600;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s path too long: %s", what, path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (group && !(g = getgrnam(group))) {
		snprintf(err, errlen, "control group '%s' does not exist",
			 group);
		return -1;
	}
	/* a live daemon answers: refuse to take its socket */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
		close(probe);
		snprintf(err, errlen, "%s: another bulkhead daemon is running",
			 path);
		return -1;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    (g && chown(path, (uid_t)-1, g->gr_gid)) ||
	    chmod(path, g ? (mode = 0660) : mode) || listen(fd, 16)) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

bool control_peer_in(const struct control_peer *p, unsigned gid)
{
	int i;

	for (i = 0; i < p->ngroups; i++)
		if (p->groups[i] == gid)
			return true;
	return false;
}

/* Who asks: the peer's credentials and groups (its user's, from the
 * group database, and its own gid); full for root, our own user and
 * members of the control group. False when they cannot be read. */
static bool peer_read(const char *group, int fd, struct control_peer *pe)
{
	struct ucred cr = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
	socklen_t len = sizeof(cr);
	struct group *g;
	struct passwd *pw;
	gid_t groups[CONTROL_PEER_GROUPS];
	int ng = CONTROL_PEER_GROUPS, i;

	pe->pid = 0;
	pe->uid = pe->gid = (unsigned)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return false;
	pe->pid = (int)cr.pid;
	pe->uid = (unsigned)cr.uid;
	pe->gid = (unsigned)cr.gid;
	pe->groups[0] = pe->gid;
	pe->ngroups = 1;
	pw = getpwuid(cr.uid);
	if (pw && getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) >= 0)
		for (i = 0; i < ng && pe->ngroups < CONTROL_PEER_GROUPS; i++)
			pe->groups[pe->ngroups++] = (unsigned)groups[i];
	pe->full = cr.uid == 0 || cr.uid == geteuid();
	if (!pe->full && group && (g = getgrnam(group)))
		pe->full = control_peer_in(pe, (unsigned)g->gr_gid);
	return true;
}

struct control_client *control_accept(int lfd, const char *group,
				      const unsigned *scoped, size_t nscoped,
				      char *refused, size_t len)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct control_peer pe = {0};
	struct control_client *c;
	bool ok;
	size_t i;

	refused[0] = 0;
	if (fd < 0)
		return NULL;
	ok = peer_read(group, fd, &pe);
	for (i = 0; ok && !pe.full && i < nscoped; i++)
		if (control_peer_in(&pe, scoped[i]))
			break;
	if (!ok || (!pe.full && i == nscoped)) {
		char msg[240];
		int n = snprintf(msg, sizeof(msg),
				 "{\"error\":\"not allowed: uid %u gid %u is "
				 "neither root nor %s%s\"}\n",
				 pe.uid, pe.gid,
				 group ? "in the control group"
				       : "the daemon's user",
				 nscoped ? ", nor in a scope's owners" : "");

		snprintf(refused, len,
			 "pid %d (uid %u, gid %u): neither root, the daemon's "
			 "user nor in the control group%s",
			 pe.pid, pe.uid, pe.gid,
			 nscoped ? " or a scope's owners" : "");
		/* a small answer into an empty socket buffer: it fits, and
		 * if it does not, closing says enough */
		(void)!write(fd, msg, (size_t)n);
		close(fd);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->peer = pe;
	return c;
}

int control_client_fd(const struct control_client *c)
{
	return c->fd;
}

void control_client_free(struct control_client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}

int control_client_read(struct control_client *c, control_answer_fn answer,
			void *ctx)
{
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	struct timeval tv = {.tv_sec = 2};
	json_t *req, *rep;
	char *nl, *s;

	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n > 0)
		c->len += (size_t)n;
	nl = memchr(c->buf, '\n', c->len);
	if (!nl && n > 0 && c->len < sizeof(c->buf))
		return 0;
	if (!nl)
		return 1;
	req = json_loadb(c->buf, (size_t)(nl - c->buf), 0, NULL);
	rep = answer(ctx, &c->peer, req);
	json_decref(req);
	s = json_dumps(rep, JSON_COMPACT);
	json_decref(rep);
	/* a reader that stalls gets two seconds, not the loop */
	fcntl(c->fd, F_SETFL, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (s) {
		size_t off = 0, len = strlen(s);

		while (off < len) {
			n = send(c->fd, s + off, len - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		free(s);
	}
	return 1;
}

/* --- the client ---------------------------------------------------------- */

int control_request(const char *path, const char *request, char **reply,
		    char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct strbuf sb = {0};
	struct timeval tv = {.tv_sec = 30};
	char buf[4096];
	ssize_t n;
	int fd, r = 0;

	*reply = NULL;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		r = -errno;
		snprintf(err, errlen,
			 "cannot reach the daemon at %s: %s (is `bulkhead "
			 "run` running?)",
			 path, strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* a daemon that refuses us says why and closes, maybe before our
	 * request is sent: its answer is still there to read */
	if ((send(fd, request, strlen(request), MSG_NOSIGNAL) < 0 ||
	     send(fd, "\n", 1, MSG_NOSIGNAL) < 0) &&
	    errno != EPIPE) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
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
		snprintf(err, errlen, "%s: no answer from the daemon%s%s", path,
			 n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
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
