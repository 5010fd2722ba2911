/* Renders the IR as nft syntax (loadable with `nft -f`, checked with
 * `nft -c -f`) or JSON. Output depends only on the IR: same IR, same
 * bytes. No I/O: everything goes into a string buffer. */
#define _GNU_SOURCE /* qsort_r */
#include <jansson.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "bulkhead/render.h"

static const char *type_name(enum ir_type t)
{
	switch (t) {
	case IRT_IFNAME:
		return "ifname";
	case IRT_IPV4:
		return "ipv4_addr";
	case IRT_IPV6:
		return "ipv6_addr";
	case IRT_PROTO:
		return "inet_proto";
	case IRT_PORT:
		return "inet_service";
	case IRT_ETHER:
		return "ether_addr";
	case IRT_RAW128:
		return "@th,64,128"; /* only in a typeof */
	}
	return "?";
}

static const char *expr_name(enum ir_expr x)
{
	static const char *const n[] = {"iifname",
					"oifname",
					"ip saddr",
					"ip daddr",
					"ip6 saddr",
					"ip6 daddr",
					"meta l4proto",
					"th dport",
					"ether saddr",
					"ether type",
					"@nh,0,48",
					"arp saddr ether",
					"arp saddr ip",
					"@th,64,128",
					"meta protocol",
					"ip6 hoplimit",
					"ip6 length",
					"ct original ip saddr",
					"ct original ip daddr",
					"ct original ip6 saddr",
					"ct original ip6 daddr"};

	return n[x];
}

/* A set with a raw key is declared by the expressions it is looked up
 * with (typeof), as nft needs: its keys' types alone do not say. */
static bool set_typeof(const struct ir_set *s)
{
	int i;

	for (i = 0; i < s->nkey; i++)
		if (s->key[i] == IRT_RAW128)
			return true;
	return false;
}

/* Hundreds of thousands of elements are rendered: numbers and names
 * without printf. */
static void put_uint(struct strbuf *b, unsigned v)
{
	char d[12];
	int n = 0;

	do
		d[sizeof(d) - ++n] = (char)('0' + v % 10);
	while ((v /= 10) && n < (int)sizeof(d));
	sb_putn(b, d + sizeof(d) - n, (size_t)n);
}

static void put_range(struct strbuf *b, unsigned lo, unsigned hi)
{
	put_uint(b, lo);
	if (lo == hi)
		return;
	sb_putc(b, '-');
	put_uint(b, hi);
}

static int prefix_len(u128 lo, u128 hi, int bits)
{
	u128 span = hi - lo;
	int n = 0;

	if (lo > hi)
		return -1;
	if (span == ~(u128)0)
		return bits == 128 ? 0 : -1;
	span += 1;
	if (span & (span - 1))
		return -1; /* not a power of two */
	while (span > 1) {
		span >>= 1;
		n++;
	}
	if (lo & (((u128)1 << n) - 1))
		return -1;
	return bits - n;
}

static void put_addr(struct strbuf *b, int fam, u128 lo, u128 hi)
{
	char a[64], c[64];
	int bits = fam == AF_INET ? 32 : 128, pl;

	addr_format(fam, lo, a, sizeof(a));
	if (lo == hi) {
		sb_puts(b, a);
		return;
	}
	sb_puts(b, a);
	pl = prefix_len(lo, hi, bits);
	if (pl >= 0) {
		sb_putc(b, '/');
		put_uint(b, (unsigned)pl);
		return;
	}
	addr_format(fam, hi, c, sizeof(c));
	sb_putc(b, '-');
	sb_puts(b, c);
}

static void put_proto(struct strbuf *b, unsigned v)
{
	switch (v) {
	case IPPROTO_TCP:
		sb_puts(b, "tcp");
		return;
	case IPPROTO_UDP:
		sb_puts(b, "udp");
		return;
	case IPPROTO_ICMP:
		sb_puts(b, "icmp");
		return;
	case IPPROTO_ICMPV6:
		sb_puts(b, "ipv6-icmp");
		return;
	case IPPROTO_SCTP:
		sb_puts(b, "sctp");
		return;
	}
	put_uint(b, v);
}

