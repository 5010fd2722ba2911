/* FQDN peers' addresses by TTL (see fqdn.h). Pure: no I/O, no clock. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bulkhead/fqdn.h"

#define MARGIN_MIN_MS 10000u
#define RETRY_MIN_MS 1000u
#define RETRY_MAX_MS 60000u

void fqdn_init(struct fqdn_cache *c, unsigned min_ttl_s, unsigned max_ttl_s)
{
	memset(c, 0, sizeof(*c));
	c->min_ttl_s = min_ttl_s ? min_ttl_s : 1;
	c->max_ttl_s = max_ttl_s < c->min_ttl_s ? c->min_ttl_s : max_ttl_s;
}

static void name_free(struct fqdn_name *f)
{
	free(f->name);
	free(f->a);
}

void fqdn_free(struct fqdn_cache *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		name_free(&c->v[i]);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

long fqdn_find(const struct fqdn_cache *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (!strcasecmp(c->v[i].name, name))
			return (long)i;
	return -1;
}

void fqdn_set_names(struct fqdn_cache *c, const struct policy *p)
{
	struct fqdn_cache next = *c;
	bool *keep = xcalloc(c->n + 1, sizeof(*keep));
	size_t i, j;

	next.v = NULL;
	next.n = next.cap = 0;
	for (i = 0; i < p->nedges; i++) {
		const struct pol_edge *e = &p->edges[i];
		struct fqdn_name *f;
		long old;

		if (e->dst.kind != PEER_FQDN ||
		    fqdn_find(&next, e->dst.fqdn) >= 0)
			continue;
		f = PUSH(next.v, next.n, next.cap);
		old = fqdn_find(c, e->dst.fqdn);
		if (old >= 0) {
			*f = c->v[old];
			keep[old] = true;
			continue;
		}
		memset(f, 0, sizeof(*f));
		f->name = xstrdup(e->dst.fqdn);
		for (j = 0; f->name[j]; j++)
			f->name[j] = (char)tolower((unsigned char)f->name[j]);
	}
	for (i = 0; i < c->n; i++)
		if (!keep[i])
			name_free(&c->v[i]);
	free(c->v);
	free(keep);
	*c = next;
}

bool fqdn_due(const struct fqdn_cache *c, size_t i, uint64_t now)
{
	return !c->v[i].asking && c->v[i].next_at <= now;
}

void fqdn_asking(struct fqdn_cache *c, size_t i)
{
	c->v[i].asking = true;
	c->v[i].asked++;
}

static uint64_t eff_ms(const struct fqdn_cache *c, const struct fqdn_name *f)
{
	return (uint64_t)(f->eff_s ? f->eff_s : c->min_ttl_s) * 1000u;
}

static uint64_t margin_ms(uint64_t eff)
{
	uint64_t m = eff / 4 < MARGIN_MIN_MS ? MARGIN_MIN_MS : eff / 4;

	return m > eff / 2 ? eff / 2 : m;
}

uint32_t fqdn_timeout_ms(const struct fqdn_name *f)
{
	uint64_t eff = (uint64_t)f->eff_s * 1000u;
	uint64_t t = eff + margin_ms(eff);

	return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static int addr_cmp(const void *x, const void *y)
{
	const struct fqdn_addr *a = x, *b = y;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

unsigned fqdn_answer(struct fqdn_cache *c, size_t i, uint64_t now,
		     const struct fqdn_addr *a, size_t n, unsigned ttl_s)
{
	struct fqdn_name *f = &c->v[i];
	struct fqdn_addr *v;
	unsigned r = FQDN_PROGRAM;
	size_t j, k = 0;
	uint64_t eff;

	if (!n)
		return fqdn_failed(c, i, now, "no address");
	if (n > FQDN_MAX_ADDRS)
		n = FQDN_MAX_ADDRS;
	v = xmalloc(sizeof(*v) * n);
	memcpy(v, a, sizeof(*v) * n);
	qsort(v, n, sizeof(*v), addr_cmp);
	for (j = 0; j < n; j++)
		if (!k || addr_cmp(&v[k - 1], &v[j]))
			v[k++] = v[j];
	if (k != f->n || (k && memcmp(v, f->a, sizeof(*v) * k)))
		r |= FQDN_CHANGED;
	if (f->failures)
		r |= FQDN_RECOVERED;
	free(f->a);
	f->a = v;
	f->n = k;
	f->state = FQDN_OK;
	f->asking = false;
	f->failures = 0;
	f->error[0] = '\0';
	f->ttl_s = ttl_s;
	f->eff_s = ttl_s < c->min_ttl_s	  ? c->min_ttl_s
		   : ttl_s > c->max_ttl_s ? c->max_ttl_s
					  : ttl_s;
	eff = eff_ms(c, f);
	f->answered_at = now;
	f->next_at = now + eff - margin_ms(eff);
	f->expires_at = now + fqdn_timeout_ms(f);
	f->answered++;
	if (r & FQDN_CHANGED)
		f->changed++;
	return r;
}

unsigned fqdn_failed(struct fqdn_cache *c, size_t i, uint64_t now,
		     const char *err)
{
	struct fqdn_name *f = &c->v[i];
	uint64_t retry = RETRY_MIN_MS, eff = eff_ms(c, f);
	unsigned r = 0;

	if (!f->failures) {
		r |= FQDN_OUTAGE;
		f->failing_since = now;
	}
	f->failures++;
	f->failed++;
	f->asking = false;
	snprintf(f->error, sizeof(f->error), "%s", err);
	for (unsigned k = 1; k < f->failures && retry < RETRY_MAX_MS; k++)
		retry *= 2;
	if (retry > RETRY_MAX_MS)
		retry = RETRY_MAX_MS;
	if (retry > eff)
		retry = eff;
	f->next_at = now + retry;
	if (f->n) {
		/* the last good addresses stay, and must not lapse */
		f->state = FQDN_STALE;
		f->expires_at = now + fqdn_timeout_ms(f);
		r |= FQDN_PROGRAM;
	} else {
		f->state = FQDN_FAILING;
	}
	return r;
}

uint64_t fqdn_next(const struct fqdn_cache *c)
{
	uint64_t t = FQDN_NEVER;
	size_t i;

	for (i = 0; i < c->n; i++)
		if (!c->v[i].asking && c->v[i].next_at < t)
			t = c->v[i].next_at;
	return t;
}

bool fqdn_first_round(const struct fqdn_cache *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->v[i].state == FQDN_PENDING)
			return true;
	return false;
}

size_t fqdn_compile_list(const struct fqdn_cache *c, struct compile_fqdn **out)
{
	size_t i, j, n = 0, cap = 0;

	*out = NULL;
	for (i = 0; i < c->n; i++)
		for (j = 0; j < c->v[i].n; j++)
			*PUSH(*out, n, cap) = (struct compile_fqdn){
			    c->v[i].name, c->v[i].a[j].family,
			    c->v[i].a[j].addr, fqdn_timeout_ms(&c->v[i])};
	return n;
}
