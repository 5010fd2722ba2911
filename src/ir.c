/* Ruleset IR containers, normalisation, and a packet evaluator that
 * mirrors nftables' semantics for the rule shapes bulkhead emits.
 * Pure: no I/O, no clock. */
#define _GNU_SOURCE /* qsort_r */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bulkhead/ir.h"

u128 ir_ifname(const char *name)
{
	u128 v = 0;
	size_t i, n = strnlen(name, IR_IFNAMSIZ);

	for (i = 0; i < IR_IFNAMSIZ; i++)
		v = (v << 8) | (i < n ? (unsigned char)name[i] : 0);
	return v;
}

void ir_ifname_str(u128 v, char out[IR_IFNAMSIZ + 1])
{
	int i;

	for (i = IR_IFNAMSIZ - 1; i >= 0; i--) {
		out[i] = (char)(v & 0xff);
		v >>= 8;
	}
	out[IR_IFNAMSIZ] = '\0';
}

struct ir_ruleset *ir_new(const char *table)
{
	struct ir_ruleset *rs = xcalloc(1, sizeof(*rs));

	rs->table = xstrdup(table);
	return rs;
}

void ir_free(struct ir_ruleset *rs)
{
	size_t i;

	if (!rs)
		return;
	for (i = 0; i < rs->nchains; i++) {
		free(rs->chains[i].name);
		free(rs->chains[i].r);
	}
	for (i = 0; i < rs->nsets; i++) {
		free(rs->sets[i].name);
		free(rs->sets[i].e);
	}
	for (i = 0; i < rs->nstrs; i++)
		free(rs->strs[i]);
	free(rs->chains);
	free(rs->sets);
	free(rs->strs);
	free(rs->table);
	free(rs);
}

const char *ir_intern(struct ir_ruleset *rs, const char *s)
{
	size_t i;

	for (i = 0; i < rs->nstrs; i++)
		if (!strcmp(rs->strs[i], s))
			return rs->strs[i];
	return *PUSH(rs->strs, rs->nstrs, rs->capstrs) = xstrdup(s);
}

struct ir_chain *ir_chain_add(struct ir_ruleset *rs, const char *name,
			      enum ir_hook hook, int prio)
{
	struct ir_chain *c = PUSH(rs->chains, rs->nchains, rs->capchains);

	memset(c, 0, sizeof(*c));
	c->name = xstrdup(name);
	c->hook = hook;
	c->prio = prio;
	return c;
}

struct ir_set *ir_set_add(struct ir_ruleset *rs, const char *name,
			  unsigned flags, int nkey, const enum ir_type *key)
{
	struct ir_set *s = PUSH(rs->sets, rs->nsets, rs->capsets);

	memset(s, 0, sizeof(*s));
	s->name = xstrdup(name);
	s->flags = flags;
	s->nkey = nkey;
	memcpy(s->key, key, sizeof(*key) * (size_t)nkey);
	return s;
}

struct ir_set *ir_set_find(const struct ir_ruleset *rs, const char *name)
{
	size_t i;

	for (i = 0; i < rs->nsets; i++)
		if (!strcmp(rs->sets[i].name, name))
			return &rs->sets[i];
	return NULL;
}

struct ir_chain *ir_chain_find(const struct ir_ruleset *rs, const char *name)
{
	size_t i;

	for (i = 0; i < rs->nchains; i++)
		if (!strcmp(rs->chains[i].name, name))
			return &rs->chains[i];
	return NULL;
}

struct ir_rule *ir_rule_add(struct ir_chain *c)
{
	struct ir_rule *r = PUSH(c->r, c->n, c->cap);

	memset(r, 0, sizeof(*r));
	return r;
}

struct ir_elem *ir_elem_add(struct ir_set *s)
{
	struct ir_elem *e = PUSH(s->e, s->n, s->cap);

	memset(e, 0, sizeof(*e));
	return e;
}

static int u128_cmp(u128 a, u128 b)
{
	return a < b ? -1 : a > b;
}

int ir_elem_cmp(const struct ir_set *s, const struct ir_elem *a,
		const struct ir_elem *b)
{
	int i, r;

	for (i = 0; i < s->nkey; i++) {
		r = u128_cmp(a->lo[i], b->lo[i]);
		if (!r)
			r = u128_cmp(a->hi[i], b->hi[i]);
		if (r)
			return r;
	}
	return 0;
}

