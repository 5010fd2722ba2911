/* Generates a synthetic inventory in real `docker inspect` shape and a
 * policy for it: N containers in S services (compose projects of 20
 * services, one network each) with E edges. The container template is a
 * real captured container (tests/fixtures/three-tier.json), so each
 * record is as large and as nested as Docker prints it.
 *
 * usage: gen TEMPLATE.json OUT.json OUT.yaml [containers services edges] */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#define PER_PROJECT 20

int main(int argc, char **argv)
{
	int n = 10000, services = 500, edges = 2000, i, s, e, k;
	json_t *all, *tpl, *c, *labels, *nets, *net;
	json_error_t err;
	FILE *out, *pol;
	char buf[256];

	if (argc < 4) {
		fprintf(stderr, "usage: gen TEMPLATE.json OUT.json OUT.yaml "
				"[containers services edges]\n");
		return 2;
	}
	if (argc > 6) {
		n = atoi(argv[4]);
		services = atoi(argv[5]);
		edges = atoi(argv[6]);
	}
	all = json_load_file(argv[1], 0, &err);
	if (!all || !json_array_size(all)) {
		fprintf(stderr, "gen: %s: %s\n", argv[1], err.text);
		return 1;
	}
	tpl = json_array_get(all, 1); /* backend: has labels */
	/* overlay paths differ per host; without them a record is about
	 * 5 KB, as the design target assumes */
	json_object_del(tpl, "GraphDriver");
	out = fopen(argv[2], "w");
	pol = fopen(argv[3], "w");
	if (!out || !pol)
		return 1;
	fputs("[\n", out);
	for (i = 0; i < n; i++) {
		int svc = i % services, proj = svc / PER_PROJECT;
		/* each container its own address on its project's network:
		 * the n-th instance of each of the project's services */
		int host = (i / services) * PER_PROJECT + svc % PER_PROJECT + 2;

		c = json_deep_copy(tpl);
		snprintf(buf, sizeof(buf), "%08x%056x", i + 1, svc);
		json_object_set_new(c, "Id", json_string(buf));
		snprintf(buf, sizeof(buf), "/proj%02d_svc%03d_%d", proj, svc,
			 i / services + 1);
		json_object_set_new(c, "Name", json_string(buf));
		labels =
		    json_object_get(json_object_get(c, "Config"), "Labels");
		snprintf(buf, sizeof(buf), "svc%03d", svc);
		json_object_set_new(labels, "com.docker.compose.service",
				    json_string(buf));
		snprintf(buf, sizeof(buf), "proj%02d", proj);
		json_object_set_new(labels, "com.docker.compose.project",
				    json_string(buf));
		nets = json_object_get(json_object_get(c, "NetworkSettings"),
				       "Networks");
		net = json_deep_copy(json_object_get(nets, "appnet"));
		json_object_clear(nets);
		snprintf(buf, sizeof(buf), "%012x%052x", proj + 1, 0);
		json_object_set_new(net, "NetworkID", json_string(buf));
		snprintf(buf, sizeof(buf), "10.%d.%d.%d", proj, host / 250,
			 host % 250 + 2);
		json_object_set_new(net, "IPAddress", json_string(buf));
		json_object_set_new(net, "IPPrefixLen", json_integer(16));
		snprintf(buf, sizeof(buf), "fd00:%x::%x", proj, host);
		json_object_set_new(net, "GlobalIPv6Address", json_string(buf));
		snprintf(buf, sizeof(buf), "proj%02d_net", proj);
		json_object_set_new(nets, buf, net);
		if (i)
			fputs(",\n", out);
		json_dumpf(c, out, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		json_decref(c);
	}
	fputs("\n]\n", out);

	fprintf(pol,
		"# %d services in projects of %d, %d edges\n"
		"version: 1\nsettings:\n  mode: enforce\nservices:\n",
		services, PER_PROJECT, edges);
	for (s = 0, e = 0; s < services; s++) {
		int proj = s / PER_PROJECT, per = edges / services;

		fprintf(pol,
			"  svc%03d:\n    match: { compose_service: svc%03d }\n",
			s, s);
		if (per + (s < edges % services) > 0)
			fputs("    egress:\n", pol);
		for (k = 0; k < per + (s < edges % services); k++, e++) {
			int to = proj * PER_PROJECT +
				 (s % PER_PROJECT + k + 1) % PER_PROJECT;

			fprintf(
			    pol,
			    "      - to: svc%03d\n        ports: [%d/tcp%s]\n",
			    to, 8000 + to, k % 2 ? ", 9000-9100/tcp" : "");
		}
	}
	fclose(out);
	fclose(pol);
	json_decref(all);
	return 0;
}
