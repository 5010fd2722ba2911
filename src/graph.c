/* The allowed-peer graph in DOT: one node per service and per peer the
 * policy names, one edge per policy edge (ports as its label), and the
 * denied pairs drawn in red. Pure: text into a buffer. */
#include <stdlib.h>
#include <string.h>

#include "bulkhead/graph.h"

/* A DOT string: quoted, quotes and backslashes escaped. */
static void dot_quote(struct strbuf *b, const char *s)
{
	sb_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			sb_putc(b, '\\');
		sb_putc(b, *s);
	}
	sb_putc(b, '"');
}

static void node(struct strbuf *out, const char *id, const char *attrs)
{
	sb_puts(out, "  ");
	dot_quote(out, id);
	sb_printf(out, " [%s];\n", attrs);
}

void graph_dot(const struct policy *p, const struct compiler *cc,
	       const struct inventory *inv, const struct graph_denied *d,
	       size_t nd, struct strbuf *out)
{
	struct strbuf a = {0}, b = {0};
	size_t s, i, j, *count = xcalloc(p->nservices + 1, sizeof(*count));
	char port[32];
	long x, y, k;

	for (i = 0; cc && inv && i < inv->n; i++)
		if ((k = compile_assign(cc, &inv->c[i], &x, &y)) >= 0)
			count[k]++;
	sb_printf(out, "digraph bulkhead {\n  rankdir=LR;\n  node [shape=box, "
		       "style=rounded, fontname=\"sans-serif\"];\n  edge "
		       "[fontname=\"sans-serif\", fontsize=10];\n");
	/* a scope's services in a box of their own */
	for (k = -1; k < (long)p->nscopes; k++) {
		if (k >= 0) {
			sb_printf(out, "  subgraph \"cluster_%s\" {\n  label=",
				  p->scopes[k].name);
			dot_quote(out, p->scopes[k].name);
			sb_puts(out, ";\n");
		}
		for (s = 0; s < p->nservices; s++) {
			if (p->services[s].scope != k)
				continue;
			a.len = 0;
			sb_printf(&a, "label=\"%s", p->services[s].name);
			if (cc && inv)
				sb_printf(&a, "\\n%zu container%s", count[s],
					  count[s] == 1 ? "" : "s");
			sb_putc(&a, '"');
			node(out, p->services[s].name, a.s);
		}
		if (k >= 0)
			sb_puts(out, "  }\n");
	}
	node(out, "world", "shape=ellipse");
	node(out, "host", "shape=ellipse");
	for (i = 0; i < p->nedges; i++) {
		const struct pol_edge *e = &p->edges[i];
		const struct pol_peer *ends[2] = {&e->src, &e->dst};

		for (j = 0; j < 2; j++)
			if (ends[j]->kind == PEER_CIDR ||
			    ends[j]->kind == PEER_FQDN) {
				a.len = 0;
				policy_peer_format(p, ends[j], false, &a);
				node(out, a.s, "shape=note");
			}
	}
	for (i = 0; i < p->nedges; i++) {
		const struct pol_edge *e = &p->edges[i];

		a.len = b.len = 0;
		policy_peer_format(p, &e->src, false, &a);
		policy_peer_format(p, &e->dst, false, &b);
		sb_puts(out, "  ");
		dot_quote(out, a.s);
		sb_puts(out, " -> ");
		dot_quote(out, b.s);
		a.len = 0;
		for (j = 0; j < e->nports; j++) {
			policy_port_format(&e->ports[j], port, sizeof(port));
			sb_printf(&a, "%s%s", j ? ", " : "", port);
		}
		sb_puts(out, " [label=");
		dot_quote(out, a.s);
		sb_puts(out, "];\n");
	}
	/* what one scope declares and the other does not (yet) accept */
	for (i = 0; i < p->ncross; i++) {
		const struct pol_edge *e = &p->cross[i];

		for (j = 0; j < p->nedges; j++)
			if (p->edges[j].src.service == e->src.service &&
			    p->edges[j].dst.service == e->dst.service &&
			    p->edges[j].accepted_file)
				break;
		if (j < p->nedges)
			continue;
		sb_puts(out, "  ");
		dot_quote(out, p->services[e->src.service].name);
		sb_puts(out, " -> ");
		dot_quote(out, p->services[e->dst.service].name);
		sb_puts(out, " [color=gray, fontcolor=gray, style=dotted, "
			     "label=\"not accepted\"];\n");
	}
	for (i = 0; i < nd; i++) {
		if (!strncmp(d[i].src, "container ", 10))
			node(out, d[i].src, "color=red, fontcolor=red");
		if (!strncmp(d[i].dst, "container ", 10))
			node(out, d[i].dst, "color=red, fontcolor=red");
		a.len = 0;
		sb_printf(&a, "%s (%lu denied)", d[i].ports, d[i].count);
		sb_puts(out, "  ");
		dot_quote(out, d[i].src);
		sb_puts(out, " -> ");
		dot_quote(out, d[i].dst);
		sb_puts(out,
			" [color=red, fontcolor=red, style=dashed, label=");
		dot_quote(out, a.s);
		sb_puts(out, "];\n");
	}
	sb_puts(out, "}\n");
	sb_free(&a);
	sb_free(&b);
	free(count);
}