/* len bytes of v as one hexadecimal number */
static void put_hex(struct strbuf *b, u128 v, unsigned len)
{
	unsigned i;

	sb_puts(b, "0x");
	for (i = len; i-- > 0;)
		sb_printf(b, "%02x", (unsigned)(v >> (8 * i)) & 0xff);
}

static void put_mac(struct strbuf *b, u128 v)
{
	int i;

	for (i = 5; i >= 0; i--)
		sb_printf(b, "%02x%s", (unsigned)(v >> (8 * i)) & 0xff,
			  i ? ":" : "");
}

static void put_comp(struct strbuf *b, const struct ir_set *s,
		     const struct ir_elem *e, int i)
{
	unsigned lo = (unsigned)e->lo[i], hi = (unsigned)e->hi[i];

	switch (s->key[i]) {
	case IRT_ETHER:
		put_mac(b, e->lo[i]);
		return;
	case IRT_RAW128:
		put_hex(b, e->lo[i], 16);
		return;
	case IRT_IFNAME: {
		char name[IR_IFNAMSIZ + 1];

		ir_ifname_str(e->lo[i], name);
		sb_putc(b, '"');
		sb_puts(b, name);
		sb_putc(b, '"');
		return;
	}
	case IRT_IPV4:
	case IRT_IPV6:
		put_addr(b, s->key[i] == IRT_IPV4 ? AF_INET : AF_INET6,
			 e->lo[i], e->hi[i]);
		return;
	case IRT_PROTO:
		if (lo == hi)
			put_proto(b, lo);
		else
			put_range(b, lo, hi);
		return;
	case IRT_PORT:
		put_range(b, lo, hi);
		return;
	}
}

void render_elem(const struct ir_set *s, const struct ir_elem *e,
		 struct strbuf *b)
{
	int i;

	for (i = 0; i < s->nkey; i++) {
		if (i)
			sb_puts(b, " . ");
		put_comp(b, s, e, i);
	}
	if (e->timeout_ms)
		sb_printf(
		    b, e->timeout_ms % 1000 ? " timeout %ums" : " timeout %us",
		    e->timeout_ms % 1000 ? e->timeout_ms
					 : e->timeout_ms / 1000);
	if (!(s->flags & IRS_MAP))
		return;
	if (e->verdict == IRV_JUMP)
		sb_printf(b, " : jump %s", e->chain);
	else
		sb_puts(b, e->verdict == IRV_DROP ? " : drop" : " : accept");
}

void render_set_type(const struct ir_set *s, struct strbuf *b)
{
	int i;

	for (i = 0; i < s->nkey; i++)
		sb_printf(b, "%s%s", i ? " . " : "",
			  set_typeof(s) && s->key[i] == IRT_IFNAME
			      ? "iifname"
			      : type_name(s->key[i]));
	if (s->flags & IRS_MAP)
		sb_puts(b, " : verdict");
}

static void put_keys(struct strbuf *b, const enum ir_expr *k, int n)
{
	int i;

	for (i = 0; i < n; i++)
		sb_printf(b, "%s%s", i ? " . " : "", expr_name(k[i]));
}

static void put_value(struct strbuf *b, enum ir_expr x, u128 v)
{
	char a[64];

	switch (x) {
	case IRX_ETHER_TYPE:
	case IRX_META_PROTOCOL:
		if (v == 0x0800 || v == 0x86dd || v == 0x0806) {
			sb_puts(b, v == 0x0800	 ? "ip"
				   : v == 0x86dd ? "ip6"
						 : "arp");
			return;
		}
		break;
	case IRX_SADDR4:
	case IRX_DADDR4:
	case IRX_ARP_SPA:
	case IRX_SADDR6:
	case IRX_DADDR6:
		addr_format(ir_expr_family(x) ? ir_expr_family(x) : AF_INET, v,
			    a, sizeof(a));
		sb_puts(b, a);
		return;
	case IRX_ETHER_SADDR:
	case IRX_ARP_SHA:
		put_mac(b, v);
		return;
	default:
		break;
	}
	put_hex(b, v, ir_expr_len(x));
}

