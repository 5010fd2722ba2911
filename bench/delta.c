/* One container's delta, at two sizes (design §6): with the first N
 * containers of the bench inventory programmed, the time from "this
 * container arrives" to its elements committed (compile_delta and
 * kernel_apply_delta), and the same for it leaving; median of ROUNDS.
 * The container is, at every N, the last of the first N in the service
 * of the inventory's tenth container: the same edges and the same sets
 * (the kernel finds a set by name in a list, so a service whose sets
 * come late costs more whatever runs), only the containers running
 * differ. Run inside a throwaway network namespace.
 *
 * usage: delta POLICY INVENTORY N [ROUNDS]   prints "N arrive_us leave_us" */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bulkhead/compile.h"
#include "bulkhead/kernel.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* compile_delta + kernel_apply_delta for container idx; microseconds */
static double one(struct kernel *k, const struct compiler *cc,
		  struct inventory *inv, const struct ir_ruleset *rs,
		  size_t idx, bool arriving)
{
	struct ir_delta d = {0};
	char err[512] = "compile_delta failed";
	double t = now_us(), c;

	if (compile_delta(cc, inv, idx, arriving, &d))
		goto fail;
	c = now_us() - t;
	if (kernel_apply_delta(k, rs, &d, 0, err, sizeof(err)))
		goto fail;
	t = now_us() - t;
	if (getenv("DELTA_VERBOSE"))
		fprintf(stderr,
			"%s: %zu changes, compile %.0f us, all %.0f us\n",
			arriving ? "arrive" : "leave", d.n, c, t);
	ir_delta_free(&d);
	return t;
fail:
	fprintf(stderr, "delta: %s\n", err);
	exit(1);
}

int main(int argc, char **argv)
{
	struct diags dg = {0};
	struct inventory *inv = inventory_new();
	struct compiler *cc;
	struct ir_ruleset *rs;
	struct policy *p;
	struct kernel *k;
	double *arr, *leave;
	size_t n, rounds, i, full, probe;
	long svc, a, b;
	char err[512];

	if (argc < 4)
		return 2;
	n = strtoul(argv[3], NULL, 10);
	rounds = argc > 4 ? strtoul(argv[4], NULL, 10) : 101;
	p = policy_load(argv[1], &dg);
	if (!p || inventory_load(inv, argv[2], &dg) || inv->n < n || n < 10)
		return 2;
	full = inv->n;
	/* each endpoint bound to a port of its own, as ports_bind binds
	 * them on a Docker host: a delta carries its identity elements */
	for (i = 0; i < full; i++)
		for (size_t j = 0; j < inv->c[i].nnets; j++) {
			struct inv_net *nt = &inv->c[i].nets[j];

			nt->port = xasprintf("v%zx.%zu", i, j);
			nt->mac = 0x020000000000ull | (i << 4) | j;
			nt->has_mac = true;
			nt->ll6 = mac_link_local(nt->mac);
			nt->has_ll6 = true;
		}
	inv->n = n; /* the first n containers run */
	cc = compile_new(p, NULL);
	rs = compile_ruleset(cc, inv, argv[2], &dg);
	k = kernel_open(err, sizeof(err));
	if (!rs || !k || kernel_apply(k, rs, err, sizeof(err))) {
		fprintf(stderr, "delta: %s\n", rs ? err : "compile failed");
		return 1;
	}
	arr = calloc(rounds, sizeof(*arr));
	leave = calloc(rounds, sizeof(*leave));
	/* it leaves and comes back, over and over */
	probe = n - 1;
	svc = compile_assign(cc, &inv->c[9], &a, &b);
	while (probe > 9 && compile_assign(cc, &inv->c[probe], &a, &b) != svc)
		probe--;
	if (getenv("DELTA_VERBOSE"))
		fprintf(stderr, "container %s (%zu of %zu)\n",
			inv->c[probe].name, probe + 1, n);
	for (i = 0; i < rounds; i++) {
		leave[i] = one(k, cc, inv, rs, probe, false);
		arr[i] = one(k, cc, inv, rs, probe, true);
	}
	qsort(arr, rounds, sizeof(*arr), dcmp);
	qsort(leave, rounds, sizeof(*leave), dcmp);
	printf("%zu %.0f %.0f\n", n, arr[rounds / 2], leave[rounds / 2]);
	inv->n = full;
	kernel_close(k);
	free(arr);
	free(leave);
	ir_free(rs);
	compile_free(cc);
	inventory_free(inv);
	policy_free(p);
	diags_free(&dg);
	return 0;
}
