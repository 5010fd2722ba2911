/* The Docker Engine API client: libcurl's multi interface over the unix
 * socket, its sockets and timer folded into one epoll fd the daemon's
 * loop waits on. It never blocks and never touches the kernel's
 * firewall; what it learns goes out through callbacks. */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "bulkhead/docker.h"

/* The newest API version this client knows the answers of. */
#define API_MAX_MAJOR 1
#define API_MAX_MINOR 44
#define REQUEST_TIMEOUT_MS 15000L
#define CONNECT_TIMEOUT_MS 3000L
#define BODY_MAX (256u << 20)
#define INSPECTS_IN_FLIGHT 8

struct xfer {
	struct docker *d;
	CURL *h;
	struct xfer *prev, *next;
	bool stream;
	struct strbuf body;
	struct docker_lines lines;
	docker_reply_fn cb;
	docker_line_fn on_line;
	void *ctx;
	char errbuf[CURL_ERROR_SIZE];
};

struct netname {
	char *id, *bridge;
};

struct snap {
	docker_snapshot_fn cb;
	void *ctx;
	struct inventory *inv;
	char **ids;
	size_t nids, next, inflight;
	char err[512];
};

struct docker {
	char *sock;
	char prefix[16]; /* "/v1.41", "" before negotiation */
	CURLM *m;
	int ep, tfd;
	struct xfer *xfers;
	size_t nxfers;
	struct netname *nets;
	size_t nnets, capnets;
	struct snap *snap;
	/* the last answer's buffer, for the next: a busy network's object
	 * is megabytes, and growing one anew for each connect (and freeing
	 * it) churned the heap that the placement then allocates from */
	struct strbuf spare;
};

const char *docker_sock_path(const char *path, char *err, size_t errlen)
{
	const char *h = getenv("DOCKER_HOST");

	if (path)
		return path;
	if (!h || !*h)
		return DOCKER_SOCK;
	if (!strncmp(h, "unix://", 7) && h[7])
		return h + 7;
	snprintf(err, errlen,
		 "DOCKER_HOST=%s: only unix:// sockets are supported", h);
	return NULL;
}