void render_match(const struct ir_match *m, struct strbuf *b)
{
	switch (m->kind) {
	case IRM_CT_ESTABLISHED:
		sb_printf(b, "ct state %s",
			  ir_ct_mask(m) == IR_CT_ESTABLISHED ? "established"
			  : ir_ct_mask(m) == IR_CT_RELATED
			      ? "related"
			      : "established,related");
		break;
	case IRM_ND:
		/* as nft lists it: a single type by its name */
		if (m->lo == 143 && m->hi == 143)
			sb_puts(b, "icmpv6 type mld2-listener-report");
		else if (m->lo == m->hi)
			sb_printf(b, "icmpv6 type %u", m->lo);
		else
			sb_printf(b, "icmpv6 type %u-%u", m->lo, m->hi);
		break;
	case IRM_NFPROTO:
		sb_printf(b, "meta nfproto %s",
			  m->family == AF_INET ? "ipv4" : "ipv6");
		break;
	case IRM_LOOKUP:
		put_keys(b, m->key, m->nkey);
		sb_printf(b, " %s@%s", m->neg ? "!= " : "", m->set);
		break;
	case IRM_RANGE:
		sb_printf(b, "%s ", expr_name(m->key[0]));
		if (m->key[0] == IRX_L4PROTO && m->lo == m->hi)
			put_proto(b, m->lo);
		else if (m->lo == m->hi)
			sb_printf(b, "%u", m->lo);
		else
			sb_printf(b, "%u-%u", m->lo, m->hi);
		break;
	case IRM_CMP:
		sb_printf(b, "%s %s", expr_name(m->key[0]),
			  m->neg ? "!= " : "");
		put_value(b, m->key[0], m->val);
		break;
	}
}

void render_rule(const struct ir_rule *r, struct strbuf *b)
{
	int i;

	if (r->foreign) {
		sb_printf(b, "# a rule bulkhead did not write (%s)",
			  r->foreign);
		return;
	}
	for (i = 0; i < r->nm; i++) {
		render_match(&r->m[i], b);
		sb_putc(b, ' ');
	}
	if (r->counter)
		sb_puts(b, "counter ");
	switch (r->stmt) {
	case IRST_ACCEPT:
		sb_puts(b, "accept");
		break;
	case IRST_DROP:
		sb_puts(b, "drop");
		break;
	case IRST_JUMP:
		sb_printf(b, "jump %s", r->target);
		break;
	case IRST_VMAP:
		put_keys(b, r->vkey, r->nvkey);
		sb_printf(b, " vmap @%s", r->target);
		break;
	case IRST_LOG:
		sb_printf(b,
			  "update @%s { %s limit rate %u/%s } log prefix "
			  "\"%s\" group %u",
			  r->rl_set, expr_name(r->rl_key), r->rate,
			  r->rate_unit, r->prefix, r->group);
		break;
	}
}

static void render_set(const struct ir_set *s, struct strbuf *b)
{
	size_t i;

	sb_printf(b, "\t%s %s {\n\t\t%s ", s->flags & IRS_MAP ? "map" : "set",
		  s->name, set_typeof(s) ? "typeof" : "type");
	render_set_type(s, b);
	sb_putc(b, '\n');
	if (s->flags & IRS_DYNAMIC)
		sb_printf(b,
			  "\t\tsize %u\n\t\tflags dynamic,timeout\n"
			  "\t\ttimeout %us\n",
			  s->size, s->timeout_s);
	if (s->flags & IRS_INTERVAL)
		sb_printf(b, "\t\tflags interval%s\n",
			  s->flags & IRS_TIMEOUT ? ",timeout" : "");
	for (i = 0; i < s->n; i++) {
		sb_puts(b, i ? ",\n\t\t\t     " : "\t\telements = { ");
		render_elem(s, &s->e[i], b);
	}
	if (s->n)
		sb_puts(b, " }\n");
	sb_puts(b, "\t}\n");
}

static const char *hook_name(enum ir_hook h)
{
	return h == IRH_FORWARD ? "forward"
	       : h == IRH_INPUT ? "input"
				: "prerouting";
}

static void render_chain(const struct ir_chain *c, struct strbuf *b)
{
	size_t i;

	sb_printf(b, "\tchain %s {\n", c->name);
	if (c->hook != IRH_NONE)
		sb_printf(b,
			  "\t\ttype filter hook %s priority filter %c %d; "
			  "policy accept;\n",
			  hook_name(c->hook), c->prio < 0 ? '-' : '+',
			  c->prio < 0 ? -c->prio : c->prio);
	for (i = 0; i < c->n; i++) {
		sb_puts(b, "\t\t");
		render_rule(&c->r[i], b);
		sb_putc(b, '\n');
	}
	sb_puts(b, "\t}\n");
}

