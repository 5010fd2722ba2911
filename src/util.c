/* Allocation, growable arrays, string buffers and address parsing.
 * Pure helpers: no file or network I/O. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include "bulkhead/util.h"

static void oom(void)
{
	fputs("bulkhead: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	struct strbuf b = {0};
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	grow(&b.s, &b.cap, (size_t)n + 1, 1);
	va_start(ap, fmt);
	vsnprintf(b.s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return b.s;
}

void grow(void *arr, size_t *cap, size_t need, size_t sz)
{
	void **p = arr;
	size_t c = *cap;

	if (need <= c)
		return;
	c = c ? c : 8;
	while (c < need)
		c *= 2;
	*p = xrealloc(*p, c * sz);
	*cap = c;
}

void sb_putn(struct strbuf *b, const char *s, size_t n)
{
	grow(&b->s, &b->cap, b->len + n + 1, 1);
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void sb_putc(struct strbuf *b, char c)
{
	sb_putn(b, &c, 1);
}

void sb_puts(struct strbuf *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	/* most writes are short: format in place, and only when that did
	 * not fit, grow and format again */
	grow(&b->s, &b->cap, b->len + 128, 1);
	va_start(ap, fmt);
	n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if ((size_t)n < b->cap - b->len) {
		b->len += (size_t)n;
		return;
	}
	grow(&b->s, &b->cap, b->len + (size_t)n + 1, 1);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sb_free(struct strbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

const char *proto_name(unsigned p, char *buf, size_t len)
{
	switch (p) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	case IPPROTO_SCTP:
		return "sctp";
	case IPPROTO_UDPLITE:
		return "udplite";
	}
	snprintf(buf, len, "%u", p);
	return buf;
}

void addr_format(int family, u128 a, char *buf, size_t len)
{
	unsigned char raw[16];
	int i;

	if (family == AF_INET) {
		uint32_t v = htonl((uint32_t)a);

		inet_ntop(AF_INET, &v, buf, (socklen_t)len);
		return;
	}
	for (i = 15; i >= 0; i--) {
		raw[i] = (unsigned char)(a & 0xff);
		a >>= 8;
	}
	inet_ntop(AF_INET6, raw, buf, (socklen_t)len);
}

u128 be_read(const uint8_t *p, size_t n)
{
	u128 v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

int addr_parse(const char *s, int *family, u128 *a)
{
	unsigned char raw[16];
	uint32_t v4;
	int i;

	if (inet_pton(AF_INET, s, &v4) == 1) {
		*family = AF_INET;
		*a = ntohl(v4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, raw) == 1) {
		*family = AF_INET6;
		*a = 0;
		for (i = 0; i < 16; i++)
			*a = (*a << 8) | raw[i];
		return 0;
	}
	return -EINVAL;
}

int mac_parse(const char *s, uint64_t *mac)
{
	unsigned b[6];
	int i, used = 0;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3],
		   &b[4], &b[5], &used) != 6 ||
	    s[used] || strlen(s) != 17)
		return -EINVAL;
	*mac = 0;
	for (i = 0; i < 6; i++)
		*mac = (*mac << 8) | b[i];
	return 0;
}

void mac_format(uint64_t mac, char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x",
		 (unsigned)(mac >> 40) & 0xff, (unsigned)(mac >> 32) & 0xff,
		 (unsigned)(mac >> 24) & 0xff, (unsigned)(mac >> 16) & 0xff,
		 (unsigned)(mac >> 8) & 0xff, (unsigned)mac & 0xff);
}

u128 mac_link_local(uint64_t mac)
{
	uint64_t iid =
	    ((mac >> 24) << 40) | ((uint64_t)0xfffe << 24) | (mac & 0xffffff);

	iid ^= (uint64_t)0x02 << 56; /* the universal/local bit */
	return ((u128)0xfe80 << 112) | iid;
}