/* --- curl's sockets and timer, in our epoll ---------------------------- */

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp,
		     void *socketp)
{
	struct docker *d = userp;
	struct epoll_event ev = {.data.fd = s};

	(void)e;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(d->ep, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(d->ep, EPOLL_CTL_MOD, s, &ev) && errno == ENOENT)
		epoll_ctl(d->ep, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

static int on_timer(CURLM *m, long ms, void *userp)
{
	struct docker *d = userp;
	struct itimerspec its = {0};

	(void)m;
	if (ms == 0)
		its.it_value.tv_nsec = 1; /* now; 0 would disarm */
	else if (ms > 0) {
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (ms % 1000) * 1000000L;
	}
	timerfd_settime(d->tfd, 0, &its, NULL);
	return 0;
}

struct docker *docker_new(const char *sock, char *err, size_t errlen)
{
	struct docker *d = xcalloc(1, sizeof(*d));
	struct epoll_event ev = {.events = EPOLLIN};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	d->sock = xstrdup(sock);
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	d->m = curl_multi_init();
	if (d->ep < 0 || d->tfd < 0 || !d->m) {
		snprintf(err, errlen, "docker client: %s", strerror(errno));
		docker_free(d);
		return NULL;
	}
	ev.data.fd = d->tfd;
	epoll_ctl(d->ep, EPOLL_CTL_ADD, d->tfd, &ev);
	curl_multi_setopt(d->m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(d->m, CURLMOPT_SOCKETDATA, d);
	curl_multi_setopt(d->m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(d->m, CURLMOPT_TIMERDATA, d);
	return d;
}

static void snap_free(struct snap *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->nids; i++)
		free(s->ids[i]);
	free(s->ids);
	inventory_free(s->inv);
	free(s);
}

/* Takes x out of the multi handle and the list: its callback may then
 * start or cancel transfers freely. */
static void xfer_detach(struct xfer *x)
{
	struct docker *d = x->d;

	curl_multi_remove_handle(d->m, x->h);
	if (x->prev)
		x->prev->next = x->next;
	else
		d->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	d->nxfers--;
}

static void xfer_free(struct xfer *x)
{
	curl_easy_cleanup(x->h);
	if (!x->stream && x->body.cap > x->d->spare.cap) {
		sb_free(&x->d->spare);
		x->d->spare = x->body;
		x->d->spare.len = 0;
	} else {
		sb_free(&x->body);
	}
	docker_lines_free(&x->lines);
	free(x);
}

void docker_cancel_all(struct docker *d)
{
	while (d->xfers) {
		struct xfer *x = d->xfers;

		xfer_detach(x);
		xfer_free(x);
	}
	snap_free(d->snap);
	d->snap = NULL;
}

void docker_free(struct docker *d)
{
	size_t i;

	if (!d)
		return;
	docker_cancel_all(d);
	if (d->m)
		curl_multi_cleanup(d->m);
	if (d->ep >= 0)
		close(d->ep);
	if (d->tfd >= 0)
		close(d->tfd);
	for (i = 0; i < d->nnets; i++) {
		free(d->nets[i].id);
		free(d->nets[i].bridge);
	}
	free(d->nets);
	free(d->sock);
	sb_free(&d->spare);
	free(d);
}

int docker_fd(const struct docker *d)
{
	return d->ep;
}

size_t docker_pending(const struct docker *d)
{
	return d->nxfers;
}

const char *docker_api_version(const struct docker *d)
{
	return d->prefix[0] ? d->prefix + 2 : "";
}

/* --- transfers --------------------------------------------------------- */

static size_t on_write(char *p, size_t sz, size_t nm, void *ud)
{
	struct xfer *x = ud;
	size_t n = sz * nm;

	if (x->stream)
		return docker_lines_feed(&x->lines, p, n, x->on_line, x->ctx)
			   ? 0
			   : n;
	if (x->body.len + n > BODY_MAX)
		return 0; /* aborts: CURLE_WRITE_ERROR */
	sb_putn(&x->body, p, n);
	return n;
}

static int start(struct docker *d, const char *path, bool stream,
		 docker_reply_fn cb, docker_line_fn on_line, void *ctx)
{
	struct xfer *x = xcalloc(1, sizeof(*x));
	char *url = xasprintf("http://docker%s%s", d->prefix, path);

	x->d = d;
	x->stream = stream;
	if (!stream) {
		x->body = d->spare;
		d->spare = (struct strbuf){0};
	}
	x->cb = cb;
	x->on_line = on_line;
	x->ctx = ctx;
	x->h = curl_easy_init();
	if (!x->h) {
		free(url);
		free(x);
		return -ENOMEM;
	}
	curl_easy_setopt(x->h, CURLOPT_UNIX_SOCKET_PATH, d->sock);
	curl_easy_setopt(x->h, CURLOPT_URL, url);
	curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	/* the event stream is idle for as long as nothing happens */
	if (!stream)
		curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
	free(url);
	x->next = d->xfers;
	if (d->xfers)
		d->xfers->prev = x;
	d->xfers = x;
	d->nxfers++;
	if (curl_multi_add_handle(d->m, x->h) != CURLM_OK) {
		xfer_detach(x);
		xfer_free(x);
		return -EIO;
	}
	return 0;
}

int docker_get(struct docker *d, const char *path, docker_reply_fn cb,
	       void *ctx)
{
	return start(d, path, false, cb, NULL, ctx);
}

int docker_events(struct docker *d, docker_line_fn on_line,
		  docker_reply_fn on_end, void *ctx)
{
	/* {"type":["container","network"]} */
	return start(d,
		     "/events?filters=%7B%22type%22%3A%5B%22container%22%2C"
		     "%22network%22%5D%7D",
		     true, on_end, on_line, ctx);
}

static void finish(struct docker *d)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(d->m, &left))) {
		struct xfer *x = NULL;
		long status = 0;
		const char *why;
		CURLcode res;

		if (msg->msg != CURLMSG_DONE)
			continue;
		res = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
				  (char **)&x);
		if (res == CURLE_OK)
			curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE,
					  &status);
		why = res == CURLE_OK ? ""
		      : x->errbuf[0]  ? x->errbuf
				      : curl_easy_strerror(res);
		if (res == CURLE_WRITE_ERROR && x->stream)
			why = "an event line too long";
		else if (res == CURLE_WRITE_ERROR)
			why = "a reply too large";
		sb_putc(&x->body, '\0');
		x->body.len--;
		xfer_detach(x);
		if (x->cb)
			x->cb(x->ctx, status, x->body.s, x->body.len, why);
		xfer_free(x);
	}
}