/* nft resolves names in file order, so every object is written after the
 * objects it names: a chain after the sets it looks up and the chains it
 * jumps to, a map after the chains its elements jump to. A depth-first
 * walk from each object in IR order gives that order, deterministically. */
struct order {
	const struct ir_ruleset *rs;
	char *done; /* sets first, then chains */
	struct strbuf *b;
	/* names sorted, for lookups in O(log n): a map of 10,000 elements
	 * names a chain in each */
	const char **names; /* sets first, then chains */
	size_t *byname;	    /* indexes into names, sorted by name */
};

static int name_cmp(const void *a, const void *b, void *names)
{
	const char **n = names;

	return strcmp(n[*(const size_t *)a], n[*(const size_t *)b]);
}

static void order_index(struct order *o)
{
	const struct ir_ruleset *rs = o->rs;
	size_t i, n = rs->nsets + rs->nchains;

	o->names = xcalloc(n + 1, sizeof(*o->names));
	o->byname = xcalloc(n + 1, sizeof(*o->byname));
	for (i = 0; i < rs->nsets; i++)
		o->names[i] = rs->sets[i].name;
	for (i = 0; i < rs->nchains; i++)
		o->names[rs->nsets + i] = rs->chains[i].name;
	for (i = 0; i < n; i++)
		o->byname[i] = i;
	qsort_r(o->byname, n, sizeof(*o->byname), name_cmp, o->names);
}

/* The index in names of a set (chain false) or chain called name, or
 * SIZE_MAX. */
static size_t order_find(const struct order *o, const char *name, bool chain)
{
	size_t lo = 0, hi = o->rs->nsets + o->rs->nchains, mid, x;
	int c;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		x = o->byname[mid];
		c = strcmp(name, o->names[x]);
		/* a set and a chain may share a name: sets sort first */
		if (!c)
			c = chain ? (x < o->rs->nsets) : -(x >= o->rs->nsets);
		if (!c)
			return x;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return SIZE_MAX;
}

static void emit_chain_deps(struct order *o, size_t ci);

static bool chain_uses_map(const struct ir_chain *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->r[i].stmt == IRST_VMAP)
			return true;
	return false;
}

static void emit_set_deps(struct order *o, size_t si)
{
	const struct ir_set *s = &o->rs->sets[si];
	size_t i, x;

	if (o->done[si])
		return;
	o->done[si] = 1;
	for (i = 0; i < s->n; i++)
		if (s->e[i].verdict == IRV_JUMP && s->e[i].chain &&
		    (x = order_find(o, s->e[i].chain, true)) != SIZE_MAX)
			emit_chain_deps(o, x - o->rs->nsets);
	render_set(s, o->b);
}

static void emit_name(struct order *o, const char *name, bool chain)
{
	size_t x;

	if (!name || (x = order_find(o, name, chain)) == SIZE_MAX)
		return;
	if (chain)
		emit_chain_deps(o, x - o->rs->nsets);
	else
		emit_set_deps(o, x);
}

static void emit_chain_deps(struct order *o, size_t ci)
{
	const struct ir_chain *c = &o->rs->chains[ci];
	size_t i;
	int m;

	if (o->done[o->rs->nsets + ci])
		return;
	o->done[o->rs->nsets + ci] = 1;
	for (i = 0; i < c->n; i++) {
		const struct ir_rule *r = &c->r[i];

		for (m = 0; m < r->nm; m++)
			emit_name(o, r->m[m].set, false);
		emit_name(o, r->rl_set, false);
		emit_name(o, r->target, r->stmt == IRST_JUMP);
	}
	render_chain(c, o->b);
}

void render_nft(const struct ir_ruleset *rs, const char *comment,
		struct strbuf *b)
{
	struct order o = {rs, xcalloc(rs->nsets + rs->nchains + 1, 1), b, NULL,
			  NULL};
	enum ir_family fam;
	size_t i;

