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
#include "bulkhead/kernel.h"
#include "bulkhead/policy.h"
#include "bulkhead/render.h"
#include "bulkhead/trace.h"

#define EXIT_BADINPUT 2

struct opts {
	const char *policy, *inventory, *format;
	bool audit, resolve, replace, exit_code;
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

static const char usage_apply[] =
    "usage: bulkhead apply -p POLICY --inventory FILE [--audit] [--replace]\n"
    "                      [--fqdn NAME=ADDR]... [--resolve]\n"
    "Program the ruleset that `plan` prints into the kernel, in one atomic\n"
    "transaction. When table inet bulkhead already has the plan's chains,\n"
    "rules and sets, only the elements that differ change; otherwise (or\n"
    "with --replace) the table is replaced whole. Needs root or\n"
    "CAP_NET_ADMIN. On any error nothing changes.\n";
static const char usage_diff[] =
    "usage: bulkhead diff -p POLICY --inventory FILE [--audit] [--exit-code]\n"
    "                     [--fqdn NAME=ADDR]... [--resolve]\n"
    "Read table inet bulkhead back from the kernel and print what `apply`\n"
    "would change: elements to add (+) and delete (-), and sets, chains\n"
    "and rules that differ (then apply replaces the table). With\n"
    "--exit-code, exit 1 when there is a difference. Needs root or\n"
    "CAP_NET_ADMIN.\n";
static const char usage_flush[] =
    "usage: bulkhead flush\n"
    "Remove table inet bulkhead, and nothing else.\n";

static void usage_all(FILE *f)
{
	fputs("usage: bulkhead COMMAND [OPTIONS]\n\n"
	      "commands:\n"
	      "  check   validate a policy (and an inventory against it)\n"
	      "  plan    dry run: print the nftables ruleset\n"
	      "  trace   explain whether a connection is allowed\n"
	      "  apply   program the ruleset into the kernel, atomically\n"
	      "  diff    what apply would change in the kernel now\n"
	      "  flush   remove everything bulkhead programmed\n\n"
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
	    {"replace", no_argument, NULL, 'R'},
	    {"exit-code", no_argument, NULL, 'x'},
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
		case 'R':
			o->replace = true;
			break;
		case 'x':
			o->exit_code = true;
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

/* Everything one command holds, freed in one place. */
struct job {
	struct opts o;
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
	compiler_free(j->cc);
	inventory_free(j->inv);
	policy_free(j->p);
	opts_free(&j->o);
}

/* Loads the policy and (when given, or when need_inv) the inventory, and
 * prints their diagnostics. Returns an exit status: 0 when all loaded. */
static int job_load(struct job *j, bool need_inv, const char *usage)
{
	int ret = 0;

	if (!j->o.policy)
		return bad_usage(usage, "-p POLICY is required");
	if (need_inv && !j->o.inventory)
		return bad_usage(usage,
				 "--inventory FILE is required (the output of "
				 "`docker inspect $(docker ps -q)`)");
	j->p = policy_load(j->o.policy, &j->d);
	if (!j->p)
		ret = EXIT_BADINPUT;
	else if (j->o.inventory) {
		j->inv = inventory_new();
		if (inventory_load(j->inv, j->o.inventory, &j->d))
			ret = EXIT_BADINPUT;
	}
	diags_print(&j->d, stderr);
	diags_free(&j->d);
	return ret;
}

/* Compiles the loaded policy and inventory (resolving FQDN peers first
 * when --resolve asks for it); prints diagnostics. */
static int job_compile(struct job *j)
{
	struct compile_opts co = {.audit = j->o.audit};

	if (j->o.resolve)
		resolve_fqdns(&j->o, j->p);
	co.fqdn = j->o.fqdn;
	co.nfqdn = j->o.nfqdn;
	j->cc = compiler_new(j->p, &co);
	j->rs = compile_ruleset(j->cc, j->inv, j->o.inventory, &j->d);
	diags_print(&j->d, stderr);
	diags_free(&j->d);
	return j->rs ? 0 : EXIT_BADINPUT;
}

static int cmd_check(int argc, char **argv)
{
	struct job j = {0};
	int r, ret;

	r = parse_opts(argc, argv, &j.o, usage_check);
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (j.o.argc)
		return bad_usage(usage_check, "unexpected argument");
	ret = job_load(&j, false, usage_check);
	if (!ret && j.inv) {
		j.cc = compiler_new(j.p, NULL);
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

	r = parse_opts(argc, argv, &j.o, usage_plan);
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

static int cmd_trace(int argc, char **argv)
{
	struct job j = {0};
	int r, ret;

	r = parse_opts(argc, argv, &j.o, usage_trace);
	if (r)
		return r > 0 ? 0 : EXIT_BADINPUT;
	if (j.o.argc != 3)
		return bad_usage(usage_trace, "expected SRC DST PORT/PROTO");
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

/* Bridged traffic reaches the inet hooks only with br_netfilter on. */
static void check_br_netfilter(void)
{
	FILE *f = fopen("/proc/sys/net/bridge/bridge-nf-call-iptables", "r");
	int on = 0;

	if (f) {
		if (fscanf(f, "%d", &on) != 1)
			on = 0;
		fclose(f);
	}
	if (!on)
		fputs("bulkhead: warning: net.bridge.bridge-nf-call-iptables "
		      "is off: traffic between containers on one bridge is "
		      "not filtered. Run: modprobe br_netfilter && sysctl -w "
		      "net.bridge.bridge-nf-call-iptables=1 "
		      "net.bridge.bridge-nf-call-ip6tables=1\n",
		      stderr);
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

	r = parse_opts(argc, argv, &j.o, usage_diff);
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

/* Converges the kernel on the job's ruleset: element changes only when
 * the table's structure already matches (a restart reconciles instead of
 * rebuilding), else one replace of the whole table. */
static int job_apply(struct job *j, char *err, size_t errlen)
{
	struct ir_ruleset *have = NULL;
	struct ir_diff d = {0};
	uint32_t gen = 0;
	int r = j->o.replace ? job_kernel(j, err, errlen)
			     : job_diff(j, &have, &gen, &d, err, errlen);

	if (r)
		goto out;
	r = -EAGAIN;
	if (!j->o.replace) {
		if (!d.nitems) {
			r = kernel_apply_delta(j->k, j->rs, &d.elems, gen, err,
					       errlen);
			if (!r && !d.elems.n)
				printf("applied: table inet %s already "
				       "holds the plan (%zu elements, %zu "
				       "containers)\n",
				       j->rs->table, ir_element_count(j->rs),
				       j->inv->n);
			else if (!r)
				printf("applied: %zu elements added, %zu "
				       "deleted; chains, rules and sets were "
				       "in place\n",
				       d.nadd, d.ndel);
		}
	}
	/* a table that differs in shape, or that changed under us since it
	 * was read, is replaced whole */
	if (r == -EAGAIN) {
		r = kernel_apply(j->k, j->rs, err, errlen);
		if (!r)
			printf("applied: table inet %s, %zu chains, %zu sets, "
			       "%zu elements, %zu containers\n",
			       j->rs->table, j->rs->nchains, j->rs->nsets,
			       ir_element_count(j->rs), j->inv->n);
	}
out:
	ir_diff_free(&d);
	ir_free(have);
	return r;
}

static int cmd_apply(int argc, char **argv)
{
	struct job j = {0};
	char err[512];
	double t = phase(NULL, 0);
	int r, ret;

	r = parse_opts(argc, argv, &j.o, usage_apply);
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

	r = parse_opts(argc, argv, &j.o, usage_flush);
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

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
    {"check", cmd_check}, {"plan", cmd_plan}, {"trace", cmd_trace},
    {"apply", cmd_apply}, {"diff", cmd_diff}, {"flush", cmd_flush},
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