void docker_dispatch(struct docker *d)
{
	struct epoll_event ev[16];
	int n, i, running;

	n = epoll_wait(d->ep, ev, 16, 0);
	for (i = 0; i < n; i++) {
		int fd = ev[i].data.fd, f = 0;

		if (fd == d->tfd) {
			uint64_t ticks;

			if (read(d->tfd, &ticks, sizeof(ticks)) < 0 &&
			    errno != EAGAIN)
				continue;
			curl_multi_socket_action(d->m, CURL_SOCKET_TIMEOUT, 0,
						 &running);
			continue;
		}
		if (ev[i].events & EPOLLIN)
			f |= CURL_CSELECT_IN;
		if (ev[i].events & EPOLLOUT)
			f |= CURL_CSELECT_OUT;
		if (ev[i].events & (EPOLLERR | EPOLLHUP))
			f |= CURL_CSELECT_ERR;
		curl_multi_socket_action(d->m, fd, f, &running);
	}
	finish(d);
}

/* --- version ----------------------------------------------------------- */

struct negotiation {
	struct docker *d;
	docker_reply_fn cb;
	void *ctx;
};

static bool parse_version(const char *s, unsigned *maj, unsigned *min)
{
	return s && sscanf(s, "%u.%u", maj, min) == 2;
}

static void on_version(void *ctx, long status, const char *body, size_t len,
		       const char *err)
{
	struct negotiation *n = ctx;
	json_t *j = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
	unsigned maj = API_MAX_MAJOR, min = API_MAX_MINOR, lo_maj, lo_min;

	if (j &&
	    parse_version(json_string_value(json_object_get(j, "ApiVersion")),
			  &maj, &min)) {
		/* the daemon's own version, unless newer than ours */
		if (maj > API_MAX_MAJOR ||
		    (maj == API_MAX_MAJOR && min > API_MAX_MINOR)) {
			maj = API_MAX_MAJOR;
			min = API_MAX_MINOR;
		}
		if (parse_version(
			json_string_value(json_object_get(j, "MinAPIVersion")),
			&lo_maj, &lo_min) &&
		    (maj < lo_maj || (maj == lo_maj && min < lo_min))) {
			maj = lo_maj;
			min = lo_min;
		}
		snprintf(n->d->prefix, sizeof(n->d->prefix), "/v%u.%u", maj,
			 min);
	} else if (status == 200) {
		status = 0;
		err = "/version: not the Docker API";
	}
	json_decref(j);
	n->cb(n->ctx, status, body, len, err);
	free(n);
}

int docker_negotiate(struct docker *d, docker_reply_fn cb, void *ctx)
{
	struct negotiation *n = xcalloc(1, sizeof(*n));
	int r;

	n->d = d;
	n->cb = cb;
	n->ctx = ctx;
	d->prefix[0] = '\0';
	r = docker_get(d, "/version", on_version, n);
	if (r)
		free(n);
	return r;
}

/* --- networks and inspect objects ------------------------------------- */

static void learn(struct docker *d, json_t *net)
{
	const char *id = json_string_value(json_object_get(net, "Id"));
	json_t *o = json_object_get(net, "Options");
	const char *br = json_string_value(
	    json_object_get(o, "com.docker.network.bridge.name"));
	struct netname *nn;
	size_t i;

	if (!id)
		return;
	if (br && !*br)
		br = NULL;
	for (i = 0; i < d->nnets; i++)
		if (!strcmp(d->nets[i].id, id)) {
			if (br) {
				free(d->nets[i].bridge);
				d->nets[i].bridge = xstrdup(br);
			}
			return;
		}
	/* known from now on, its bridge br-<id> unless named */
	nn = PUSH(d->nets, d->nnets, d->capnets);
	nn->id = xstrdup(id);
	nn->bridge = br ? xstrdup(br) : NULL;
}

static bool known_network(const struct docker *d, const char *id)
{
	size_t i;

	for (i = 0; i < d->nnets; i++)
		if (!strcmp(d->nets[i].id, id))
			return true;
	return false;
}

void docker_learn_network(struct docker *d, const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL);

	if (json_is_object(j))
		learn(d, j);
	json_decref(j);
}

