/* The bulkhead command line: a table of subcommands, each parsing its own
 * options and calling the modules. The only place that exits, and the
 * only place that turns results into exit statuses (0 ok, 1 runtime
 * failure, 2 bad input). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "bulkhead/compile.h"
#include "bulkhead/control.h"
#include "bulkhead/daemon.h"
#include "bulkhead/denials.h"
#include "bulkhead/dns.h"
#include "bulkhead/docker.h"
#include "bulkhead/flowlog.h"
#include "bulkhead/fqdn.h"
#include "bulkhead/graph.h"
#include "bulkhead/inventory.h"
#include "bulkhead/kernel.h"
#include "bulkhead/policy.h"
#include "bulkhead/ports.h"
#include "bulkhead/revoke.h"
#include "bulkhead/render.h"
#include "bulkhead/scrape.h"
#include "bulkhead/trace.h"

#define EXIT_BADINPUT 2
#define BULKHEAD_RELEASE "0.5.0"
#ifndef BULKHEAD_COMMIT
#define BULKHEAD_COMMIT "" /* built outside a clone */
#endif

struct opts {
	const char *policy, *inventory, *format;
	const char *docker, *control, *control_group, *log, *user;
	const char *dns; /* servers for --resolve and the daemon */
	unsigned resync_s, dns_min_ttl, dns_max_ttl;
	bool audit, resolve, replace, exit_code, json;
	bool follow, summary, suggest;
	const char *since, *service, *container, *denials, *verdict;
	const char *metrics;
	struct compile_fqdn *fqdn;
	size_t nfqdn, capfqdn;
	char **fqdn_names;
	size_t nnames, capnames;
	int argc;
	char **argv; /* positional arguments */
};

#define INVENTORY_HELP                                                         \
	"Without --inventory, the running containers are read from the\n"      \
	"Docker API (--docker SOCK, else DOCKER_HOST=unix://..., "             \
	"else\n" DOCKER_SOCK ").\n"

static const char usage_check[] =
    "usage: bulkhead check -p POLICY [--inventory FILE]\n"
    "Validate POLICY; with an inventory (the output of `docker inspect\n"
    "$(docker ps -q)`), also report containers matching two services\n"
    "(an error) or none (a warning), and ports a container publishes on\n"
    "the host that its service opens to no one outside (a warning).\n"
    "POLICY is a file or a directory of them (*.yaml in name order; a\n"
    "file with scope: is a team's, and an edge between two scopes only\n"
    "holds where both files declare it: each one-sided edge is warned\n"
    "about). Every command's -p takes either.\n";
static const char usage_plan[] =
    "usage: bulkhead plan -p POLICY [--inventory FILE] [--format nft|json]\n"
    "                     [--audit] [--fqdn NAME=ADDR]... [--resolve]\n"
    "                     [--dns SERVERS] [--docker SOCK]\n"
    "Dry run: print exactly what would be programmed, as an `nft -f`\n"
    "script (default) or as the IR in JSON. FQDN peers take their\n"
    "addresses from --fqdn, or from DNS with --resolve (A and AAAA, from\n"
    "/etc/hosts or the system's resolvers, or from --dns\n"
    "ADDR[:PORT],...).\n" INVENTORY_HELP;
static const char usage_trace[] =
    "usage: bulkhead trace -p POLICY --inventory FILE SRC DST PORT/PROTO\n"
    "       bulkhead trace [--control PATH] SRC DST PORT/PROTO\n"
    "SRC and DST are container names or ids, service names, IP\n"
    "addresses, or 'host' (DST only). Prints allowed or denied and the\n"
    "edge (file:line) or default that decides. Exit 0 either way.\n"
    "Without --inventory the running daemon answers, with its policy\n"
    "and the containers it has placed.\n";

static const char usage_apply[] =
    "usage: bulkhead apply -p POLICY [--inventory FILE] [--audit] [--replace]\n"
    "                      [--fqdn NAME=ADDR]... [--resolve] [--dns SERVERS]\n"
    "                      [--docker SOCK]\n"
    "Program the ruleset that `plan` prints into the kernel, in one atomic\n"
    "transaction. When tables inet and bridge bulkhead already have the\n"
    "plan's chains, rules and sets, only the elements that differ change;\n"
    "otherwise (or with --replace) both are replaced whole. Then the flows\n"
    "the new state no longer allows are ended (conntrack), and counted.\n"
    "Needs root or CAP_NET_ADMIN. On any error nothing "
    "changes.\n" INVENTORY_HELP;
static const char usage_diff[] =
    "usage: bulkhead diff -p POLICY [--inventory FILE] [--audit] "
    "[--exit-code]\n"
    "                     [--fqdn NAME=ADDR]... [--resolve] [--dns SERVERS]\n"
    "                     [--docker SOCK]\n"
    "Read tables inet and bridge bulkhead back and print what `apply`\n"
    "would change: elements to add (+) and delete (-), and sets, chains\n"
    "and rules that differ (then apply replaces the table). With\n"
    "--exit-code, exit 1 when there is a difference. Needs root or\n"
    "CAP_NET_ADMIN.\n" INVENTORY_HELP;
static const char usage_run[] =
    "usage: bulkhead run -p POLICY [--docker SOCK] [--audit] [--log FILE]\n"
    "                    [--control PATH] [--control-group GROUP]\n"
    "                    [--resync SECONDS] [--user USER]\n"
    "                    [--dns SERVERS] [--dns-min-ttl SECONDS]\n"
    "                    [--dns-max-ttl SECONDS] [--metrics ADDR]\n"
    "The daemon: follow Docker's events and keep our tables true to\n"
    "the policy. It converges once at start (one atomic batch), then each\n"
    "container start, stop, connect or disconnect is a delta for that\n"
    "container; after any gap (Docker restarting) and every --resync\n"
    "seconds (default 300) it resyncs in full. SIGHUP or `bulkhead\n"
    "reload` re-reads POLICY (a broken file leaves the running policy in\n"
    "force); SIGTERM or SIGINT exit and leave the rules in force. The\n"
    "control socket (default " DAEMON_CONTROL ", mode 0600, or 0660\n"
    "for --control-group) answers status, reload, trace and flows; when\n"
    "POLICY's scopes name owners, it is 0666 and a member of a scope's\n"
    "owners sees that scope alone (others are refused by SO_PEERCRED).\n"
    "Once its sockets and log are open it keeps CAP_NET_ADMIN alone and\n"
    "sets no_new_privs; with --user it runs on as USER (with USER's\n"
    "groups: the docker group for Docker's socket), still holding\n"
    "CAP_NET_ADMIN. POLICY must then be readable, and the log's\n"
    "directory writable, by USER.\n"
    "FQDN peers are resolved (A and AAAA; the system's resolvers or\n"
    "--dns ADDR[:PORT],...) and kept fresh by their TTL, clamped to\n"
    "--dns-min-ttl (default 30) and --dns-max-ttl (default 3600): asked\n"
    "again before it runs out, their elements programmed with a timeout\n"
    "of the TTL and a margin, so that they lapse should the daemon stop.\n"
    "When DNS fails the last good addresses stay, and status says so.\n"
    "Logs go to stderr, one line per event. Denied flows (NFLOG group\n"
    "settings.log_group) go to --log FILE (default " FLOWLOG_DEFAULT ")\n"
    "as JSON lines naming both ends, rotated past 64 MB (5 kept) and\n"
    "reopened on SIGHUP; allowed flows too, where the policy logs them.\n"
    "--metrics ADDR (IPV4:PORT, [IPV6]:PORT or unix:PATH; off by\n"
    "default) serves GET /metrics in Prometheus's text format from the\n"
    "daemon's own loop: flows by verdict and services, allowed flows'\n"
    "bytes, placements, commits, containers per service (see the\n"
    "manual). A unix socket is mode 0600, or 0660 for --control-group.\n";