int cidr_parse(const char *s, int *family, u128 *lo, u128 *hi, int *plen)
{
	char buf[64], *slash, *end;
	int bits, maxbits;
	long n;
	u128 a, mask;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (addr_parse(buf, family, &a))
		return -EINVAL;
	maxbits = *family == AF_INET ? 32 : 128;
	bits = maxbits;
	if (slash) {
		if (!slash[1] || slash[1] == '-' || slash[1] == '+')
			return -EINVAL;
		errno = 0;
		n = strtol(slash + 1, &end, 10);
		if (errno || *end || n < 0 || n > maxbits)
			return -EINVAL;
		bits = (int)n;
	}
	/* host bits; a shift by the whole width (::/0) is undefined */
	if (bits == maxbits)
		mask = 0;
	else if (maxbits - bits == 128)
		mask = ~(u128)0;
	else
		mask = ((u128)1 << (maxbits - bits)) - 1;
	if (a & mask)
		return -EDOM;
	*lo = a;
	*hi = a | mask;
	*plen = bits;
	return 0;
}

struct smap_e {
	struct smap_e *next;
	char *key, *val;
};

size_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (size_t)h;
}

static struct smap_e **smap_at(const struct smap *m, const char *key)
{
	struct smap_e **e = &m->b[str_hash(key) % m->nb];

	while (*e && strcmp((*e)->key, key))
		e = &(*e)->next;
	return e;
}

const char *smap_get(const struct smap *m, const char *key)
{
	struct smap_e **e;

	if (!m->nb)
		return NULL;
	e = smap_at(m, key);
	return *e ? (*e)->val : NULL;
}

void smap_put(struct smap *m, const char *key, const char *val)
{
	struct smap_e **e, *x;
	size_t i;

	if (m->n >= m->nb) { /* a chain a bucket on average, at most */
		struct smap old = *m;

		m->nb = m->nb ? 2 * m->nb : 64;
		m->b = xcalloc(m->nb, sizeof(*m->b));
		for (i = 0; i < old.nb; i++)
			while ((x = old.b[i])) {
				old.b[i] = x->next;
				e = &m->b[str_hash(x->key) % m->nb];
				x->next = *e;
				*e = x;
			}
		free(old.b);
	}
	e = smap_at(m, key);
	if (*e) {
		free((*e)->val);
		(*e)->val = xstrdup(val);
		return;
	}
	x = xcalloc(1, sizeof(*x));
	x->key = xstrdup(key);
	x->val = xstrdup(val);
	*e = x;
	m->n++;
}

void smap_del(struct smap *m, const char *key, const char *val)
{
	struct smap_e **e, *x;

	if (!m->nb)
		return;
	e = smap_at(m, key);
	if (!*e || (val && strcmp((*e)->val, val)))
		return;
	x = *e;
	*e = x->next;
	free(x->key);
	free(x->val);
	free(x);
	m->n--;
}

void smap_free(struct smap *m)
{
	struct smap_e *x;
	size_t i;

	for (i = 0; i < m->nb; i++)
		while ((x = m->b[i])) {
			m->b[i] = x->next;
			free(x->key);
			free(x->val);
			free(x);
		}
	free(m->b);
	m->b = NULL;
	m->nb = m->n = 0;
}

void rcvbuf_grow(int fd, int bytes)
{
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

bool nlmsg_fits(const void *buf, size_t len)
{
	const struct nlmsghdr *nlh = buf;

	return len >= sizeof(*nlh) && nlh->nlmsg_len >= sizeof(*nlh) &&
	       nlh->nlmsg_len <= len;
}

const void *nlmsg_next(const void *buf, size_t *len)
{
	size_t step = NLMSG_ALIGN(((const struct nlmsghdr *)buf)->nlmsg_len);

	step = step < *len ? step : *len;
	*len -= step;
	return (const char *)buf + step;
}

int sysctl_turn_on(const char *path)
{
	int on = 0, err = 0;
	FILE *f;

	if ((f = fopen(path, "r"))) {
		if (fscanf(f, "%d", &on) != 1)
			on = 0;
		fclose(f);
	}
	if (on)
		return 1;
	if (!(f = fopen(path, "w")))
		err = errno;
	else if (fputs("1\n", f) < 0)
		err = errno ? errno : EIO;
	if (f && fclose(f) && !err)
		err = errno ? errno : EIO;
	return -err;
}

double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