bool ir_elem_key_eq(const struct ir_set *s, const struct ir_elem *a,
		    const struct ir_elem *b)
{
	return !ir_elem_cmp(s, a, b);
}

static int elem_qcmp(const void *a, const void *b, void *set)
{
	return ir_elem_cmp(set, a, b);
}

void ir_normalize(struct ir_ruleset *rs)
{
	size_t i, j, k;

	for (i = 0; i < rs->nsets; i++) {
		struct ir_set *s = &rs->sets[i];

		if (s->n < 2)
			continue;
		qsort_r(s->e, s->n, sizeof(*s->e), elem_qcmp, s);
		for (j = k = 0; j < s->n; j++)
			if (!k || !ir_elem_key_eq(s, &s->e[k - 1], &s->e[j]))
				s->e[k++] = s->e[j];
		s->n = k;
	}
}

size_t ir_element_count(const struct ir_ruleset *rs)
{
	size_t i, n = 0;

	for (i = 0; i < rs->nsets; i++)
		n += rs->sets[i].n;
	return n;
}

/* --- comparison ----------------------------------------------------------- */

int ir_expr_family(enum ir_expr x)
{
	switch (x) {
	case IRX_SADDR4:
	case IRX_DADDR4:
	case IRX_CT_OSADDR4:
	case IRX_CT_ODADDR4:
		return AF_INET;
	case IRX_SADDR6:
	case IRX_DADDR6:
	case IRX_HOPLIMIT:
	case IRX_IP6_LEN:
	case IRX_CT_OSADDR6:
	case IRX_CT_ODADDR6:
		return AF_INET6;
	default:
		return 0;
	}
}

unsigned ir_ct_mask(const struct ir_match *m)
{
	return m->lo ? m->lo : IR_CT_ESTABLISHED | IR_CT_RELATED;
}

unsigned ir_expr_len(enum ir_expr x)
{
	switch (x) {
	case IRX_IIFNAME:
	case IRX_OIFNAME:
	case IRX_SADDR6:
	case IRX_DADDR6:
	case IRX_ND_TARGET:
	case IRX_CT_OSADDR6:
	case IRX_CT_ODADDR6:
		return 16;
	case IRX_SADDR4:
	case IRX_DADDR4:
	case IRX_ARP_SPA:
	case IRX_CT_OSADDR4:
	case IRX_CT_ODADDR4:
		return 4;
	case IRX_L4PROTO:
	case IRX_HOPLIMIT:
		return 1;
	case IRX_DPORT:
	case IRX_ETHER_TYPE:
	case IRX_META_PROTOCOL:
	case IRX_IP6_LEN:
		return 2;
	case IRX_ETHER_SADDR:
	case IRX_ARP_HDR:
	case IRX_ARP_SHA:
		return 6;
	}
	return 0;
}

unsigned ir_type_len(enum ir_type t)
{
	switch (t) {
	case IRT_IFNAME:
	case IRT_IPV6:
	case IRT_RAW128:
		return 16;
	case IRT_IPV4:
		return 4;
	case IRT_PROTO:
		return 1;
	case IRT_PORT:
		return 2;
	case IRT_ETHER:
		return 6;
	}
	return 0;
}

static int keys_family(const enum ir_expr *k, int n)
{
	int i, f = 0;

	for (i = 0; i < n && !f; i++)
		f = ir_expr_family(k[i]);
	return f;
}

/* The family a rule is restricted to, explicit or implied by its keys. */
static int rule_family(const struct ir_rule *r)
{
	int i, f = 0;

	for (i = 0; i < r->nm && !f; i++) {
		const struct ir_match *m = &r->m[i];

		if (m->kind == IRM_NFPROTO)
			f = m->family;
		else if (m->kind == IRM_ND)
			f = AF_INET6;
		else if (m->kind == IRM_LOOKUP)
			f = keys_family(m->key, m->nkey);
	}
	if (!f && r->stmt == IRST_VMAP)
		f = keys_family(r->vkey, r->nvkey);
	if (!f && r->stmt == IRST_LOG)
		f = ir_expr_family(r->rl_key);
	return f;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool match_eq(const struct ir_match *a, const struct ir_match *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == IRM_RANGE)
		return a->key[0] == b->key[0] && a->lo == b->lo &&
		       a->hi == b->hi;
	if (a->kind == IRM_ND)
		return a->lo == b->lo && a->hi == b->hi;
	if (a->kind == IRM_CMP)
		return a->key[0] == b->key[0] && a->neg == b->neg &&
		       a->val == b->val;
	if (a->kind == IRM_CT_ESTABLISHED)
		return ir_ct_mask(a) == ir_ct_mask(b);
	if (a->kind != IRM_LOOKUP)
		return true;
	return a->neg == b->neg && a->nkey == b->nkey &&
	       !memcmp(a->key, b->key, sizeof(*a->key) * (size_t)a->nkey) &&
	       str_eq(a->set, b->set);
}