static const char usage_status[] =
    "usage: bulkhead status [--control PATH] [--json]\n"
    "The daemon's view: services and the containers placed in them with\n"
    "their addresses, containers left unplaced, element counts in the\n"
    "kernel, Docker's state, last sync, events handled, errors, and how\n"
    "long a container start takes to be committed.\n";
static const char usage_reload[] =
    "usage: bulkhead reload [--control PATH]\n"
    "Ask the daemon to re-read its policy file. A broken file is reported\n"
    "(FILE:LINE:COL, exit 2) and the running policy stays in force.\n";
static const char usage_flows[] =
    "usage: bulkhead flows [--log FILE] [--verdict allowed,denied,would-deny]\n"
    "                      [--since 10m|ISO-TIME] [--service S]\n"
    "                      [--container C] [--json | --summary] [--follow]\n"
    "                      [--control SOCK]\n"
    "Read the flow log (default " FLOWLOG_DEFAULT ", its rotated\n"
    "files first): allowed flows' open and close records (with their\n"
    "edge, duration, packets and bytes) beside the denied ones, one line\n"
    "per record, or the records as JSON lines (--json). --verdict keeps\n"
    "those verdicts (a list); --since takes 90s, 10m, 2h, 7d or an ISO\n"
    "time; --service and --container match either end. --summary counts\n"
    "per (source, destination, port, verdict): connections, bytes each\n"
    "way, first and last seen. --follow keeps printing as records\n"
    "arrive (lines or JSON). A log you may not read is read by the\n"
    "daemon (--control SOCK): a scope's owners get their scope's\n"
    "records, the other end shown as its service alone.\n";
static const char usage_denials[] =
    "usage: bulkhead denials [--log FILE] [--since 10m|ISO-TIME]\n"
    "                        [--service S] [--container C]\n"
    "                        [--json | --summary | --suggest [-p POLICY]]\n"
    "                        [--follow] [--control SOCK]\n"
    "The denied part of the flow log (default " FLOWLOG_DEFAULT ",\n"
    "its rotated files first): `bulkhead flows --verdict\n"
    "denied,would-deny`, one line per record, or the records as JSON\n"
    "lines (--json). --since takes 90s, 10m, 2h, 7d or an ISO time;\n"
    "--service and --container match either end. --summary counts per\n"
    "(source, destination, port, reason) with first and last seen;\n"
    "--suggest prints the policy edges that would allow exactly those\n"
    "flows, as YAML to merge, or with -p POLICY that policy with them\n"
    "added. --follow keeps printing as records arrive (lines or JSON).\n"
    "A log you may not read is read by the daemon (--control SOCK).\n";
static const char usage_graph[] =
    "usage: bulkhead graph -p POLICY [--inventory FILE] [--denials FILE]\n"
    "The allowed-peer graph as Graphviz DOT (render it with `dot -Tsvg`):\n"
    "services (with their containers' count from an inventory), the\n"
    "world, the host, CIDR and FQDN peers, each allowed edge labelled\n"
    "with its ports, and, from a denied-flow log, the denied pairs as red\n"
    "dashed edges with their ports and counts.\n";
static const char usage_flush[] =
    "usage: bulkhead flush\n"
    "Remove tables inet bulkhead and bridge bulkhead, and nothing else.\n";

static void usage_all(FILE *f)
{
	fputs("usage: bulkhead COMMAND [OPTIONS]\n\n"
	      "commands:\n"
	      "  check   validate a policy (and an inventory against it)\n"
	      "  plan    dry run: print the nftables ruleset\n"
	      "  trace   explain whether a connection is allowed\n"
	      "  apply   program the ruleset into the kernel, atomically\n"
	      "  diff    what apply would change in the kernel now\n"
	      "  flush   remove everything bulkhead programmed\n"
	      "  run     the daemon: follow Docker, keep the kernel on the "
	      "policy\n"
	      "  status  what the daemon sees and has programmed\n"
	      "  reload  make the daemon re-read its policy\n"
	      "  flows   read the flow log: allowed and denied, with bytes\n"
	      "  denials read the denied-flow log, count it, suggest edges\n"
	      "  graph   the allowed-peer graph (and denied pairs) as DOT\n\n"
	      "`bulkhead COMMAND --help` for each command's options;\n"
	      "`bulkhead --version` for the version.\n",
	      f);
}

static int bad_usage(const char *usage, const char *msg)
{
	if (msg)
		fprintf(stderr, "bulkhead: %s\n", msg);
	fputs(usage, stderr);
	return EXIT_BADINPUT;
}

/* BULKHEAD_TIMINGS=1 prints each phase's wall time to stderr, for the
 * benchmarks. */
static double phase(const char *name, double since)
{
	double now = mono_ms();

	if (name && getenv("BULKHEAD_TIMINGS"))
		fprintf(stderr, "timing: %s %.1f ms\n", name, now - since);
	return now;
}

static int add_fqdn(struct opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct compile_fqdn *f;
	char *name;

	if (!eq || eq == arg)
		return -EINVAL;
	name = xstrndup(arg, (size_t)(eq - arg));
	*PUSH(o->fqdn_names, o->nnames, o->capnames) = name;
	f = PUSH(o->fqdn, o->nfqdn, o->capfqdn);
	f->name = name;
	f->timeout_ms = 0; /* a one-shot apply keeps them */
	return addr_parse(eq + 1, &f->family, &f->addr);
}

static void on_resolved(void *ctx, const char *name, const struct fqdn_addr *a,
			size_t n, unsigned ttl_s, const char *err)
{
	struct opts *o = ctx;
	size_t i;

	(void)ttl_s;
	if (err) {
		fprintf(stderr, "bulkhead: warning: cannot resolve %s: %s\n",
			name, err);
		return;
	}
	*PUSH(o->fqdn_names, o->nnames, o->capnames) = xstrdup(name);
	for (i = 0; i < n; i++)
		*PUSH(o->fqdn, o->nfqdn, o->capfqdn) = (struct compile_fqdn){
		    o->fqdn_names[o->nnames - 1], a[i].family, a[i].addr, 0};
}

