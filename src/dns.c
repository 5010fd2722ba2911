/* DNS through c-ares on an epoll fd of our own (see dns.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <ares.h>

#include "bulkhead/dns.h"

#define TIMEOUT_MS 2000 /* per try and server */
#define TRIES 2

struct dns {
	ares_channel ch;
	int ep;
	size_t pending;
};

struct question {
	struct dns *d;
	dns_cb cb;
	void *ctx;
	char *name;
};

/* c-ares opens, closes and waits on its sockets: mirror that in ep. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct epoll_event ev = {.events = (readable ? EPOLLIN : 0u) |
					   (writable ? EPOLLOUT : 0u),
				 .data.fd = fd};

	if (!readable && !writable)
		epoll_ctl(d->ep, EPOLL_CTL_DEL, fd, NULL);
	else if (epoll_ctl(d->ep, EPOLL_CTL_MOD, fd, &ev) && errno == ENOENT)
		epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev);
}

struct dns *dns_new(const char *servers, char *err, size_t errlen)
{
	struct dns *d = xcalloc(1, sizeof(*d));
	struct ares_options o = {0};
	int r;

	d->ep = epoll_create1(EPOLL_CLOEXEC);
	if (d->ep < 0) {
		snprintf(err, errlen, "dns: epoll: %s", strerror(errno));
		free(d);
		return NULL;
	}
	o.sock_state_cb = sock_state;
	o.sock_state_cb_data = d;
	o.timeout = TIMEOUT_MS;
	o.tries = TRIES;
	o.flags = ARES_FLAG_NOSEARCH;
	r = ares_library_init(ARES_LIB_INIT_ALL);
	if (!r)
		r = ares_init_options(&d->ch, &o,
				      ARES_OPT_SOCK_STATE_CB |
					  ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
					  ARES_OPT_FLAGS);
	if (r) {
		snprintf(err, errlen, "dns: %s", ares_strerror(r));
		close(d->ep);
		free(d);
		return NULL;
	}
	if (servers && (r = ares_set_servers_ports_csv(d->ch, servers))) {
		snprintf(err, errlen,
			 "--dns '%s': %s (want ADDR[:PORT],... with "
			 "[ADDR]:PORT for IPv6)",
			 servers, ares_strerror(r));
		dns_free(d);
		return NULL;
	}
	return d;
}

void dns_free(struct dns *d)
{
	if (!d)
		return;
	ares_destroy(d->ch); /* questions end with ARES_EDESTRUCTION */
	ares_library_cleanup();
	close(d->ep);
	free(d);
}

int dns_fd(const struct dns *d)
{
	return d->ep;
}

void dns_process(struct dns *d)
{
	struct epoll_event ev[8];
	int n, i;

	n = epoll_wait(d->ep, ev, 8, 0);
	for (i = 0; i < n; i++) {
		int fd = ev[i].data.fd;

		ares_process_fd(d->ch,
				ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)
				    ? fd
				    : ARES_SOCKET_BAD,
				ev[i].events & EPOLLOUT ? fd : ARES_SOCKET_BAD);
	}
	/* and the timeouts */
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

int dns_timeout_ms(const struct dns *d)
{
	struct timeval tv, *t;

	if (!d->pending)
		return -1;
	t = ares_timeout(d->ch, NULL, &tv);
	if (!t)
		return -1;
	return (int)(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000);
}

static void on_answer(void *arg, int status, int timeouts,
		      struct ares_addrinfo *res)
{
	struct question *q = arg;
	struct fqdn_addr a[FQDN_MAX_ADDRS];
	const struct ares_addrinfo_node *nd;
	const struct ares_addrinfo_cname *cn;
	unsigned ttl = ~0u;
	size_t n = 0;

	(void)timeouts;
	q->d->pending--;
	if (status == ARES_EDESTRUCTION)
		goto out;
	if (status != ARES_SUCCESS) {
		q->cb(q->ctx, q->name, NULL, 0, 0, ares_strerror(status));
		goto out;
	}
	for (nd = res->nodes; nd && n < FQDN_MAX_ADDRS; nd = nd->ai_next) {
		if (nd->ai_family == AF_INET &&
		    nd->ai_addrlen >= sizeof(struct sockaddr_in)) {
			const struct sockaddr_in *s = (void *)nd->ai_addr;

			a[n].family = AF_INET;
			a[n++].addr = ntohl(s->sin_addr.s_addr);
		} else if (nd->ai_family == AF_INET6 &&
			   nd->ai_addrlen >= sizeof(struct sockaddr_in6)) {
			const struct sockaddr_in6 *s = (void *)nd->ai_addr;
			u128 v = 0;
			int i;

			for (i = 0; i < 16; i++)
				v = v << 8 | s->sin6_addr.s6_addr[i];
			a[n].family = AF_INET6;
			a[n++].addr = v;
		} else {
			continue;
		}
		if (nd->ai_ttl >= 0 && (unsigned)nd->ai_ttl < ttl)
			ttl = (unsigned)nd->ai_ttl;
	}
	for (cn = res->cnames; cn; cn = cn->next)
		if (cn->ttl >= 0 && (unsigned)cn->ttl < ttl)
			ttl = (unsigned)cn->ttl;
	q->cb(q->ctx, q->name, a, n, n ? ttl : 0, n ? NULL : "no address");
out:
	if (res)
		ares_freeaddrinfo(res);
	free(q->name);
	free(q);
}

void dns_ask(struct dns *d, const char *name, dns_cb cb, void *ctx)
{
	struct ares_addrinfo_hints h = {.ai_family = AF_UNSPEC,
					.ai_flags = ARES_AI_NOSORT};
	struct question *q = xmalloc(sizeof(*q));

	q->d = d;
	q->cb = cb;
	q->ctx = ctx;
	q->name = xstrdup(name);
	d->pending++;
	ares_getaddrinfo(d->ch, name, NULL, &h, on_answer, q);
}

void dns_wait(struct dns *d)
{
	struct epoll_event ev;

	while (d->pending) {
		int t = dns_timeout_ms(d);

		epoll_wait(d->ep, &ev, 1, t < 0 ? 100 : t);
		dns_process(d);
	}
}