bool ir_rule_eq(const struct ir_rule *a, const struct ir_rule *b)
{
	int i = 0, j = 0;

	if (a->foreign || b->foreign || a->stmt != b->stmt ||
	    a->counter != b->counter || rule_family(a) != rule_family(b))
		return false;
	for (;;) {
		while (i < a->nm && a->m[i].kind == IRM_NFPROTO)
			i++;
		while (j < b->nm && b->m[j].kind == IRM_NFPROTO)
			j++;
		if (i == a->nm || j == b->nm)
			break;
		if (!match_eq(&a->m[i++], &b->m[j++]))
			return false;
	}
	if (i != a->nm || j != b->nm)
		return false;
	switch (a->stmt) {
	case IRST_ACCEPT:
	case IRST_DROP:
		return true;
	case IRST_JUMP:
		return str_eq(a->target, b->target);
	case IRST_VMAP:
		return str_eq(a->target, b->target) && a->nvkey == b->nvkey &&
		       !memcmp(a->vkey, b->vkey,
			       sizeof(*a->vkey) * (size_t)a->nvkey);
	case IRST_LOG:
		return str_eq(a->rl_set, b->rl_set) && a->rl_key == b->rl_key &&
		       a->rate == b->rate &&
		       str_eq(a->rate_unit, b->rate_unit) &&
		       str_eq(a->prefix, b->prefix) && a->group == b->group;
	}
	return false;
}

bool ir_set_def_eq(const struct ir_set *a, const struct ir_set *b)
{
	if (a->family != b->family || a->flags != b->flags ||
	    a->nkey != b->nkey ||
	    memcmp(a->key, b->key, sizeof(*a->key) * (size_t)a->nkey))
		return false;
	return !(a->flags & IRS_DYNAMIC) ||
	       (a->timeout_s == b->timeout_s && a->size == b->size);
}

static bool elem_data_eq(const struct ir_elem *a, const struct ir_elem *b)
{
	return a->verdict == b->verdict &&
	       (a->verdict != IRV_JUMP || str_eq(a->chain, b->chain));
}

