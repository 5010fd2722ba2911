/* The bulkhead command line: a table of subcommands, each parsing its own
 * options and calling the modules. The only place that exits, and the
 * only place that turns results into exit statuses (0 ok, 1 runtime
 * failure, 2 bad input). */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "bulkhead/compile.h"
#include "bulkhead/inventory.h"
#include "bulkhead/policy.h"
#include "bulkhead/render.h"
#include "bulkhead/trace.h"

#define EXIT_BADINPUT 2

struct opts {
	const char *policy, *inventory, *format;
	bool audit, resolve;
	struct compile_fqdn *fqdn;
	size_t nfqdn, capfqdn;
	char **fqdn_names;
	size_t nnames, capnames;
	int argc;
	char **argv; /* positional arguments */
};

static const char usage_check[] =
    "usage: bulkhead check -p POLICY [--inventory FILE]\n"
    "Validate POLICY; with an inventory (the output of `docker inspect\n"
    "$(docker ps -q)`), also report containers matching two services\n"
    "(an error) or none (a warning).\n";
static const char usage_plan[] =
    "usage: bulkhead plan -p POLICY --inventory FILE [--format nft|json]\n"
    "                     [--audit] [--fqdn NAME=ADDR]... [--resolve]\n"
    "Dry run: print exactly what would be programmed, as an `nft -f`\n"
    "script (default) or as the IR in JSON. FQDN peers take their\n"
    "addresses from --fqdn, or from DNS with --resolve.\n";
static const char usage_trace[] =
    "usage: bulkhead trace -p POLICY --inventory FILE SRC DST PORT/PROTO\n"
    "SRC and DST are container names or ids, service names, IP\n"
    "addresses, or 'host' (DST only). Prints allowed or denied and the\n"
    "edge (file:line) or default that decides. Exit 0 either way.\n";

static void usage_all(FILE *f)
{
	fputs("usage: bulkhead COMMAND [OPTIONS]\n\n"
	      "commands:\n"
	      "  check   validate a policy (and an inventory against it)\n"
	      "  plan    dry run: print the nftables ruleset\n"
	      "  trace   explain whether a connection is allowed\n\n"
	      "`bulkhead COMMAND --help` for each command's options.\n",
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
	struct timespec ts;
	double now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
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
	return addr_parse(eq + 1, &f->family, &f->addr);
}

/* DNS for fqdn peers, only when asked: a dry run should not depend on the
 * network. The daemon keeps these fresh by TTL. */
static void resolve_fqdns(struct opts *o, const struct policy *p)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	size_t i;
	int r;

	for (i = 0; i < p->nedges; i++) {
		const char *name = p->edges[i].dst.fqdn;

		if (p->edges[i].dst.kind != PEER_FQDN)
			continue;
		r = getaddrinfo(name, NULL, &hints, &res);
		if (r) {
			fprintf(stderr,
				"bulkhead: warning: cannot resolve "
				"%s: %s\n",
				name, gai_strerror(r));
			continue;
		}
		for (ai = res; ai; ai = ai->ai_next) {
			char host[64];
			struct compile_fqdn *f;

			if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host,
					sizeof(host), NULL, 0, NI_NUMERICHOST))
				continue;
			*PUSH(o->fqdn_names, o->nnames, o->capnames) =
			    xstrdup(name);
			f = PUSH(o->fqdn, o->nfqdn, o->capfqdn);
			f->name = o->fqdn_names[o->nnames - 1];
			if (addr_parse(host, &f->family, &f->addr))
				o->nfqdn--;
		}
		freeaddrinfo(res);
	}
}

/* Parses options common to every command; positional arguments are left
 * in o->argc/argv. Returns 0, 1 for --help, or -EINVAL. */