/* Bridge names from network options replace the br-<id> default. */
static void rename_bridges(struct docker *d, struct inv_container *c)
{
	size_t i, k;

	for (i = 0; i < c->nnets; i++)
		for (k = 0; k < d->nnets; k++)
			if (c->nets[i].id && d->nets[k].bridge &&
			    !strcmp(c->nets[i].id, d->nets[k].id)) {
				free(c->nets[i].bridge);
				c->nets[i].bridge = xstrdup(d->nets[k].bridge);
			}
}

/* Adds the inspect-shaped object j (a container) to inv. */
static int add_container(struct docker *d, json_t *j, struct inventory *inv,
			 char *err, size_t errlen)
{
	struct diags dg = {0};
	size_t before = inv->n;
	int r = -EINVAL;

	if (inventory_add_json(inv, j, "docker", 0, 0, &dg))
		snprintf(err, errlen, "%s",
			 dg.n ? dg.v[0].msg : "bad inspect object");
	else
		r = 0;
	if (!r && inv->n > before)
		rename_bridges(d, &inv->c[inv->n - 1]);
	diags_free(&dg);
	return r;
}

int docker_parse_inspect(struct docker *d, const char *body, size_t len,
			 struct inventory *inv, char *err, size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(body, len, 0, &je);
	int r = -EINVAL;

	if (!j)
		snprintf(err, errlen, "inspect reply: %s at %d:%d", je.text,
			 je.line, je.column);
	else
		r = add_container(d, j, inv, err, errlen);
	json_decref(j);
	return r;
}

/* An endpoint's "ADDR/PLEN" as inspect's address and prefix fields. */
static int endpoint_addr(json_t *out, const char *cidr, const char *akey,
			 const char *pkey, char *err, size_t errlen)
{
	const char *slash;
	char *end;
	long plen;

	if (!cidr || !*cidr)
		return 0;
	slash = strchr(cidr, '/');
	if (!slash) {
		json_object_set_new(out, akey, json_string(cidr));
		return 0;
	}
	plen = strtol(slash + 1, &end, 10);
	if (end == slash + 1 || *end || plen < 0 || plen > 128) {
		snprintf(err, errlen,
			 "network reply: bad endpoint address "
			 "'%.60s'",
			 cidr);
		return -EINVAL;
	}
	json_object_set_new(out, akey,
			    json_stringn(cidr, (size_t)(slash - cidr)));
	json_object_set_new(out, pkey, json_integer(plen));
	return 0;
}

/* The list entry with exactly this id (Docker's id filter also matches
 * prefixes), or NULL. */
static json_t *list_entry(json_t *list, const char *id)
{
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e)
	{
		const char *eid = json_string_value(json_object_get(e, "Id"));

		if (eid && !strcmp(eid, id))
			return e;
	}
	return NULL;
}

/* --- a network object, sliced ------------------------------------------ */

/* The index of the quote that closes the string opening at s[i], or len. */
static size_t skip_string(const char *s, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (s[i] == '\\')
			i++;
		else if (s[i] == '"')
			return i;
	}
	return len;
}

/* From the start of a value, the index just past it (a scalar ends at the
 * ',' or closing bracket that follows it), or len. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
	size_t depth = 0;

	for (; i < len; i++) {
		char c = s[i];

		if (c == '"') {
			i = skip_string(s, len, i);
			if (i < len && !depth)
				return i + 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (!depth)
				return i;
			if (!--depth)
				return i + 1;
		} else if (c == ',' && !depth) {
			return i;
		}
	}
	return len;
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
	while (i < len && strchr(" \t\r\n", s[i]) && s[i])
		i++;
	return i;
}

typedef bool (*member_fn)(void *ctx, const char *key, size_t klen,
			  const char *s, size_t len, size_t v);

/* Calls fn for each member of the object that opens at s[i], with the
 * key's bytes (as written: escapes are not undone) and the index of its
 * value; fn returns false to stop. Returns false when the text is not an
 * object of that shape. */