	order_index(&o);
	sb_puts(b, "#!/usr/sbin/nft -f\n");
	if (comment)
		sb_printf(b, "# %s\n", comment);
	sb_printf(b, "# %zu sets and maps, %zu elements, %zu chains\n",
		  rs->nsets, ir_element_count(rs), rs->nchains);
	/* create-then-delete makes the delete valid on a fresh host; the
	 * whole file is one transaction */
	sb_printf(b,
		  "table inet %s\ndelete table inet %s\n"
		  "table bridge %s\ndelete table bridge %s\n",
		  rs->table, rs->table, rs->table, rs->table);
	for (fam = IRF_INET; fam <= IRF_BRIDGE; fam++) {
		if (fam == IRF_BRIDGE && !ir_has_family(rs, fam))
			break;
		sb_printf(b, "\ntable %s %s {\n",
			  fam == IRF_BRIDGE ? "bridge" : "inet", rs->table);
		/* readable order: plain sets, leaf chains, then the rest
		 * as the dependencies pull them in */
		for (i = 0; i < rs->nsets; i++)
			if (rs->sets[i].family == fam &&
			    !(rs->sets[i].flags & IRS_MAP))
				emit_set_deps(&o, i);
		for (i = 0; i < rs->nchains; i++)
			if (rs->chains[i].family == fam &&
			    rs->chains[i].hook == IRH_NONE &&
			    !chain_uses_map(&rs->chains[i]))
				emit_chain_deps(&o, i);
		for (i = 0; i < rs->nsets; i++)
			if (rs->sets[i].family == fam)
				emit_set_deps(&o, i);
		for (i = 0; i < rs->nchains; i++)
			if (rs->chains[i].family == fam)
				emit_chain_deps(&o, i);
		sb_puts(b, "}\n");
	}
	free(o.done);
	free(o.names);
	free(o.byname);
}

void render_json(const struct ir_ruleset *rs, struct strbuf *out)
{
	json_t *root = json_object(), *sets = json_array(),
	       *chains = json_array();
	struct strbuf b = {0};
	char *text;
	size_t i, j;

	json_object_set_new(root, "family", json_string("inet"));
	json_object_set_new(root, "table", json_string(rs->table));
	for (i = 0; i < rs->nsets; i++) {
		const struct ir_set *s = &rs->sets[i];
		json_t *o = json_object(), *el = json_array(),
		       *fl = json_array();

		json_object_set_new(o, "name", json_string(s->name));
		json_object_set_new(
		    o, "family",
		    json_string(s->family == IRF_BRIDGE ? "bridge" : "inet"));
		json_object_set_new(
		    o, "kind", json_string(s->flags & IRS_MAP ? "map" : "set"));
		b.len = 0;
		render_set_type(s, &b);
		json_object_set_new(o, "type", json_string(b.s));
		if (s->flags & IRS_INTERVAL)
			json_array_append_new(fl, json_string("interval"));
		if (s->flags & IRS_DYNAMIC)
			json_array_append_new(fl, json_string("dynamic"));
		if (s->flags & (IRS_DYNAMIC | IRS_TIMEOUT))
			json_array_append_new(fl, json_string("timeout"));
		json_object_set_new(o, "flags", fl);
		for (j = 0; j < s->n; j++) {
			b.len = 0;
			render_elem(s, &s->e[j], &b);
			json_array_append_new(el, json_string(b.s));
		}
		json_object_set_new(o, "elements", el);
		json_array_append_new(sets, o);
	}
	for (i = 0; i < rs->nchains; i++) {
		const struct ir_chain *c = &rs->chains[i];
		json_t *o = json_object(), *rules = json_array();

		json_object_set_new(o, "name", json_string(c->name));
		json_object_set_new(
		    o, "family",
		    json_string(c->family == IRF_BRIDGE ? "bridge" : "inet"));
		if (c->hook != IRH_NONE) {
			json_object_set_new(o, "hook",
					    json_string(hook_name(c->hook)));
			json_object_set_new(o, "priority",
					    json_integer(c->prio));
			json_object_set_new(o, "policy", json_string("accept"));
		}
		for (j = 0; j < c->n; j++) {
			b.len = 0;
			render_rule(&c->r[j], &b);
			json_array_append_new(rules, json_string(b.s));
		}
		json_object_set_new(o, "rules", rules);
		json_array_append_new(chains, o);
	}
	json_object_set_new(root, "sets", sets);
	json_object_set_new(root, "chains", chains);
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	sb_puts(out, text);
	sb_putc(out, '\n');
	free(text);
	json_decref(root);
	sb_free(&b);
}