/* DNS for fqdn peers, only when asked: a dry run should not depend on the
 * network. The daemon keeps these fresh by TTL. */
static int resolve_fqdns(struct opts *o, const struct policy *p)
{
	struct fqdn_cache c;
	struct dns *d;
	char err[512];
	size_t i;

	fqdn_init(&c, FQDN_MIN_TTL_S, FQDN_MAX_TTL_S);
	fqdn_set_names(&c, p);
	if (c.n && !(d = dns_new(o->dns, err, sizeof(err)))) {
		fprintf(stderr, "bulkhead: %s\n", err);
		fqdn_free(&c);
		return -1;
	}
	for (i = 0; i < c.n; i++)
		dns_ask(d, c.v[i].name, on_resolved, o);
	if (c.n) {
		dns_wait(d);
		dns_free(d);
	}
	fqdn_free(&c);
	return 0;
}

/* A number of seconds, 1 to a day, for option name. */
static int seconds(const char *name, const char *arg, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (*end || !v || v > 86400 || *arg == '-') {
		fprintf(stderr,
			"bulkhead: %s '%s' is not a number of seconds "
			"(1-86400)\n",
			name, arg);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* An option the command does not take, or does not know: said with the
 * command's name, and its usage. */
static int unknown_opt(const char *cmd, const char *usage, const char *arg,
		       bool needs_value)
{
	int n = (int)strcspn(arg, "=");

	if (needs_value)
		fprintf(stderr, "bulkhead %s: option '%.*s' needs a value\n",
			cmd, n, arg);
	else
		fprintf(stderr, "bulkhead %s: unknown option '%.*s'\n", cmd, n,
			arg);
	fputs(usage, stderr);
	return -EINVAL;
}

/* Parses the options of command cmd, which takes those whose letters
 * (the val of each in lo below) are in takes, and --help; any other is
 * refused. Positional arguments are left in o->argc/argv. Returns 0, 1
 * for --help, or -EINVAL. */
static int parse_opts(int argc, char **argv, struct opts *o, const char *cmd,
		      const char *usage, const char *takes)
{
	static const struct option lo[] = {
	    {"policy", required_argument, NULL, 'p'},
	    {"inventory", required_argument, NULL, 'i'},
	    {"format", required_argument, NULL, 'f'},
	    {"audit", no_argument, NULL, 'a'},
	    {"fqdn", required_argument, NULL, 'F'},
	    {"resolve", no_argument, NULL, 'r'},
	    {"dns", required_argument, NULL, 'd'},
	    {"dns-min-ttl", required_argument, NULL, 'T'},
	    {"dns-max-ttl", required_argument, NULL, 'X'},
	    {"replace", no_argument, NULL, 'R'},
	    {"exit-code", no_argument, NULL, 'x'},
	    {"docker", required_argument, NULL, 'D'},
	    {"control", required_argument, NULL, 'C'},
	    {"control-group", required_argument, NULL, 'G'},
	    {"user", required_argument, NULL, 'U'},
	    {"json", no_argument, NULL, 'j'},
	    {"resync", required_argument, NULL, 'S'},
	    {"log", required_argument, NULL, 'L'},
	    {"follow", no_argument, NULL, 'w'},
	    {"summary", no_argument, NULL, 'm'},
	    {"suggest", no_argument, NULL, 'g'},
	    {"since", required_argument, NULL, 's'},
	    {"service", required_argument, NULL, 'e'},
	    {"container", required_argument, NULL, 'c'},
	    {"denials", required_argument, NULL, 'n'},
	    {"verdict", required_argument, NULL, 'V'},
	    {"metrics", required_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char name[32];
	int c, li = -1;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:p:i:h", lo, &li)) != -1) {
		if (c == ':')
			return unknown_opt(cmd, usage, argv[optind - 1], true);
		if (c == '?')
			return unknown_opt(cmd, usage, argv[optind - 1], false);
		if (c != 'h' && !strchr(takes, c)) {
			/* a known option, and its value, read already */
			if (li >= 0)
				snprintf(name, sizeof(name), "--%s",
					 lo[li].name);
			else
				snprintf(name, sizeof(name), "-%c", c);
			return unknown_opt(cmd, usage, name, false);
		}
		li = -1;
		switch (c) {
		case 'p':
			o->policy = optarg;
			break;
		case 'i':
			o->inventory = optarg;
			break;
		case 'f':
			o->format = optarg;
			break;
		case 'a':
			o->audit = true;
			break;
		case 'r':
			o->resolve = true;
			break;
		case 'R':
			o->replace = true;
			break;
		case 'x':
			o->exit_code = true;
			break;
		case 'D':
			o->docker = optarg;
			break;
		case 'C':
			o->control = optarg;
			break;
		case 'U':
			o->user = optarg;
			break;
		case 'G':
			o->control_group = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'L':
			o->log = optarg;
			break;
		case 'w':
			o->follow = true;
			break;
		case 'm':
			o->summary = true;
			break;
		case 'g':
			o->suggest = true;
			break;
		case 's':
			o->since = optarg;
			break;
		case 'e':
			o->service = optarg;
			break;
		case 'c':
			o->container = optarg;
			break;
		case 'n':
			o->denials = optarg;
			break;
		case 'V':
			o->verdict = optarg;
			break;
		case 'M':
			o->metrics = optarg;
			break;
		case 'd':
			o->dns = optarg;
			break;
		case 'S':
		case 'T':
		case 'X':
			if (seconds(c == 'S'   ? "--resync"
				    : c == 'T' ? "--dns-min-ttl"
					       : "--dns-max-ttl",
				    optarg,
				    c == 'S'   ? &o->resync_s
				    : c == 'T' ? &o->dns_min_ttl
					       : &o->dns_max_ttl))
				return -EINVAL;
			break;
		case 'F':
			if (add_fqdn(o, optarg)) {
				fprintf(stderr,
					"bulkhead: --fqdn '%s' is not "
					"NAME=ADDRESS\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	return 0;
}

static void opts_free(struct opts *o)
{
	size_t i;

	for (i = 0; i < o->nnames; i++)
		free(o->fqdn_names[i]);
	free(o->fqdn_names);
	free(o->fqdn);
}

/* Everything one command holds, freed in one place. */
struct job {
	struct opts o;
	const char *inv_name; /* the inventory file, or "docker" */
	struct policy *p;
	struct inventory *inv;
	struct compiler *cc;
	struct ir_ruleset *rs;
	struct kernel *k;
	struct diags d;
	struct strbuf out;
};

static void job_free(struct job *j)
{
	kernel_close(j->k);
	sb_free(&j->out);
	diags_free(&j->d);
	ir_free(j->rs);
	compile_free(j->cc);
	inventory_free(j->inv);
	policy_free(j->p);
	opts_free(&j->o);
}

/* Each endpoint bound to its bridge port as this host's kernel shows it
 * (on another host, a plan binds none and its identity sets are empty). */
static void bind_ports(struct inventory *inv, struct diags *d)
{
	char err[256];
	struct ports *p = ports_new(err, sizeof(err));
	int r;

	if (!p) {
		diags_add(d, DIAG_WARNING, "bulkhead", 0, 0,
			  "no container bound to its bridge port: %s", err);
		return;
	}
	r = ports_bind(p, inv, d);
	if (r < 0)
		diags_add(d, DIAG_WARNING, "bulkhead", 0, 0,
			  "no container bound to its bridge port: %s",
			  strerror(-r));
	ports_free(p);
}

/* Loads the policy and (when given, or when need_inv) the inventory, and
 * prints their diagnostics. Returns an exit status: 0 when all loaded. */
static int job_load(struct job *j, bool need_inv, const char *usage)
{
	int ret = 0;

	char err[600];
	const char *sock;

	if (!j->o.policy)
		return bad_usage(usage, "-p POLICY is required");
	j->p = policy_load(j->o.policy, &j->d);
	j->inv_name = j->o.inventory;
	if (!j->p)
		ret = EXIT_BADINPUT;
	else if (j->o.inventory) {
		j->inv = inventory_new();
		if (inventory_load(j->inv, j->o.inventory, &j->d))
			ret = EXIT_BADINPUT;
	} else if (need_inv) {
		/* the live Docker API stands in for the file */
		j->inv_name = "docker";
		sock = docker_sock_path(j->o.docker, err, sizeof(err));
		if (!sock) {
			fprintf(stderr, "bulkhead: %s\n", err);
			ret = EXIT_BADINPUT;
		} else if (docker_snapshot_wait(sock, &j->inv, err,
						sizeof(err))) {
			fprintf(stderr, "bulkhead: %s\n", err);
			ret = EXIT_FAILURE;
		}
	}
	if (!ret && j->inv)
		bind_ports(j->inv, &j->d);
	diags_print(&j->d, stderr);
	diags_free(&j->d);
	return ret;
}

/* Compiles the loaded policy and inventory (resolving FQDN peers first
 * when --resolve asks for it); prints diagnostics. */
static int job_compile(struct job *j)
{
	struct compile_opts co = {.audit = j->o.audit};

	if (j->o.resolve && resolve_fqdns(&j->o, j->p))
		return EXIT_BADINPUT;
	co.fqdn = j->o.fqdn;
	co.nfqdn = j->o.nfqdn;
	j->cc = compile_new(j->p, &co);
	j->rs = compile_ruleset(j->cc, j->inv, j->inv_name, &j->d);
	diags_print(&j->d, stderr);
	diags_free(&j->d);
	return j->rs ? 0 : EXIT_BADINPUT;
}

static int cmd_check(int argc, char **argv)
{
	struct job j = {0};
	int r, ret;

	r = parse_opts(argc, argv, &j.o, "check", usage_check, "pi");
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (j.o.argc)
		return bad_usage(usage_check, "unexpected argument");
	ret = job_load(&j, false, usage_check);
	if (!ret && j.inv) {
		j.cc = compile_new(j.p, NULL);
		if (compile_check(j.cc, j.inv, j.o.inventory, &j.d))
			ret = EXIT_BADINPUT;
		diags_print(&j.d, stderr);
	}
	if (!ret && j.inv)
		printf("%s: ok: %zu services, %zu edges, %zu containers\n",
		       j.o.policy, j.p->nservices, j.p->nedges, j.inv->n);
	else if (!ret)
		printf("%s: ok: %zu services, %zu edges\n", j.o.policy,
		       j.p->nservices, j.p->nedges);
	job_free(&j);
	return ret;
}

static int cmd_plan(int argc, char **argv)
{
	struct job j = {0};
	char *comment = NULL;
	double t = phase(NULL, 0);
	int r, ret;

	r = parse_opts(argc, argv, &j.o, "plan", usage_plan, "pifaFrdD");
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (j.o.argc)
		return bad_usage(usage_plan, "unexpected argument");
	if (j.o.format && strcmp(j.o.format, "nft") &&
	    strcmp(j.o.format, "json"))
		return bad_usage(usage_plan, "--format is nft or json");
	ret = job_load(&j, true, usage_plan);
	if (ret)
		goto out;
	t = phase("load", t);
	ret = job_compile(&j);
	if (ret)
		goto out;
	t = phase("compile", t);
	if (j.o.format && !strcmp(j.o.format, "json")) {
		render_json(j.rs, &j.out);
	} else {
		comment = xasprintf("bulkhead plan: policy %s, %zu containers",
				    j.o.policy, j.inv->n);
		render_nft(j.rs, comment, &j.out);
	}
	t = phase("render", t);
	if (fwrite(j.out.s, 1, j.out.len, stdout) != j.out.len ||
	    fflush(stdout)) {
		fprintf(stderr, "bulkhead: write failed: %s\n",
			strerror(errno));
		ret = EXIT_FAILURE;
	}
	phase("write", t);
out:
	free(comment);
	job_free(&j);
	return ret;
}

/* Sends one request to the daemon; the reply as JSON, or NULL (said). */
static json_t *ask_daemon(const struct opts *o, json_t *req)
{
	char *q = json_dumps(req, JSON_COMPACT), *reply = NULL, err[600];
	json_t *rep = NULL;

	if (control_request(o->control ? o->control : DAEMON_CONTROL, q, &reply,
			    err, sizeof(err)))
		fprintf(stderr, "bulkhead: %s\n", err);
	else if (!(rep = json_loads(reply, 0, NULL)))
		fprintf(stderr, "bulkhead: the daemon's answer is not JSON\n");
	else if (json_object_size(rep) == 1 &&
		 json_string_value(json_object_get(rep, "error"))) {
		/* refused before any request was read */
		fprintf(stderr, "bulkhead: %s\n",
			json_string_value(json_object_get(rep, "error")));
		json_decref(rep);
		rep = NULL;
	}
	free(q);
	free(reply);
	json_decref(req);
	return rep;
}

static void print_strings(json_t *arr, FILE *f, const char *prefix)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
	    fprintf(f, "%s%s\n", prefix, json_string_value(v));
}

static int trace_daemon(const struct opts *o)
{
	json_t *rep = ask_daemon(o, json_pack("{s:s, s:s, s:s, s:s}", "cmd",
					      "trace", "src", o->argv[0], "dst",
					      o->argv[1], "port", o->argv[2]));
	int ret;

	if (!rep)
		return EXIT_FAILURE;
	fputs(json_string_value(json_object_get(rep, "output")) ?: "", stdout);
	print_strings(json_object_get(rep, "errors"), stderr, "bulkhead: ");
	if (json_string_value(json_object_get(rep, "error")))
		fprintf(stderr, "bulkhead: %s\n",
			json_string_value(json_object_get(rep, "error")));
	ret = json_is_true(json_object_get(rep, "ok")) ? 0 : EXIT_BADINPUT;
	json_decref(rep);
	return ret;
}

static int cmd_trace(int argc, char **argv)
{
	struct job j = {0};
	int r, ret;

	r = parse_opts(argc, argv, &j.o, "trace", usage_trace, "piC");
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (j.o.argc != 3)
		return bad_usage(usage_trace, "expected SRC DST PORT/PROTO");
	if (!j.o.inventory) {
		ret = trace_daemon(&j.o);
		job_free(&j);
		return ret;
	}
	ret = job_load(&j, true, usage_trace);
	if (!ret)
		ret = job_compile(&j);
	if (!ret) {
		r = trace_run(j.cc, j.p, j.rs, j.inv, j.o.argv[0], j.o.argv[1],
			      j.o.argv[2], &j.out, &j.d);
		if (r >= 0)
			fputs(j.out.s, stdout);
		ret = r == -EFAULT ? EXIT_FAILURE : r < 0 ? EXIT_BADINPUT : 0;
		diags_print(&j.d, stderr);
	}
	job_free(&j);
	return ret;
}

static int kernel_status(int r, const char *err)
{
	if (!r)
		return 0;
	fprintf(stderr, "bulkhead: %s\n", err);
	if (r == -EPERM || r == -EACCES)
		fputs("bulkhead: programming nftables needs root or "
		      "CAP_NET_ADMIN\n",
		      stderr);
	return EXIT_FAILURE;
}

/* Bridged traffic reaches the inet hooks only with br_netfilter's two
 * switches on, one per family: both are turned on (as Docker does), and
 * when one cannot be, the operator hears why and what to run. */
static void check_br_netfilter(void)
{
	static const struct {
		const char *name, *what;
	} sw[] = {{"bridge-nf-call-iptables", "IPv4"},
		  {"bridge-nf-call-ip6tables", "IPv6"}};
	char path[96];
	size_t i;
	int r, err;

	for (i = 0; i < sizeof(sw) / sizeof(sw[0]); i++) {
		snprintf(path, sizeof(path), "/proc/sys/net/bridge/%s",
			 sw[i].name);
		if ((r = sysctl_turn_on(path)) > 0)
			continue;
		err = -r;
		if (!err) {
			fprintf(stderr,
				"bulkhead: net.bridge.%s was off: turned it "
				"on, so that %s between containers on one "
				"bridge is filtered\n",
				sw[i].name, sw[i].what);
			continue;
		}
		fprintf(stderr,
			"bulkhead: warning: net.bridge.%s is off and could "
			"not be turned on (%s): %s traffic between containers "
			"on one bridge is NOT filtered. Run: modprobe "
			"br_netfilter && sysctl -w "
			"net.bridge.bridge-nf-call-iptables=1 "
			"net.bridge.bridge-nf-call-ip6tables=1\n",
			sw[i].name, strerror(err), sw[i].what);
	}
}

/* A chain's rules side by side, position by position: equal rules as
 * context, the others as '-' (kernel) and '+' (plan). */
static void print_rules(const struct ir_chain *have,
			const struct ir_chain *want, FILE *f)
{
	struct strbuf sb = {0};
	size_t i;

	for (i = 0; i < have->n || i < want->n; i++) {
		bool same = i < have->n && i < want->n &&
			    ir_rule_eq(&have->r[i], &want->r[i]);

		if (i < have->n) {
			sb.len = 0;
			render_rule(&have->r[i], &sb);
			fprintf(f, "  %c %s\n", same ? ' ' : '-', sb.s);
		}
		if (i < want->n && !same) {
			sb.len = 0;
			render_rule(&want->r[i], &sb);
			fprintf(f, "  + %s\n", sb.s);
		}
	}
	sb_free(&sb);
}

/* The differences, one line each, like a unified diff of nft objects:
 * '-' only in the kernel, '+' only in the plan, '~' in both but unlike. */
static void print_diff(const struct ir_ruleset *want,
		       const struct ir_ruleset *have, const struct ir_diff *d,
		       FILE *f)
{
	struct strbuf sb = {0};
	size_t i;

	for (i = 0; i < d->nitems; i++) {
		const char *n = d->items[i].name;

		switch (d->items[i].kind) {
		case IRD_TABLE_MISSING:
			fprintf(f, "+ table inet %s (not in the kernel)\n", n);
			break;
		case IRD_BRIDGE_MISSING:
			fprintf(f, "+ table bridge %s (not in the kernel)\n",
				n);
			break;
		case IRD_TABLE_DORMANT:
			fprintf(f,
				"~ table inet %s is dormant: its rules "
				"filter nothing\n",
				n);
			break;
		case IRD_SET_MISSING:
			fprintf(f, "+ set %s\n", n);
			break;
		case IRD_SET_EXTRA:
			fprintf(f, "- set %s\n", n);
			break;
		case IRD_SET_CHANGED:
			sb.len = 0;
			render_set_type(ir_set_find(have, n), &sb);
			sb_puts(&sb, " -> ");
			render_set_type(ir_set_find(want, n), &sb);
			fprintf(f, "~ set %s: %s\n", n, sb.s);
			break;
		case IRD_CHAIN_MISSING:
			fprintf(f, "+ chain %s\n", n);
			break;
		case IRD_CHAIN_EXTRA:
			fprintf(f, "- chain %s\n", n);
			break;
		case IRD_CHAIN_CHANGED:
			fprintf(f,
				"~ chain %s: hook, priority, type or "
				"policy differs\n",
				n);
			break;
		case IRD_RULES_CHANGED:
			fprintf(f, "~ chain %s: rules differ\n", n);
			print_rules(ir_chain_find(have, n),
				    ir_chain_find(want, n), f);
			break;
		}
	}
	for (i = 0; i < d->elems.n; i++) {
		const struct ir_change *c = &d->elems.v[i];

		sb.len = 0;
		render_elem(&want->sets[c->set], &c->e, &sb);
		fprintf(f, "%c element %s { %s }\n", c->add ? '+' : '-',
			c->set_name, sb.s);
	}
	sb_free(&sb);
}

/* Opens the job's netlink socket; 0 or a negative errno. */
static int job_kernel(struct job *j, char *err, size_t errlen)
{
	if (!j->k && !(j->k = kernel_open(err, errlen)))
		return errno ? -errno : -EIO;
	return 0;
}

/* Reads our table back (its generation in *gen) and compares it with
 * the job's ruleset. 0 or a negative errno, with a message in err. */
static int job_diff(struct job *j, struct ir_ruleset **have, uint32_t *gen,
		    struct ir_diff *d, char *err, size_t errlen)
{
	int r = job_kernel(j, err, errlen);

	if (!r)
		r = kernel_read(j->k, j->rs->table, have, gen, err, errlen);
	if (!r)
		ir_diff(j->rs, *have, d);
	return r;
}

static int cmd_diff(int argc, char **argv)
{
	struct job j = {0};
	struct ir_ruleset *have = NULL;
	struct ir_diff d = {0};
	char err[512];
	int r, ret;

	r = parse_opts(argc, argv, &j.o, "diff", usage_diff, "piaxFrdD");
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (j.o.argc)
		return bad_usage(usage_diff, "unexpected argument");
	ret = job_load(&j, true, usage_diff);
	if (!ret)
		ret = job_compile(&j);
	if (!ret)
		ret = kernel_status(
		    job_diff(&j, &have, NULL, &d, err, sizeof(err)), err);
	if (!ret) {
		print_diff(j.rs, have, &d, stdout);
		if (!d.nitems && !d.elems.n)
			printf("diff: the kernel holds the plan (%zu "
			       "elements)\n",
			       ir_element_count(j.rs));
		else if (!d.nitems)
			printf("diff: %zu elements to add, %zu to delete; "
			       "apply changes elements only\n",
			       d.nadd, d.ndel);
		else
			printf("diff: %zu structural differences; apply "
			       "replaces the table\n",
			       d.nitems);
		if (j.o.exit_code && (d.nitems || d.elems.n))
			ret = EXIT_FAILURE;
	}
	ir_diff_free(&d);
	ir_free(have);
	job_free(&j);
	return ret;
}

/* Converges the kernel on the job's ruleset (kernel_sync) and says how. */
struct family_count {
	size_t chains, sets, elements;
};

static struct family_count count_family(const struct ir_ruleset *rs,
					enum ir_family f)
{
	struct family_count c = {0};
	size_t i;

	for (i = 0; i < rs->nchains; i++)
		c.chains += rs->chains[i].family == f;
	for (i = 0; i < rs->nsets; i++)
		if (rs->sets[i].family == f) {
			c.sets++;
			c.elements += rs->sets[i].n;
		}
	return c;
}

/* Ports with an endpoint bound (bound), or policed with none. */
static size_t bound_ports(const struct ir_ruleset *rs, bool bound)
{
	const struct ir_set *ports = ir_set_find(rs, "id_ports"),
			    *mac = ir_set_find(rs, "id_mac");
	size_t nmac = mac ? mac->n : 0, nports = ports ? ports->n : 0;

	return bound ? nmac : nports > nmac ? nports - nmac : 0;
}

/* The flows the applied state no longer allows end now (in audit mode
 * nothing is denied, so nothing ends). */
static int revoke_flows(struct job *j, char *err, size_t errlen)
{
	struct revoke_judge jd = {.cc = j->cc, .p = j->p, .inv = j->inv};
	struct revoke_result res;
	struct revoke_addr *host;
	struct trace_index *ix;
	struct revoke *rv;
	int r;

	if (j->o.audit || j->p->mode == POL_AUDIT)
		return 0;
	rv = revoke_new(err, errlen);
	if (!rv)
		return -EIO;
	ix = trace_index_new(j->cc, j->p, j->inv);
	host = revoke_host_addrs(&jd.nhost);
	jd.ix = ix;
	jd.rs = j->rs;
	jd.host = host;
	r = revoke_sweep(rv, &jd, &res, err, errlen);
	if (!r)
		printf("revoked %zu flow%s (of %zu tracked)%s%s\n", res.ended,
		       res.ended == 1 ? "" : "s", res.seen,
		       res.pairs.s ? ": " : "", res.pairs.s ? res.pairs.s : "");
	sb_free(&res.pairs);
	free(host);
	trace_index_free(ix);
	revoke_free(rv);
	return r;
}

static int job_apply(struct job *j, char *err, size_t errlen)
{
	struct kernel_sync res;
	int r = job_kernel(j, err, errlen);

	if (!r)
		r = kernel_sync(j->k, j->rs, j->o.replace, &res, err, errlen);
	if (r)
		return r;
	if (res.replaced) {
		struct family_count in = count_family(j->rs, IRF_INET);

		printf("applied: table inet %s, %zu chains, %zu sets, "
		       "%zu elements, %zu containers; table bridge %s, %zu "
		       "endpoints bound to their ports, %zu ports that pass "
		       "nothing\n",
		       j->rs->table, in.chains, in.sets, in.elements, j->inv->n,
		       j->rs->table, bound_ports(j->rs, true),
		       bound_ports(j->rs, false));
	} else if (!res.nadd && !res.ndel)
		printf("applied: table inet %s already holds the plan (%zu "
		       "elements, %zu containers)\n",
		       j->rs->table, ir_element_count(j->rs), j->inv->n);
	else
		printf("applied: %zu elements added, %zu deleted; chains, "
		       "rules and sets were in place\n",
		       res.nadd, res.ndel);
	return revoke_flows(j, err, errlen);
}

static int cmd_apply(int argc, char **argv)
{
	struct job j = {0};
	char err[512];
	double t = phase(NULL, 0);
	int r, ret;

	r = parse_opts(argc, argv, &j.o, "apply", usage_apply, "piaRFrdD");
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (j.o.argc)
		return bad_usage(usage_apply, "unexpected argument");
	ret = job_load(&j, true, usage_apply);
	t = phase("load", t);
	if (!ret)
		ret = job_compile(&j);
	t = phase("compile", t);
	if (!ret) {
		ret = kernel_status(job_apply(&j, err, sizeof(err)), err);
		phase("kernel", t);
		if (!ret)
			check_br_netfilter();
	}
	job_free(&j);
	return ret;
}

static int cmd_flush(int argc, char **argv)
{
	struct job j = {0};
	char err[512];
	int r;

	r = parse_opts(argc, argv, &j.o, "flush", usage_flush, "");
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (j.o.argc)
		return bad_usage(usage_flush, "unexpected argument");
	r = job_kernel(&j, err, sizeof(err));
	if (!r)
		r = kernel_flush(j.k, COMPILE_TABLE, err, sizeof(err));
	r = kernel_status(r, err);
	job_free(&j);
	return r;
}

static int cmd_run(int argc, char **argv)
{
	struct opts o = {0};
	struct daemon_opts d = {0};
	char err[600];
	int r = parse_opts(argc, argv, &o, "run", usage_run, "pDaLCGSUdTXM");

	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (o.argc)
		r = bad_usage(usage_run, "unexpected argument");
	else if (!o.policy)
		r = bad_usage(usage_run, "-p POLICY is required");
	else if (o.dns_min_ttl && o.dns_max_ttl &&
		 o.dns_min_ttl > o.dns_max_ttl)
		r = bad_usage(usage_run, "--dns-min-ttl exceeds --dns-max-ttl");
	else if ((o.metrics &&
		  scrape_addr_check(o.metrics, err, sizeof(err))) ||
		 !(d.docker = docker_sock_path(o.docker, err, sizeof(err)))) {
		fprintf(stderr, "bulkhead: %s\n", err);
		r = EXIT_BADINPUT;
	} else {
		d.policy = o.policy;
		d.metrics = o.metrics;
		d.version = BULKHEAD_RELEASE BULKHEAD_COMMIT;
		d.control = o.control ? o.control : DAEMON_CONTROL;
		d.control_group = o.control_group;
		d.user = o.user;
		d.audit = o.audit;
		d.resync_s = o.resync_s ? o.resync_s : DAEMON_RESYNC_S;
		d.dns = o.dns;
		d.dns_min_ttl = o.dns_min_ttl ? o.dns_min_ttl : FQDN_MIN_TTL_S;
		d.dns_max_ttl = o.dns_max_ttl ? o.dns_max_ttl : FQDN_MAX_TTL_S;
		if (d.dns_max_ttl < d.dns_min_ttl)
			d.dns_max_ttl = d.dns_min_ttl;
		d.log = o.log ? o.log : FLOWLOG_DEFAULT;
		d.log_max = DAEMON_LOG_MAX;
		check_br_netfilter();
		r = daemon_run(&d);
	}
	opts_free(&o);
	return r;
}

static int cmd_status(int argc, char **argv)
{
	struct opts o = {0};
	struct control_status st = {0};
	json_t *rep;
	int r = parse_opts(argc, argv, &o, "status", usage_status, "Cj");

	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (o.argc)
		return bad_usage(usage_status, "unexpected argument");
	rep = ask_daemon(&o, json_pack("{s:s}", "cmd", "status"));
	if (rep && o.json)
		json_dumpf(rep, stdout, JSON_INDENT(2)), putchar('\n');
	else if (rep && !control_status_parse(rep, &st))
		control_status_print(&st, stdout);
	else if (rep)
		fprintf(stderr, "bulkhead: %s\n",
			json_string_value(json_object_get(rep, "error"))
			    ?: "the daemon's answer is not a status");
	r = rep && (o.json || st.policy) ? 0 : EXIT_FAILURE;
	control_status_free(&st);
	json_decref(rep);
	opts_free(&o);
	return r;
}

struct reader {
	const struct opts *o;
	struct denials_filter f;
	struct denials_summary *sum;
	struct strbuf sb;
	size_t shown;
	/* the file being read, its lines so far, and the lines that were
	 * no flow record (damaged, or not ours), in every file */
	const char *path;
	unsigned long lineno, skipped;
};

/* f, named path, is read from its start. */
static void reader_at(struct reader *r, const char *path)
{
	r->path = path;
	r->lineno = 0;
}

static void one_record(struct reader *r, const char *line, size_t len)
{
	json_t *rec = json_loadb(line, len, 0, NULL);

	r->lineno++;
	if (!json_is_object(rec) ||
	    !json_is_string(json_object_get(rec, "verdict"))) {
		/* said, counted, and the reading goes on */
		fprintf(stderr, "%s:%lu: warning: not a flow record, skipped\n",
			r->path ? r->path : "-", r->lineno);
		r->skipped++;
		json_decref(rec);
		return;
	}
	if (!denials_match(rec, &r->f)) {
		json_decref(rec);
		return;
	}
	if (r->sum) {
		denials_summary_add(r->sum, rec);
	} else if (r->o->json) {
		fwrite(line, 1, len, stdout);
		putchar('\n');
	} else {
		r->sb.len = 0;
		if (!r->shown) {
			denials_header(&r->sb);
			sb_putc(&r->sb, '\n');
		}
		denials_format(rec, &r->sb);
		puts(r->sb.s);
	}
	r->shown++;
	json_decref(rec);
}

/* Every complete line of f from where it is; returns the bytes read. */
static long read_lines(struct reader *r, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long total = 0;

	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n') {
			/* a record being written: read it whole next time */
			fseek(f, -n, SEEK_CUR);
			break;
		}
		total += n;
		one_record(r, line, (size_t)n - 1);
	}
	clearerr(f);
	free(line);
	return total;
}

/* The live log's records through the daemon, for a caller that may not
 * read the file: a scope's owners get their scope's records (the other
 * end as its service alone). 0, or EXIT_FAILURE (said). */
static int flows_daemon(struct reader *rd, const struct opts *o)
{
	json_int_t from = 0;
	json_t *rep, *v;
	bool more;
	size_t i;

	reader_at(rd, "daemon");
	do {
		rep = ask_daemon(
		    o, json_pack("{s:s, s:I}", "cmd", "flows", "from", from));
		if (!rep)
			return EXIT_FAILURE;
		if (!json_is_true(json_object_get(rep, "ok"))) {
			fprintf(stderr, "bulkhead: %s\n",
				json_string_value(json_object_get(rep, "error"))
				    ?: "the daemon refused");
			json_decref(rep);
			return EXIT_FAILURE;
		}
		json_array_foreach(json_object_get(rep, "lines"), i, v)
		    one_record(rd, json_string_value(v), json_string_length(v));
		more = json_is_true(json_object_get(rep, "more"));
		/* --follow: ask again for what came since */
		if (json_integer_value(json_object_get(rep, "next")) == from &&
		    o->follow) {
			fflush(stdout);
			sleep(1);
		}
		from = json_integer_value(json_object_get(rep, "next"));
		json_decref(rep);
	} while (more || o->follow);
	return 0;
}

/* `flows` (all verdicts, or --verdict's) and `denials` (the denied ones,
 * and --suggest): the flow log read, filtered, shown or counted. */
static int read_flow_log(int argc, char **argv, bool flows)
{
	const char *usage = flows ? usage_flows : usage_denials;
	struct opts o = {0};
	struct reader rd = {.o = &o};
	struct policy *p = NULL;
	struct diags dg = {0};
	struct timespec ts;
	const char *log;
	FILE *f = NULL;
	bool via_daemon;
	int r = parse_opts(argc, argv, &o, flows ? "flows" : "denials", usage,
			   flows ? "LsecjmwVC" : "LsecjmgpwC"),
	    i;

	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (o.argc)
		return bad_usage(usage, "unexpected argument");
	if ((o.summary || o.suggest) && (o.follow || o.json))
		return bad_usage(usage, "--summary and --suggest count "
					"what is there: no --follow or "
					"--json with them");
	rd.f.verdicts = flows ? 0 : FLOWS_DENIED | FLOWS_WOULD_DENY;
	if (o.verdict && !(rd.f.verdicts = denials_verdicts(o.verdict)))
		return bad_usage(usage, "--verdict takes a list of allowed, "
					"denied and would-deny");
	log = o.log ? o.log : FLOWLOG_DEFAULT;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (o.since &&
	    denials_since(o.since, (int64_t)ts.tv_sec * 1000, &rd.f.since_ms))
		return bad_usage(usage, "--since takes 90s, 10m, 2h, "
					"7d or an ISO time");
	rd.f.service = o.service;
	rd.f.container = o.container;
	if (o.suggest && o.policy) {
		p = policy_load(o.policy, &dg);
		diags_print(&dg, stderr);
		diags_free(&dg);
		if (!p)
			return EXIT_BADINPUT;
	}
	if (o.summary || o.suggest)
		rd.sum = denials_summary_new();
	/* a file we may not read: the daemon reads it for us */
	via_daemon = access(log, R_OK) && errno == EACCES;
	if (via_daemon) {
		r = flows_daemon(&rd, &o);
		if (r)
			goto out;
		o.follow = false;
	}
	/* the rotated files, oldest first, then the live one */
	for (i = FLOWLOG_KEEP; i >= 0 && !via_daemon; i--) {
		char *path = flowlog_rotated(log, (unsigned)i);

		f = fopen(path, "r");
		reader_at(&rd, i ? path : log); /* log outlives path */
		if (!f && !i && !o.follow) {
			fprintf(stderr, "bulkhead: %s: %s\n", path,
				strerror(errno));
			free(path);
			r = EXIT_FAILURE;
			goto out;
		}
		if (f)
			read_lines(&rd, f);
		if (f && (i || !o.follow)) {
			fclose(f);
			f = NULL;
		}
		free(path);
	}
	fflush(stdout);
	while (o.follow) {
		struct stat a, b;

		/* rotated or created meanwhile: start the new file over */
		if (stat(log, &a) == 0 &&
		    (!f || fstat(fileno(f), &b) || a.st_ino != b.st_ino ||
		     a.st_size < ftell(f))) {
			if (f) {
				read_lines(&rd, f);
				fclose(f);
			}
			f = fopen(log, "r");
			reader_at(&rd, log);
		}
		if (f)
			read_lines(&rd, f);
		fflush(stdout);
		usleep(200 * 1000);
	}
	if (o.summary) {
		denials_summary_print(rd.sum, flows, &rd.sb);
		fputs(rd.sb.s ? rd.sb.s : "", stdout);
		if (rd.skipped)
			printf("%lu unreadable line%s skipped (not a flow "
			       "record; named on standard error)\n",
			       rd.skipped, rd.skipped == 1 ? "" : "s");
	} else if (o.suggest) {
		rd.sb.len = 0;
		denials_suggest(rd.sum, p, &rd.sb);
		fputs(rd.sb.s ? rd.sb.s : "", stdout);
	} else if (!rd.shown && !o.json)
		fprintf(stderr, "bulkhead: no %sflows in %s%s\n",
			flows ? "" : "denied ", log,
			o.since || o.service || o.container || o.verdict
			    ? " that match"
			    : "");
out:
	if (f)
		fclose(f);
	denials_summary_free(rd.sum);
	sb_free(&rd.sb);
	policy_free(p);
	opts_free(&o);
	return r;
}

static int cmd_flows(int argc, char **argv)
{
	return read_flow_log(argc, argv, true);
}

static int cmd_denials(int argc, char **argv)
{
	return read_flow_log(argc, argv, false);
}

struct pairs {
	struct graph_denied *v;
	size_t n, cap;
};

static void add_pair(void *ctx, const char *src, const char *dst,
		     const char *ports, unsigned long count)
{
	struct pairs *ps = ctx;

	*PUSH(ps->v, ps->n, ps->cap) = (struct graph_denied){
	    xstrdup(src), xstrdup(dst), xstrdup(ports), count};
}

static int cmd_graph(int argc, char **argv)
{
	struct job j = {0};
	struct reader rd = {.o = &j.o};
	struct pairs ps = {0};
	FILE *f = NULL;
	size_t i;
	int r, ret;

	r = parse_opts(argc, argv, &j.o, "graph", usage_graph, "pin");
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (j.o.argc)
		return bad_usage(usage_graph, "unexpected argument");
	ret = job_load(&j, false, usage_graph);
	if (!ret && j.o.denials) {
		f = fopen(j.o.denials, "r");
		if (!f) {
			fprintf(stderr, "bulkhead: %s: %s\n", j.o.denials,
				strerror(errno));
			ret = EXIT_FAILURE;
		} else {
			rd.sum = denials_summary_new();
			/* a flow log's denied records: the red edges */
			rd.f.verdicts = FLOWS_DENIED | FLOWS_WOULD_DENY;
			reader_at(&rd, j.o.denials);
			read_lines(&rd, f);
			fclose(f);
			denials_summary_pairs(rd.sum, add_pair, &ps);
		}
	}
	if (!ret) {
		if (j.inv)
			j.cc = compile_new(j.p, NULL);
		graph_dot(j.p, j.cc, j.inv, ps.v, ps.n, &j.out);
		fputs(j.out.s, stdout);
	}
	for (i = 0; i < ps.n; i++) {
		free((char *)ps.v[i].src);
		free((char *)ps.v[i].dst);
		free((char *)ps.v[i].ports);
	}
	free(ps.v);
	denials_summary_free(rd.sum);
	sb_free(&rd.sb);
	job_free(&j);
	return ret;
}

static int cmd_reload(int argc, char **argv)
{
	struct opts o = {0};
	json_t *rep;
	int r = parse_opts(argc, argv, &o, "reload", usage_reload, "C");

	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (o.argc)
		return bad_usage(usage_reload, "unexpected argument");
	rep = ask_daemon(&o, json_pack("{s:s}", "cmd", "reload"));
	if (!rep) {
		opts_free(&o);
		return EXIT_FAILURE;
	}
	print_strings(json_object_get(rep, "errors"), stderr, "");
	r = (int)json_integer_value(json_object_get(rep, "exit"));
	if (!r)
		printf("reloaded: %lld services, %lld edges\n",
		       (long long)json_integer_value(
			   json_object_get(rep, "services")),
		       (long long)json_integer_value(
			   json_object_get(rep, "edges")));
	else
		fprintf(stderr, "bulkhead: reload failed; the running policy "
				"stays in force\n");
	json_decref(rep);
	opts_free(&o);
	return r == 2 ? EXIT_BADINPUT : r ? EXIT_FAILURE : 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
    {"check", cmd_check},     {"plan", cmd_plan},     {"trace", cmd_trace},
    {"apply", cmd_apply},     {"diff", cmd_diff},     {"flush", cmd_flush},
    {"run", cmd_run},	      {"status", cmd_status}, {"reload", cmd_reload},
    {"denials", cmd_denials}, {"flows", cmd_flows},   {"graph", cmd_graph},
};

int main(int argc, char **argv)
{
	size_t i;

	if (argc == 2 &&
	    (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
		printf("bulkhead %s%s\n", BULKHEAD_RELEASE, BULKHEAD_COMMIT);
		return 0;
	}
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage_all(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_BADINPUT : 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			exit(commands[i].fn(argc - 1, argv + 1));
	fprintf(stderr, "bulkhead: unknown command '%s'\n", argv[1]);
	usage_all(stderr);
	return EXIT_BADINPUT;
}