static bool each_member(const char *s, size_t len, size_t i, member_fn fn,
			void *ctx)
{
	i = skip_ws(s, len, i);
	if (i >= len || s[i] != '{')
		return false;
	i = skip_ws(s, len, i + 1);
	if (i < len && s[i] == '}')
		return true;
	while (i < len && s[i] == '"') {
		size_t k = i + 1, kend = skip_string(s, len, i), v;

		if (kend >= len)
			return false;
		i = skip_ws(s, len, kend + 1);
		if (i >= len || s[i] != ':')
			return false;
		v = skip_ws(s, len, i + 1);
		if (!fn(ctx, s + k, kend - k, s, len, v))
			return true;
		i = skip_ws(s, len, skip_value(s, len, v));
		if (i < len && s[i] == '}')
			return true;
		if (i >= len || s[i] != ',')
			return false;
		i = skip_ws(s, len, i + 1);
	}
	return false;
}

static json_t *value_at(const char *s, size_t len, size_t v)
{
	return json_loadb(s + v, len - v,
			  JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, NULL);
}

static bool key_is(const char *key, size_t klen, const char *want)
{
	return klen == strlen(want) && !memcmp(key, want, klen);
}

struct slice {
	json_t *out, *containers;
	const char *id;
	const struct docker *d;
	bool bad, known; /* known: the network's Id was learnt before */
};

static bool slice_container(void *ctx, const char *key, size_t klen,
			    const char *s, size_t len, size_t v)
{
	struct slice *sl = ctx;

	if (!key_is(key, klen, sl->id))
		return true;
	json_object_set_new(sl->containers, sl->id, value_at(s, len, v));
	return false;
}

/* The entry whose value opens at s[at], under Containers for sl->id. */
static bool take_entry(struct slice *sl, const char *s, size_t len, size_t at)
{
	json_t *e = value_at(s, len, at);

	if (!json_is_object(e)) {
		json_decref(e);
		return false;
	}
	json_object_set_new(sl->containers, sl->id, e);
	return true;
}

/* The first member `"K":{` whose `":{` is at or after p, with K shaped
 * as an id of idlen bytes (hex: what Docker keys Containers by): K in
 * *k, and where its `":{` is; NULL when there is none. */
static const char *next_key(const char *s, const char *p, const char *end,
			    size_t idlen, const char **k)
{
	while (p < end &&
	       (p = memmem(p, (size_t)(end - p), "\":{", 3)) != NULL) {
		const char *q;
		size_t i = 0;

		if ((size_t)(p - s) < idlen + 2) {
			p++;
			continue;
		}
		q = p - idlen;
		while (i < idlen && isxdigit((unsigned char)q[i]))
			i++;
		if (i == idlen && q[-1] == '"' &&
		    (q[-2] == '{' || q[-2] == ',')) {
			*k = q;
			return p;
		}
		p++;
	}
	return NULL;
}

/* The container's entry under Containers, found by its key: in Docker's
 * compact JSON `"ID":{` at a member's place can be nothing else (label
 * and option values are strings). Go writes a map's keys sorted, so the
 * key is looked for by halves (a few hundred bytes read, not the whole
 * network); else, in an answer not sorted, by one search through it.
 * False when not there in that form. */
static bool find_container(struct slice *sl, const char *s, size_t len,
			   size_t v)
{
	char pat[DOCKER_ID_MAX + 8];
	int plen = snprintf(pat, sizeof(pat), "\"%s\":{", sl->id);
	size_t idlen = strlen(sl->id);
	const char *p = s + v, *lo = s + v, *hi = s + len, *mid, *at, *k;

	if (plen < 0 || (size_t)plen >= sizeof(pat))
		return false;
	while (lo < hi) {
		int c;

		mid = lo + (hi - lo) / 2;
		at = next_key(s, mid, s + len, idlen, &k);
		if (!at || at >= hi) {
			hi = mid;
			continue;
		}
		c = memcmp(k, sl->id, idlen);
		if (!c)
			return take_entry(sl, s, len, (size_t)(at + 2 - s));
		if (c < 0)
			lo = at + 1;
		else
			hi = mid;
	}
	while ((p = memmem(p, len - (size_t)(p - s), pat, (size_t)plen))) {
		if (p > s + v && (p[-1] == '{' || p[-1] == ','))
			return take_entry(sl, s, len,
					  (size_t)(p - s) + (size_t)plen - 1);
		p++;
	}
	return false;
}