void ir_delta_free(struct ir_delta *d)
{
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

static bool change_same(const struct ir_ruleset *rs, const struct ir_change *a,
			const struct ir_change *b)
{
	return a->set == b->set && a->e.verdict == b->e.verdict &&
	       ir_elem_key_eq(&rs->sets[a->set], &a->e, &b->e) &&
	       (a->e.chain == b->e.chain ||
		(a->e.chain && b->e.chain && !strcmp(a->e.chain, b->e.chain)));
}

void ir_delta_cancel(const struct ir_ruleset *rs, struct ir_delta *d)
{
	bool *gone = xcalloc(d->n + 1, sizeof(*gone));
	size_t i, j, n = 0;

	for (i = 0; i < d->n; i++) {
		if (!d->v[i].add)
			continue;
		for (j = 0; j < d->n; j++)
			if (!d->v[j].add && !gone[j] &&
			    change_same(rs, &d->v[i], &d->v[j])) {
				gone[i] = gone[j] = true;
				break;
			}
	}
	for (i = 0; i < d->n; i++)
		if (!gone[i])
			d->v[n++] = d->v[i];
	d->n = n;
	free(gone);
}

struct apply_order {
	const struct ir_ruleset *rs;
	const struct ir_delta *d;
};

/* The changes by set, then element, then as they came. */
static int apply_cmp(const void *a, const void *b, void *ctx)
{
	const struct apply_order *o = ctx;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct ir_change *x = &o->d->v[i], *y = &o->d->v[j];
	int r;

	if (x->set != y->set)
		return x->set < y->set ? -1 : 1;
	r = ir_elem_cmp(&o->rs->sets[x->set], &x->e, &y->e);
	if (r)
		return r;
	return i < j ? -1 : i > j;
}

/* Set s merged with its changes v[0..n) (sorted by apply_cmp): each
 * element's last change decides. One pass over the set, however many
 * changes: a burst of them costs what one does. */
static void merge_set(struct ir_ruleset *rs, struct ir_set *s,
		      const struct ir_delta *d, const size_t *v, size_t n)
{
	struct ir_elem *out = xcalloc(s->n + n + 1, sizeof(*out));
	size_t i = 0, k = 0, m = 0;
	int r;

	while (i < s->n || k < n) {
		const struct ir_change *c;

		r = k == n	? -1
		    : i == s->n ? 1
				: ir_elem_cmp(s, &s->e[i], &d->v[v[k]].e);
		if (r < 0) {
			out[m++] = s->e[i++];
			continue;
		}
		/* the last of this element's changes */
		while (k + 1 < n &&
		       !ir_elem_cmp(s, &d->v[v[k]].e, &d->v[v[k + 1]].e))
			k++;
		c = &d->v[v[k++]];
		if (!r)
			i++; /* in the set: replaced or deleted */
		if (!c->add)
			continue;
		out[m] = c->e;
		if (c->e.chain) {
			const struct ir_chain *ch =
			    ir_chain_find(rs, c->e.chain);

			out[m].chain = ch ? ch->name : NULL;
		}
		m++;
	}
	free(s->e);
	s->e = out;
	s->n = m;
	s->cap = s->n + n + 1;
}

void ir_delta_apply(struct ir_ruleset *rs, const struct ir_delta *d)
{
	struct apply_order o = {rs, d};
	size_t *v = xcalloc(d->n + 1, sizeof(*v)), i, j, n = 0;

	for (i = 0; i < d->n; i++)
		if (d->v[i].set < rs->nsets)
			v[n++] = i;
	qsort_r(v, n, sizeof(*v), apply_cmp, &o);
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && d->v[v[j]].set == d->v[v[i]].set; j++)
			;
		merge_set(rs, &rs->sets[d->v[v[i]].set], d, v + i, j - i);
	}
	free(v);
}

static void diff_item(struct ir_diff *d, enum ir_diff_kind kind,
		      const char *name)
{
	*PUSH(d->items, d->nitems, d->capitems) =
	    (struct ir_diff_item){kind, name};
}

static void change(struct ir_diff *d, bool add, size_t set,
		   const struct ir_set *s, const struct ir_elem *e)
{
	*PUSH(d->elems.v, d->elems.n, d->elems.cap) =
	    (struct ir_change){add, set, s->name, *e};
	if (add)
		d->nadd++;
	else
		d->ndel++;
}

/* Both sets sorted: one merge walk. A key whose data differs is deleted
 * and added again; pass add=false for the deletions, then add=true. */
static void diff_elems(struct ir_diff *d, size_t set, const struct ir_set *w,
		       const struct ir_set *h, bool add)
{
	size_t i = 0, j = 0;
	int c;

	while (i < w->n || j < h->n) {
		if (i == w->n)
			c = 1;
		else if (j == h->n)
			c = -1;
		else
			c = ir_elem_cmp(w, &w->e[i], &h->e[j]);
		if (c < 0 && add)
			change(d, true, set, w, &w->e[i]);
		else if (c > 0 && !add)
			change(d, false, set, w, &h->e[j]);
		else if (!c && !elem_data_eq(&w->e[i], &h->e[j]))
			change(d, add, set, w, add ? &w->e[i] : &h->e[j]);
		i += c <= 0;
		j += c >= 0;
	}
}

static bool chain_rules_eq(const struct ir_chain *a, const struct ir_chain *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (!ir_rule_eq(&a->r[i], &b->r[i]))
			return false;
	return true;
}

bool ir_has_family(const struct ir_ruleset *rs, enum ir_family f)
{
	size_t i;

	for (i = 0; i < rs->nchains; i++)
		if (rs->chains[i].family == f)
			return true;
	for (i = 0; i < rs->nsets; i++)
		if (rs->sets[i].family == f)
			return true;
	return false;
}