static int parse_opts(int argc, char **argv, struct opts *o, const char *usage)
{
	static const struct option lo[] = {
	    {"policy", required_argument, NULL, 'p'},
	    {"inventory", required_argument, NULL, 'i'},
	    {"format", required_argument, NULL, 'f'},
	    {"audit", no_argument, NULL, 'a'},
	    {"fqdn", required_argument, NULL, 'F'},
	    {"resolve", no_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+p:i:h", lo, NULL)) != -1) {
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
		default:
			fprintf(stderr,
				"bulkhead: unknown or incomplete "
				"option '%s'\n",
				argv[optind - 1]);
			fputs(usage, stderr);
			return -EINVAL;
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

/* Loads what a command needs; prints diagnostics. Returns an exit status
 * (0 when everything loaded). */
static int load(struct opts *o, struct policy **p, struct inventory **inv,
		bool need_inv, const char *usage)
{
	struct diags d = {0};
	int ret = 0;

	if (!o->policy)
		return bad_usage(usage, "-p POLICY is required");
	if (need_inv && !o->inventory)
		return bad_usage(usage,
				 "--inventory FILE is required (the output of "
				 "`docker inspect $(docker ps -q)`)");
	*p = policy_load(o->policy, &d);
	if (*p && o->inventory) {
		*inv = inventory_new();
		if (inventory_load(*inv, o->inventory, &d) == -EINVAL ||
		    d.nerrors)
			ret = EXIT_BADINPUT;
		else if (d.nerrors)
			ret = EXIT_FAILURE;
	}
	if (!*p)
		ret = EXIT_BADINPUT;
	diags_print(&d, stderr);
	diags_free(&d);
	return ret;
}

static int cmd_check(int argc, char **argv)
{
	struct opts o = {0};
	struct policy *p = NULL;
	struct inventory *inv = NULL;
	struct compiler *cc = NULL;
	struct diags d = {0};
	int r, ret;

	r = parse_opts(argc, argv, &o, usage_check);
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (o.argc)
		return bad_usage(usage_check, "unexpected argument");
	ret = load(&o, &p, &inv, false, usage_check);
	if (ret)
		goto out;
	if (inv) {
		cc = compiler_new(p, NULL);
		if (compile_check(cc, inv, o.inventory, &d))
			ret = EXIT_BADINPUT;
		diags_print(&d, stderr);
	}
	if (!ret && inv)
		printf("%s: ok: %zu services, %zu edges, %zu containers\n",
		       o.policy, p->nservices, p->nedges, inv->n);
	else if (!ret)
		printf("%s: ok: %zu services, %zu edges\n", o.policy,
		       p->nservices, p->nedges);
out:
	diags_free(&d);
	compiler_free(cc);
	inventory_free(inv);
	policy_free(p);
	opts_free(&o);
	return ret;
}

static int cmd_plan(int argc, char **argv)
{
	struct opts o = {0};
	struct policy *p = NULL;
	struct inventory *inv = NULL;
	struct compiler *cc = NULL;
	struct ir_ruleset *rs = NULL;
	struct diags d = {0};
	struct strbuf b = {0};
	struct compile_opts co = {0};
	char *comment = NULL;
	double t = phase(NULL, 0);
	int r, ret;

	r = parse_opts(argc, argv, &o, usage_plan);
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (o.argc)
		return bad_usage(usage_plan, "unexpected argument");
	if (o.format && strcmp(o.format, "nft") && strcmp(o.format, "json"))
		return bad_usage(usage_plan, "--format is nft or json");
	ret = load(&o, &p, &inv, true, usage_plan);
	if (ret)
		goto out;
	t = phase("load", t);
	if (o.resolve)
		resolve_fqdns(&o, p);
	co.audit = o.audit;
	co.fqdn = o.fqdn;
	co.nfqdn = o.nfqdn;
	cc = compiler_new(p, &co);
	rs = compile_ruleset(cc, inv, o.inventory, &d);
	diags_print(&d, stderr);
	if (!rs) {
		ret = EXIT_BADINPUT;
		goto out;
	}
	t = phase("compile", t);
	if (o.format && !strcmp(o.format, "json")) {
		render_json(rs, &b);
	} else {
		comment = xasprintf("bulkhead plan: policy %s, %zu containers",
				    o.policy, inv->n);
		render_nft(rs, comment, &b);
	}
	t = phase("render", t);
	if (fwrite(b.s, 1, b.len, stdout) != b.len || fflush(stdout)) {
		fprintf(stderr, "bulkhead: write failed: %s\n",
			strerror(errno));
		ret = EXIT_FAILURE;
	}
	phase("write", t);
out:
	free(comment);
	sb_free(&b);
	diags_free(&d);
	ir_free(rs);
	compiler_free(cc);
	inventory_free(inv);
	policy_free(p);
	opts_free(&o);
	return ret;
}

static int cmd_trace(int argc, char **argv)
{
	struct opts o = {0};
	struct policy *p = NULL;
	struct inventory *inv = NULL;
	struct compiler *cc = NULL;
	struct ir_ruleset *rs = NULL;
	struct diags d = {0};
	struct strbuf b = {0};
	struct compile_opts co = {0};
	int r, ret;

	r = parse_opts(argc, argv, &o, usage_trace);
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (o.argc != 3)
		return bad_usage(usage_trace, "expected SRC DST PORT/PROTO");
	ret = load(&o, &p, &inv, true, usage_trace);
	if (ret)
		goto out;
	co.fqdn = o.fqdn;
	co.nfqdn = o.nfqdn;
	co.audit = o.audit;
	cc = compiler_new(p, &co);
	rs = compile_ruleset(cc, inv, o.inventory, &d);
	if (rs) {
		r = trace_run(cc, p, rs, inv, o.argv[0], o.argv[1], o.argv[2],
			      &b, &d);
		if (r >= 0)
			fputs(b.s, stdout);
		ret = r == -EFAULT ? EXIT_FAILURE : r < 0 ? EXIT_BADINPUT : 0;
	} else {
		ret = EXIT_BADINPUT;
	}
	diags_print(&d, stderr);
out:
	sb_free(&b);
	diags_free(&d);
	ir_free(rs);
	compiler_free(cc);
	inventory_free(inv);
	policy_free(p);
	opts_free(&o);
	return ret;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
    {"check", cmd_check},
    {"plan", cmd_plan},
    {"trace", cmd_trace},
};

int main(int argc, char **argv)
{
	size_t i;

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