static bool slice_top(void *ctx, const char *key, size_t klen, const char *s,
		      size_t len, size_t v)
{
	static const char *const keep[] = {"Name", "Id", "Options"};
	struct slice *sl = ctx;
	size_t i;

	if (key_is(key, klen, "Containers")) {
		/* null when no container is attached; found by a search
		 * (the walk on, past Containers, is one pass), else walked */
		if (len - v >= 4 && !memcmp(s + v, "null", 4))
			return true;
		if (find_container(sl, s, len, v))
			/* what follows (Options) is known already, and
			 * walking past every container costs the most */
			return !sl->known;
		sl->bad |= !each_member(s, len, v, slice_container, sl);
		return true;
	}
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (key_is(key, klen, keep[i])) {
			json_t *val = value_at(s, len, v);

			if (i == 1 && json_is_string(val))
				sl->known = known_network(
				    sl->d, json_string_value(val));
			json_object_set_new(sl->out, keep[i], val);
		}
	return true;
}

/* What a connect needs of a network object (Name, Id, Options, and the
 * one container's entry under Containers) without building all of it: on
 * a busy network the object lists every container, and parsing it whole
 * cost more than the rest of a placement. The walk above only follows
 * strings and nesting; jansson parses each value kept. NULL when the text
 * is not an object of that shape. */
static json_t *network_slice(const struct docker *d, const char *s, size_t len,
			     const char *id)
{
	struct slice sl = {json_object(), json_object(), id, d, false, false};

	if (!each_member(s, len, 0, slice_top, &sl) || sl.bad) {
		json_decref(sl.out);
		json_decref(sl.containers);
		return NULL;
	}
	json_object_set_new(sl.out, "Containers", sl.containers);
	return sl.out;
}

int docker_parse_connect(struct docker *d, const char *list, size_t list_len,
			 const char *net, size_t net_len, const char *id,
			 struct inventory *inv, char *err, size_t errlen)
{
	json_t *l = json_loadb(list, list_len, 0, NULL);
	int r =
	    docker_parse_connect_in(d, l, net, net_len, id, inv, err, errlen);

	json_decref(l);
	return r;
}

int docker_parse_connect_in(struct docker *d, json_t *l, const char *net,
			    size_t net_len, const char *id,
			    struct inventory *inv, char *err, size_t errlen)
{
	json_t *n = network_slice(d, net, net_len, id);
	json_t *e, *ep, *names, *obj = NULL, *cfg, *nets, *one;
	const char *state, *netid, *netname, *name;
	int r = -EINVAL;

	if (!json_is_array(l)) {
		snprintf(err, errlen, "container list reply: not an array");
		goto out;
	}
	if (!json_is_object(n) ||
	    !(netid = json_string_value(json_object_get(n, "Id"))) ||
	    !(netname = json_string_value(json_object_get(n, "Name")))) {
		snprintf(err, errlen, "network reply: not a network object");
		goto out;
	}
	learn(d, n);
	r = 0;
	e = list_entry(l, id);
	state = json_string_value(json_object_get(e, "State"));
	ep = json_object_get(json_object_get(n, "Containers"), id);
	if (!state || (strcmp(state, "created") && strcmp(state, "running")) ||
	    !json_is_object(ep))
		goto out; /* gone, or left the network again */
	names = json_object_get(e, "Names");
	name = json_string_value(json_array_get(names, 0));
	obj = json_pack("{s:s, s:s?}", "Id", id, "Name", name);
	cfg = json_object();
	json_object_set(cfg, "Image", json_object_get(e, "Image"));
	json_object_set(cfg, "Labels", json_object_get(e, "Labels"));
	json_object_set_new(obj, "Config", cfg);
	one = json_pack("{s:s}", "NetworkID", netid);
	/* the endpoint's MAC: its port is found by it until inspect names
	 * the container's namespace */
	if (json_is_string(json_object_get(ep, "MacAddress")))
		json_object_set(one, "MacAddress",
				json_object_get(ep, "MacAddress"));
	r = endpoint_addr(one,
			  json_string_value(json_object_get(ep, "IPv4Address")),
			  "IPAddress", "IPPrefixLen", err, errlen);
	if (!r)
		r = endpoint_addr(
		    one, json_string_value(json_object_get(ep, "IPv6Address")),
		    "GlobalIPv6Address", "GlobalIPv6PrefixLen", err, errlen);
	nets = json_object();
	json_object_set_new(nets, netname, one);
	json_object_set_new(obj, "NetworkSettings",
			    json_pack("{s:o}", "Networks", nets));
	if (!r)
		r = add_container(d, obj, inv, err, errlen);
out:
	json_decref(obj);
	json_decref(n);
	return r;
}

