/* The metrics endpoint (see scrape.h). We open the listening socket
 * (before the daemon drops its privileges) and hand it to libmicrohttpd
 * in its external epoll mode: its epoll fd sits in our loop, our timerfd
 * wakes it for its timeouts, and each MHD_run does what is ready and
 * returns. The library parses HTTP; we answer one path. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <microhttpd.h>

#include "bulkhead/control.h"
#include "bulkhead/scrape.h"

struct scrape {
	struct MHD_Daemon *mhd;
	int lfd, tfd;
	char *unix_path; /* unlinked at close */
	scrape_fn fn;
	void *ctx;
	unsigned long served;
};

/* addr as a socket address: 0, or -EINVAL with the reason. */
static int parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
		 char *err, size_t errlen)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(addr, ':');
	char host[64], *end;
	unsigned long port;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (!colon || colon == addr)
		goto bad;
	n = (size_t)(colon - addr);
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || !port || port > 65535) {
		snprintf(err, errlen,
			 "--metrics %s: the port is not a number from 1 to "
			 "65535",
			 addr);
		return -EINVAL;
	}
	if (addr[0] == '[') {
		if (n < 3 || addr[n - 1] != ']' || n - 2 >= sizeof(host))
			goto bad;
		memcpy(host, addr + 1, n - 2);
		host[n - 2] = 0;
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			goto bad;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	if (n >= sizeof(host))
		goto bad;
	memcpy(host, addr, n);
	host[n] = 0;
	if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
		goto bad;
	in4->sin_family = AF_INET;
	in4->sin_port = htons((uint16_t)port);
	*len = sizeof(*in4);
	return 0;
bad:
	snprintf(err, errlen,
		 "--metrics %s: not IPV4:PORT, [IPV6]:PORT or unix:PATH "
		 "(addresses only, no names)",
		 addr);
	return -EINVAL;
}

int scrape_addr_check(const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!strncmp(addr, "unix:", 5)) {
		if (addr[5] != '/') {
			snprintf(err, errlen,
				 "--metrics %s: unix:PATH takes an absolute "
				 "path",
				 addr);
			return -EINVAL;
		}
		return 0;
	}
	return parse(addr, &ss, &len, err, errlen);
}

static int tcp_listen(const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (parse(addr, &ss, &len, err, errlen))
		return -1;
	fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 64)) {
		snprintf(err, errlen, "--metrics %s: %s", addr,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_len, void **req)
{
	struct scrape *s = cls;
	struct MHD_Response *r;
	struct strbuf out = {0};
	enum MHD_Result ret;

	(void)version;
	(void)upload;
	(void)req;
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND,
			     "only /metrics is served here\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED,
			     "only GET /metrics is served here\n");
	if (*upload_len) {
		*upload_len = 0; /* a GET with a body: the body is ignored */
		return MHD_YES;
	}
	s->fn(s->ctx, &out);
	r = MHD_create_response_from_buffer(out.len, out.s,
					    MHD_RESPMEM_MUST_FREE);
	if (!r) {
		sb_free(&out);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	s->served++;
	return ret;
}

struct scrape *scrape_open(const char *addr, const char *group, scrape_fn fn,
			   void *ctx, char *err, size_t errlen)
{
	struct scrape *s = xcalloc(1, sizeof(*s));
	const union MHD_DaemonInfo *info;

	s->fn = fn;
	s->ctx = ctx;
	s->tfd = -1;
	if (!strncmp(addr, "unix:", 5)) {
		s->lfd = control_listen_unix("metrics socket", addr + 5, group,
					     err, errlen);
		if (s->lfd >= 0)
			s->unix_path = xstrdup(addr + 5);
	} else {
		s->lfd = tcp_listen(addr, err, errlen);
	}
	if (s->lfd < 0)
		goto fail;
	s->mhd = MHD_start_daemon(
	    MHD_USE_EPOLL, 0, NULL, NULL, handle, s, MHD_OPTION_LISTEN_SOCKET,
	    s->lfd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)SCRAPE_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SCRAPE_IDLE_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SCRAPE_CONN_MEMORY,
	    MHD_OPTION_END);
	if (s->mhd)
		s->lfd = -1; /* the library's now: it closes it */
	info = s->mhd ? MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD)
		      : NULL;
	if (!info) {
		snprintf(err, errlen,
			 "--metrics %s: libmicrohttpd would not "
			 "start on it",
			 addr);
		goto fail;
	}
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->tfd < 0) {
		snprintf(err, errlen, "--metrics: timerfd: %s",
			 strerror(errno));
		goto fail;
	}
	return s;
fail:
	scrape_close(s);
	return NULL;
}

void scrape_close(struct scrape *s)
{
	if (!s)
		return;
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->tfd >= 0)
		close(s->tfd);
	if (s->unix_path)
		unlink(s->unix_path);
	free(s->unix_path);
	free(s);
}

int scrape_fd(const struct scrape *s)
{
	return MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd;
}

int scrape_timer_fd(const struct scrape *s)
{
	return s->tfd;
}

void scrape_run(struct scrape *s)
{
	struct itimerspec its = {0};
	MHD_UNSIGNED_LONG_LONG ms;
	uint64_t ticks;

	if (read(s->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	MHD_run(s->mhd);
	if (MHD_get_timeout(s->mhd, &ms) == MHD_YES) {
		its.it_value.tv_sec = (time_t)(ms / 1000);
		its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
		if (!ms)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(s->tfd, 0, &its, NULL);
}

unsigned long scrape_served(const struct scrape *s)
{
	return s->served;
}