void ir_diff(const struct ir_ruleset *want, const struct ir_ruleset *have,
	     struct ir_diff *out)
{
	const struct ir_chain *hc;
	const struct ir_set *hs;
	size_t i;
	int pass;

	memset(out, 0, sizeof(*out));
	if (!have) {
		diff_item(out, IRD_TABLE_MISSING, want->table);
		return;
	}
	if (have->dormant)
		diff_item(out, IRD_TABLE_DORMANT, have->table);
	if (!have->bridge && ir_has_family(want, IRF_BRIDGE) &&
	    !ir_has_family(have, IRF_BRIDGE))
		diff_item(out, IRD_BRIDGE_MISSING, want->table);
	for (i = 0; i < want->nsets; i++) {
		hs = ir_set_find(have, want->sets[i].name);
		if (!hs)
			diff_item(out, IRD_SET_MISSING, want->sets[i].name);
		else if (!ir_set_def_eq(&want->sets[i], hs))
			diff_item(out, IRD_SET_CHANGED, want->sets[i].name);
	}
	for (i = 0; i < have->nsets; i++)
		if (!ir_set_find(want, have->sets[i].name))
			diff_item(out, IRD_SET_EXTRA, have->sets[i].name);
	for (i = 0; i < want->nchains; i++) {
		const struct ir_chain *wc = &want->chains[i];

		hc = ir_chain_find(have, wc->name);
		if (!hc)
			diff_item(out, IRD_CHAIN_MISSING, wc->name);
		else if (hc->foreign || hc->family != wc->family ||
			 hc->hook != wc->hook ||
			 (wc->hook != IRH_NONE && hc->prio != wc->prio))
			diff_item(out, IRD_CHAIN_CHANGED, wc->name);
		else if (!chain_rules_eq(wc, hc))
			diff_item(out, IRD_RULES_CHANGED, wc->name);
	}
	for (i = 0; i < have->nchains; i++)
		if (!ir_chain_find(want, have->chains[i].name))
			diff_item(out, IRD_CHAIN_EXTRA, have->chains[i].name);
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < want->nsets; i++) {
			const struct ir_set *ws = &want->sets[i];

			hs = ir_set_find(have, ws->name);
			if (hs && !(ws->flags & IRS_DYNAMIC) &&
			    ir_set_def_eq(ws, hs))
				diff_elems(out, i, ws, hs, pass == 1);
		}
}

void ir_diff_free(struct ir_diff *d)
{
	free(d->items);
	ir_delta_free(&d->elems);
	memset(d, 0, sizeof(*d));
}

/* --- evaluation ----------------------------------------------------------- */

/* Value of expression x for pkt; false when it does not apply (an IPv4
 * expression on an IPv6 packet), which makes the rule not match. */
static bool expr_value(const struct ir_packet *pkt, enum ir_expr x, u128 *v)
{
	switch (x) {
	case IRX_IIFNAME:
		*v = ir_ifname(pkt->iif);
		return true;
	case IRX_OIFNAME:
		*v = ir_ifname(pkt->oif);
		return true;
	case IRX_SADDR4:
	case IRX_DADDR4:
		*v = x == IRX_SADDR4 ? pkt->saddr : pkt->daddr;
		return pkt->family == AF_INET;
	case IRX_SADDR6:
	case IRX_DADDR6:
		*v = x == IRX_SADDR6 ? pkt->saddr : pkt->daddr;
		return pkt->family == AF_INET6;
	case IRX_L4PROTO:
		*v = pkt->proto;
		return true;
	case IRX_DPORT:
		*v = pkt->dport;
		return true;
	default: /* frame fields: the bridge table, not walked here */
		return false;
	}
}

const struct ir_elem *ir_set_lookup(const struct ir_set *s, const u128 *key,
				    int nkey)
{
	size_t i;
	int k;

	for (i = 0; i < s->n; i++) {
		const struct ir_elem *e = &s->e[i];

		for (k = 0; k < nkey; k++)
			if (key[k] < e->lo[k] || key[k] > e->hi[k])
				break;
		if (k == nkey)
			return e;
	}
	return NULL;
}

static const struct ir_elem *lookup(const struct ir_set *s,
				    const struct ir_packet *pkt,
				    const enum ir_expr *key, int nkey,
				    bool *applies)
{
	u128 val[IR_MAX_KEY] = {0};
	int k;

	*applies = true;
	for (k = 0; k < nkey; k++)
		if (!expr_value(pkt, key[k], &val[k])) {
			*applies = false;
			return NULL;
		}
	return ir_set_lookup(s, val, nkey);
}