/* --- the snapshot ----------------------------------------------------- */

static void snap_end(struct docker *d)
{
	struct snap *s = d->snap;
	struct inventory *inv = NULL;

	if (s->inflight)
		return;
	if (!s->err[0] && s->next < s->nids)
		return;
	d->snap = NULL;
	if (!s->err[0]) {
		inv = s->inv;
		s->inv = NULL;
	}
	s->cb(s->ctx, inv, s->err[0] ? s->err : NULL);
	snap_free(s);
}

static void snap_fail(struct snap *s, const char *what, long status,
		      const char *err)
{
	if (s->err[0])
		return;
	if (status)
		snprintf(s->err, sizeof(s->err), "%s: HTTP status %ld", what,
			 status);
	else
		snprintf(s->err, sizeof(s->err), "%s: %s", what, err);
}

static void snap_more(struct docker *d);

static void on_inspect(void *ctx, long status, const char *body, size_t len,
		       const char *err)
{
	struct docker *d = ctx;
	struct snap *s = d->snap;
	char why[256];

	s->inflight--;
	/* 404: it went away since the list; its die event follows */
	if (status == 200) {
		if (docker_parse_inspect(d, body, len, s->inv, why,
					 sizeof(why)))
			snap_fail(s, "container inspect", 0, why);
	} else if (status != 404)
		snap_fail(s, "container inspect", status, err);
	snap_more(d);
}

static void snap_more(struct docker *d)
{
	struct snap *s = d->snap;

	while (!s->err[0] && s->next < s->nids &&
	       s->inflight < INSPECTS_IN_FLIGHT) {
		char *path =
		    xasprintf("/containers/%s/json", s->ids[s->next++]);

		if (docker_get(d, path, on_inspect, d))
			snap_fail(s, "container inspect", 0, "cannot start");
		else
			s->inflight++;
		free(path);
	}
	snap_end(d);
}

static bool hex_id(const char *s)
{
	size_t n = s ? strspn(s, "0123456789abcdef") : 0;

	return n && n <= DOCKER_ID_MAX && !s[n];
}

static void on_list(void *ctx, long status, const char *body, size_t len,
		    const char *err)
{
	struct docker *d = ctx;
	struct snap *s = d->snap;
	json_t *j = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
	size_t i, cap = 0;

	if (status != 200)
		snap_fail(s, "/containers/json", status, err);
	else if (!json_is_array(j))
		snap_fail(s, "/containers/json", 0, "not a JSON array");
	for (i = 0; j && i < json_array_size(j); i++) {
		const char *id = json_string_value(
		    json_object_get(json_array_get(j, i), "Id"));

		if (!hex_id(id)) {
			snap_fail(s, "/containers/json", 0,
				  "a container without a proper Id");
			break;
		}
		*PUSH(s->ids, s->nids, cap) = xstrdup(id);
	}
	json_decref(j);
	snap_more(d);
}

static void on_networks(void *ctx, long status, const char *body, size_t len,
			const char *err)
{
	struct docker *d = ctx;
	struct snap *s = d->snap;
	json_t *j = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
	size_t i;

	if (!json_is_array(j)) {
		if (status != 200)
			snap_fail(s, "/networks", status, err);
		else
			snap_fail(s, "/networks", 0, "not a JSON array");
		json_decref(j);
		snap_end(d);
		return;
	}
	for (i = 0; i < json_array_size(j); i++)
		learn(d, json_array_get(j, i));
	json_decref(j);
	if (docker_get(d, "/containers/json", on_list, d)) {
		snap_fail(s, "/containers/json", 0, "cannot start");
		snap_end(d);
	}
}

int docker_snapshot(struct docker *d, docker_snapshot_fn cb, void *ctx)
{
	int r;

	if (d->snap)
		return -EBUSY;
	d->snap = xcalloc(1, sizeof(*d->snap));
	d->snap->cb = cb;
	d->snap->ctx = ctx;
	d->snap->inv = inventory_new();
	r = docker_get(d, "/networks", on_networks, d);
	if (r) {
		snap_free(d->snap);
		d->snap = NULL;
	}
	return r;
}

/* --- the same, waited for (the CLI) ---------------------------------- */

struct waiter {
	bool done;
	long status;
	struct inventory *inv;
	char err[512];
};

