/* Small helpers shared by every module: allocation that aborts on OOM,
 * growable arrays, a string buffer and address formatting.
 * Nothing here does I/O beyond writing into memory. */
#ifndef BULKHEAD_UTIL_H
#define BULKHEAD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef unsigned __int128 u128;

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Grow *arr (of *cap elements of sz bytes) so that it holds at least need. */
void grow(void *arr, size_t *cap, size_t need, size_t sz);
#define PUSH(arr, n, cap)                                                      \
	(grow(&(arr), &(cap), (n) + 1, sizeof(*(arr))), &(arr)[(n)++])

struct strbuf {
	char *s;
	size_t len, cap;
};
void sb_putc(struct strbuf *b, char c);
void sb_puts(struct strbuf *b, const char *s);
void sb_putn(struct strbuf *b, const char *s, size_t n);
void sb_printf(struct strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sb_free(struct strbuf *b);

/* An IP protocol's name as records and messages write it ("tcp", "icmpv6"),
 * or its number in buf. */
const char *proto_name(unsigned p, char *buf, size_t len);

/* n bytes in network order (n <= 16) as one integer. */
u128 be_read(const uint8_t *p, size_t n);

/* Addresses are kept as host-order integers: IPv4 in the low 32 bits. */
void addr_format(int family, u128 a, char *buf, size_t len);
int addr_parse(const char *s, int *family, u128 *a);
/* "02:42:ac:1c:05:02" as a 48-bit integer, first byte highest; 0 or
 * -EINVAL. */
int mac_parse(const char *s, uint64_t *mac);
void mac_format(uint64_t mac, char *buf, size_t len);
/* The IPv6 link-local address a MAC gives by EUI-64 (fe80::/64). */
u128 mac_link_local(uint64_t mac);
/* "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
 * Returns 0, -EINVAL for bad syntax, -EDOM when host bits are set. */
int cidr_parse(const char *s, int *family, u128 *lo, u128 *hi, int *plen);

/* Netlink messages walked by hand: libmnl's mnl_nlmsg_ok reads a length
 * past 2 GB as a negative int and lets it through, and mnl_nlmsg_next
 * then steps gigabytes ahead. nlmsg_fits: a whole message, header
 * included, starts at buf within len bytes. nlmsg_next: the message
 * after the one at buf (which fits), *len lessened to what is left. */
bool nlmsg_fits(const void *buf, size_t len);
const void *nlmsg_next(const void *buf, size_t *len);
/* The monotonic clock in milliseconds. */
double mono_ms(void);
/* FNV-1a of a string. */
size_t str_hash(const char *s);

/* A map of strings to strings (chained, growing): lookups that do not
 * grow with what it holds. */
struct smap_e;
struct smap {
	struct smap_e **b;
	size_t nb, n;
};
const char *smap_get(const struct smap *m, const char *key);
/* key's value is val (copied), whatever it was. */
void smap_put(struct smap *m, const char *key, const char *val);
/* key leaves, when its value is val (any value: val NULL). */
void smap_del(struct smap *m, const char *key, const char *val);
void smap_free(struct smap *m);

/* The switch at path (/proc/sys/...) on: 1 when it was on already, 0
 * when it is now, or a negative errno. */
int sysctl_turn_on(const char *path);

/* A netlink socket's receive buffer raised to bytes, past the system's
 * cap when we may (CAP_NET_ADMIN), else up to it: room for a burst of
 * events before the kernel drops some (ENOBUFS). */
void rcvbuf_grow(int fd, int bytes);

#endif