static void step(struct ir_result *res, const struct ir_chain *c, size_t i,
		 const struct ir_set *s, const struct ir_elem *e)
{
	if (res->ntrail >= IR_TRAIL_MAX)
		return;
	res->trail[res->ntrail++] = (struct ir_step){c->name, i, s, e};
}

/* Returns IRV_NONE when the chain falls through (return to caller). */
static enum ir_verdict eval_chain(const struct ir_ruleset *rs,
				  const struct ir_chain *c,
				  const struct ir_packet *pkt,
				  struct ir_result *res, int depth)
{
	const struct ir_elem *hit, *e;
	const struct ir_set *s, *ms;
	enum ir_verdict v;
	bool applies, ok;
	size_t i;
	int m;

	if (depth > 16)
		return IRV_DROP;
	if (!c) /* a jump to a chain a read-back ruleset lacks */
		return IRV_NONE;
	for (i = 0; i < c->n; i++) {
		const struct ir_rule *r = &c->r[i];

		if (r->foreign)
			continue; /* its meaning is unknown: shown by diff */
		hit = NULL;
		ms = NULL;
		ok = true;
		for (m = 0; m < r->nm && ok; m++) {
			const struct ir_match *mt = &r->m[m];

			switch (mt->kind) {
			case IRM_CT_ESTABLISHED:
			case IRM_ND:
				ok = false; /* a new connection, not ND */
				break;
			case IRM_NFPROTO:
				ok = pkt->family == mt->family;
				break;
			case IRM_RANGE: {
				u128 val = 0;

				ok = expr_value(pkt, mt->key[0], &val) &&
				     val >= mt->lo && val <= mt->hi;
				break;
			}
			case IRM_CMP: {
				u128 val = 0;

				ok = expr_value(pkt, mt->key[0], &val) &&
				     (val == mt->val) != mt->neg;
				break;
			}
			case IRM_LOOKUP:
				s = ir_set_find(rs, mt->set);
				applies = false; /* no such set: no match */
				e = s ? lookup(s, pkt, mt->key, mt->nkey,
					       &applies)
				      : NULL;
				ok = applies && (e != NULL) != mt->neg;
				if (ok && e && !mt->neg) {
					hit = e;
					ms = s;
				}
				break;
			}
		}
		if (!ok)
			continue;
		switch (r->stmt) {
		case IRST_ACCEPT:
			step(res, c, i, ms, hit);
			return IRV_ACCEPT;
		case IRST_DROP:
			step(res, c, i, ms, hit);
			return IRV_DROP;
		case IRST_LOG:
			res->logged = true;
			break;
		case IRST_JUMP:
			step(res, c, i, ms, hit);
			v = eval_chain(rs, ir_chain_find(rs, r->target), pkt,
				       res, depth + 1);
			if (v != IRV_NONE)
				return v;
			res->ntrail--;
			break;
		case IRST_VMAP:
			s = ir_set_find(rs, r->target);
			e = s ? lookup(s, pkt, r->vkey, r->nvkey, &applies)
			      : NULL;
			if (!e)
				break;
			step(res, c, i, s, e);
			if (e->verdict != IRV_JUMP)
				return e->verdict;
			v = eval_chain(rs, ir_chain_find(rs, e->chain), pkt,
				       res, depth + 1);
			if (v != IRV_NONE)
				return v;
			res->ntrail--;
			break;
		}
	}
	return IRV_NONE;
}

void ir_eval(const struct ir_ruleset *rs, const struct ir_packet *pkt,
	     struct ir_result *res)
{
	size_t i;

	memset(res, 0, sizeof(*res));
	res->verdict = IRV_ACCEPT;
	res->by_policy = true;
	for (i = 0; i < rs->nchains; i++) {
		const struct ir_chain *c = &rs->chains[i];
		enum ir_verdict v;

		if (c->hook != pkt->hook)
			continue;
		v = eval_chain(rs, c, pkt, res, 0);
		if (v == IRV_DROP) {
			res->verdict = IRV_DROP;
			res->by_policy = false;
			return;
		}
		if (v == IRV_ACCEPT)
			res->by_policy = false;
	}
}