static void on_wait_version(void *ctx, long status, const char *body,
			    size_t len, const char *err)
{
	struct waiter *w = ctx;

	(void)body;
	(void)len;
	w->done = true;
	w->status = status;
	if (status != 200)
		snprintf(w->err, sizeof(w->err), "/version: %s",
			 status ? "unexpected HTTP status" : err);
}

static void on_wait_snapshot(void *ctx, struct inventory *inv, const char *err)
{
	struct waiter *w = ctx;

	w->done = true;
	w->inv = inv;
	if (!inv)
		snprintf(w->err, sizeof(w->err), "%s", err);
}

static void wait_done(struct docker *d, struct waiter *w)
{
	struct pollfd pfd = {.fd = docker_fd(d), .events = POLLIN};

	while (!w->done) {
		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			break;
		docker_dispatch(d);
	}
}

int docker_snapshot_wait(const char *sock, struct inventory **out, char *err,
			 size_t errlen)
{
	struct docker *d = docker_new(sock, err, errlen);
	struct waiter w = {0};
	int r = -EIO;

	*out = NULL;
	if (!d)
		return r;
	if (!docker_negotiate(d, on_wait_version, &w))
		wait_done(d, &w);
	if (w.status == 200) {
		w.done = false;
		if (!docker_snapshot(d, on_wait_snapshot, &w))
			wait_done(d, &w);
	}
	if (w.inv) {
		*out = w.inv;
		r = 0;
	} else
		snprintf(err, errlen, "docker at %s: %s", sock,
			 w.err[0] ? w.err : "no answer");
	docker_free(d);
	return r;
}

/* --- events ------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

int docker_event_parse(const char *line, size_t len, struct docker_event *ev)
{
	static const struct {
		const char *type, *action;
		enum docker_ev_kind kind;
	} acts[] = {
	    {"container", "start", DEV_START},
	    {"container", "die", DEV_STOP},
	    {"container", "stop", DEV_STOP},
	    {"container", "destroy", DEV_STOP},
	    {"container", "rename", DEV_UPDATE},
	    {"network", "connect", DEV_CONNECT},
	    {"network", "disconnect", DEV_UPDATE},
	    {"network", "create", DEV_NETWORK_NEW},
	};
	json_t *j = json_loadb(line, len, 0, NULL), *actor;
	const char *type, *action, *id = NULL, *net = NULL;
	size_t i;
	int r = -EINVAL;

	memset(ev, 0, sizeof(*ev));
	actor = json_object_get(j, "Actor");
	type = jstr(j, "Type");
	action = jstr(j, "Action");
	if (!json_is_object(j) || !type || !action || !json_is_object(actor))
		goto out;
	r = 0;
	for (i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if (!strcmp(type, acts[i].type) &&
		    !strcmp(action, acts[i].action))
			break;
	if (i == sizeof(acts) / sizeof(acts[0]))
		goto out; /* DEV_OTHER */
	if (!strcmp(type, "network") && acts[i].kind != DEV_NETWORK_NEW) {
		id = jstr(json_object_get(actor, "Attributes"), "container");
		net = jstr(actor, "ID");
	} else
		id = jstr(actor, "ID");
	if (!hex_id(id) || (acts[i].kind == DEV_CONNECT && !hex_id(net))) {
		r = -EINVAL;
		goto out;
	}
	ev->kind = acts[i].kind;
	strcpy(ev->id, id);
	if (acts[i].kind == DEV_CONNECT)
		strcpy(ev->net, net);
out:
	json_decref(j);
	return r;
}

int docker_lines_feed(struct docker_lines *l, const char *data, size_t len,
		      docker_line_fn cb, void *ctx)
{
	size_t start = 0, i, scan = l->len;

	grow(&l->buf, &l->cap, l->len + len, 1);
	memcpy(l->buf + l->len, data, len);
	l->len += len;
	for (i = scan; i < l->len; i++) {
		size_t n;

		if (l->buf[i] != '\n')
			continue;
		n = i - start;
		if (n && l->buf[start + n - 1] == '\r')
			n--;
		if (n)
			cb(ctx, l->buf + start, n);
		start = i + 1;
	}
	memmove(l->buf, l->buf + start, l->len - start);
	l->len -= start;
	return l->len > DOCKER_LINE_MAX ? -E2BIG : 0;
}

void docker_lines_free(struct docker_lines *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}
