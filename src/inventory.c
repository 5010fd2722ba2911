/* Inventory from `docker inspect` JSON (jansson). The array is streamed one
 * container at a time so that memory does not grow with the file; this
 * module reads the file it is given and nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bulkhead/inventory.h"

struct inventory *inventory_new(void)
{
	return xcalloc(1, sizeof(struct inventory));
}

static void container_free(struct inv_container *c)
{
	size_t i;

	free(c->id);
	free(c->name);
	free(c->image);
	free(c->compose_service);
	free(c->compose_project);
	free(c->sandbox);
	for (i = 0; i < c->nlabels; i++) {
		free(c->labels[i].key);
		free(c->labels[i].value);
	}
	free(c->labels);
	for (i = 0; i < c->nnets; i++) {
		free(c->nets[i].name);
		free(c->nets[i].id);
		free(c->nets[i].bridge);
		free(c->nets[i].port);
	}
	free(c->nets);
	for (i = 0; i < c->nports; i++)
		free(c->ports[i].host_ip);
	free(c->ports);
}

/* --- the id index ---------------------------------------------------- */

static void ids_link(struct inventory *inv, size_t i)
{
	struct inv_ids *x = &inv->ids;
	size_t b, j;

	if (x->capnext < inv->cap) {
		x->next = xrealloc(x->next, inv->cap * sizeof(*x->next));
		x->capnext = inv->cap;
	}
	if (x->count + 1 > x->nb) {
		/* grown past one a chain: all linked anew, twice as wide */
		free(x->head);
		x->nb = x->nb ? 2 * x->nb : 64;
		x->head = xmalloc(x->nb * sizeof(*x->head));
		for (b = 0; b < x->nb; b++)
			x->head[b] = -1;
		x->count = 0;
		for (j = 0; j < i; j++) {
			b = str_hash(inv->c[j].id) % x->nb;
			x->next[j] = x->head[b];
			x->head[b] = (long)j;
			x->count++;
		}
	}
	b = str_hash(inv->c[i].id) % x->nb;
	x->next[i] = x->head[b];
	x->head[b] = (long)i;
	x->count++;
}

static void ids_unlink(struct inventory *inv, size_t i)
{
	struct inv_ids *x = &inv->ids;
	long *at;

	if (!x->nb)
		return;
	for (at = &x->head[str_hash(inv->c[i].id) % x->nb]; *at >= 0;
	     at = &x->next[*at])
		if (*at == (long)i) {
			*at = x->next[i];
			x->count--;
			return;
		}
}

/* c[idx] leaves: the last container takes its place. */
static void take(struct inventory *inv, size_t idx)
{
	size_t last = inv->n - 1;

	if (inv->ids.count != inv->n) { /* not indexed: built by hand */
		inv->c[idx] = inv->c[last];
		inv->n--;
		return;
	}
	ids_unlink(inv, idx);
	if (idx != last) {
		ids_unlink(inv, last);
		inv->c[idx] = inv->c[last];
		inv->n--;
		ids_link(inv, idx);
	} else {
		inv->n--;
	}
}

static void append(struct inventory *inv, const struct inv_container *c)
{
	*PUSH(inv->c, inv->n, inv->cap) = *c;
	if (inv->ids.count == inv->n - 1)
		ids_link(inv, inv->n - 1);
}

void inventory_free(struct inventory *inv)
{
	size_t i;

	if (!inv)
		return;
	for (i = 0; i < inv->n; i++)
		container_free(&inv->c[i]);
	free(inv->c);
	free(inv->ids.head);
	free(inv->ids.next);
	inventory_clear_bports(inv);
	free(inv->bports);
	free(inv);
}

void inventory_clear_bports(struct inventory *inv)
{
	size_t i;

	for (i = 0; i < inv->nbports; i++) {
		free(inv->bports[i].bridge);
		free(inv->bports[i].port);
	}
	inv->nbports = 0;
}

void inventory_remove(struct inventory *inv, size_t idx)
{
	struct inv_container c = inv->c[idx];

	take(inv, idx);
	container_free(&c);
}

void inventory_move(struct inventory *dst, struct inventory *src, size_t idx)
{
	append(dst, &src->c[idx]);
	take(src, idx);
}

void inventory_merge_nets(struct inv_container *c,
			  const struct inv_container *old)
{
	size_t i, j, cap = c->nnets;

	for (i = 0; i < old->nnets; i++) {
		const struct inv_net *o = &old->nets[i];
		struct inv_net *n;

		for (j = 0; j < c->nnets; j++)
			if (!strcmp(c->nets[j].id, o->id))
				break;
		if (j < c->nnets)
			continue;
		n = PUSH(c->nets, c->nnets, cap);
		*n = *o;
		n->name = xstrdup(o->name);
		n->id = xstrdup(o->id);
		n->bridge = xstrdup(o->bridge);
		n->port = o->port ? xstrdup(o->port) : NULL;
	}
}

long inventory_index(const struct inventory *inv, const char *id)
{
	size_t i;
	long j;

	if (inv->ids.nb && inv->ids.count == inv->n) {
		for (j = inv->ids.head[str_hash(id) % inv->ids.nb]; j >= 0;
		     j = inv->ids.next[j])
			if (!strcmp(inv->c[j].id, id))
				return j;
		return -1;
	}
	/* built by hand, not by the functions above: scanned */
	for (i = 0; i < inv->n; i++)
		if (!strcmp(inv->c[i].id, id))
			return (long)i;
	return -1;
}

const char *inv_label(const struct inv_container *c, const char *key)
{
	size_t i;

	for (i = 0; i < c->nlabels; i++)
		if (!strcmp(c->labels[i].key, key))
			return c->labels[i].value;
	return NULL;
}

const struct inv_container *inventory_find(const struct inventory *inv,
					   const char *q)
{
	size_t i, n = strlen(q);

	for (i = 0; i < inv->n; i++)
		if (!strcmp(inv->c[i].name, q))
			return &inv->c[i];
	if (n < 4)
		return NULL;
	for (i = 0; i < inv->n; i++)
		if (!strncmp(inv->c[i].id, q, n))
			return &inv->c[i];
	return NULL;
}

/* --- one container ---------------------------------------------------- */

static const char *opt_str(json_t *o, const char *key, bool *bad)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

static int add_net(struct inv_container *c, size_t *cap, const char *name,
		   json_t *n, char **why)
{
	const char *id, *ip4, *ip6, *mac;
	struct inv_net *net;
	bool bad = false;
	json_t *plen;
	int fam;
	u128 a;

	if (!json_is_object(n)) {
		*why = xasprintf("network '%s' is not an object", name);
		return -EINVAL;
	}
	id = opt_str(n, "NetworkID", &bad);
	ip4 = opt_str(n, "IPAddress", &bad);
	ip6 = opt_str(n, "GlobalIPv6Address", &bad);
	mac = opt_str(n, "MacAddress", &bad);
	if (bad) {
		*why = xasprintf("network '%s': NetworkID, IPAddress, "
				 "GlobalIPv6Address and MacAddress must be "
				 "strings",
				 name);
		return -EINVAL;
	}
	if ((!ip4 || !*ip4) && (!ip6 || !*ip6))
		return 0; /* host/none, or not connected yet */
	net = PUSH(c->nets, c->nnets, *cap);
	memset(net, 0, sizeof(*net));
	net->name = xstrdup(name);
	net->id = xstrdup(id ? id : "");
	if (!strcmp(name, "bridge"))
		net->bridge = xstrdup("docker0");
	else
		net->bridge = xasprintf("br-%.12s", net->id);
	if (mac && *mac) {
		if (mac_parse(mac, &net->mac)) {
			*why = xasprintf("network '%s': MacAddress '%s' is not "
					 "a MAC address",
					 name, mac);
			return -EINVAL;
		}
		net->has_mac = true;
	}
	if (ip4 && *ip4) {
		if (addr_parse(ip4, &fam, &a) || fam != AF_INET) {
			*why = xasprintf("network '%s': IPAddress '%s' is not "
					 "an IPv4 address",
					 name, ip4);
			return -EINVAL;
		}
		net->has4 = true;
		net->ip4 = a;
		plen = json_object_get(n, "IPPrefixLen");
		net->plen4 =
		    json_is_integer(plen) ? (int)json_integer_value(plen) : 32;
	}
	if (ip6 && *ip6) {
		if (addr_parse(ip6, &fam, &a) || fam != AF_INET6) {
			*why = xasprintf("network '%s': GlobalIPv6Address "
					 "'%s' is not an IPv6 address",
					 name, ip6);
			return -EINVAL;
		}
		net->has6 = true;
		net->ip6 = a;
		plen = json_object_get(n, "GlobalIPv6PrefixLen");
		net->plen6 =
		    json_is_integer(plen) ? (int)json_integer_value(plen) : 128;
	}
	return 0;
}

/* NetworkSettings.Ports: {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort":
 * "8080"}], "9000/tcp": null (exposed, not published)}. */
static int add_ports(struct inv_container *c, json_t *ports, char **why)
{
	static const struct {
		const char *name;
		unsigned num;
	} protos[] = {
	    {"tcp", IPPROTO_TCP}, {"udp", IPPROTO_UDP}, {"sctp", IPPROTO_SCTP}};
	size_t cap = 0, i, k;
	const char *key;
	json_t *v, *b;

	if (!ports || json_is_null(ports))
		return 0;
	if (!json_is_object(ports)) {
		*why = xstrdup("NetworkSettings.Ports is not an object");
		return -EINVAL;
	}
	json_object_foreach(ports, key, v)
	{
		char proto[8] = "";
		unsigned port = 0;
		int used = 0;

		if (sscanf(key, "%5u/%7[a-z]%n", &port, proto, &used) != 2 ||
		    key[used] || !port || port > 65535) {
			*why = xasprintf(
			    "published port '%s' is not PORT/PROTO", key);
			return -EINVAL;
		}
		for (k = 0; k < sizeof(protos) / sizeof(protos[0]); k++)
			if (!strcmp(proto, protos[k].name))
				break;
		if (k == sizeof(protos) / sizeof(protos[0]) || json_is_null(v))
			continue; /* exposed only, or nothing we filter */
		if (!json_is_array(v)) {
			*why =
			    xasprintf("published port '%s': bindings are not "
				      "an array",
				      key);
			return -EINVAL;
		}
		json_array_foreach(v, i, b)
		{
			bool bad = false;
			const char *ip = opt_str(b, "HostIp", &bad),
				   *hp = opt_str(b, "HostPort", &bad);
			struct inv_port *pp;

			if (bad || !json_is_object(b)) {
				*why = xasprintf("published port '%s': a "
						 "binding that is not "
						 "{HostIp, HostPort}",
						 key);
				return -EINVAL;
			}
			pp = PUSH(c->ports, c->nports, cap);
			pp->port = port;
			pp->proto = protos[k].num;
			pp->host_ip = xstrdup(ip ? ip : "");
			pp->host_port =
			    hp ? (unsigned)strtoul(hp, NULL, 10) : 0;
		}
	}
	return 0;
}

static int fill(struct inv_container *c, json_t *obj, char **why)
{
	json_t *cfg, *labels, *state, *ns, *nets, *v;
	const char *id, *name, *image, *key;
	size_t cap = 0;
	bool bad = false;
	int r;

	id = opt_str(obj, "Id", &bad);
	name = opt_str(obj, "Name", &bad);
	if (bad || !id || !name || !*id) {
		*why = xstrdup("needs string fields Id and Name");
		return -EINVAL;
	}
	c->id = xstrdup(id);
	c->name = xstrdup(name[0] == '/' ? name + 1 : name);
	cfg = json_object_get(obj, "Config");
	if (cfg && !json_is_object(cfg)) {
		*why = xstrdup("Config is not an object");
		return -EINVAL;
	}
	image = cfg ? opt_str(cfg, "Image", &bad) : NULL;
	if (bad) {
		*why = xstrdup("Config.Image is not a string");
		return -EINVAL;
	}
	c->image = xstrdup(image ? image : "");
	labels = cfg ? json_object_get(cfg, "Labels") : NULL;
	if (labels && !json_is_null(labels)) {
		size_t lcap = 0;

		if (!json_is_object(labels)) {
			*why = xstrdup("Config.Labels is not an object");
			return -EINVAL;
		}
		json_object_foreach(labels, key, v)
		{
			struct inv_label *l;

			if (!json_is_string(v)) {
				*why = xasprintf("label '%s' is not a string",
						 key);
				return -EINVAL;
			}
			l = PUSH(c->labels, c->nlabels, lcap);
			l->key = xstrdup(key);
			l->value = xstrdup(json_string_value(v));
		}
	}
	if (inv_label(c, "com.docker.compose.service"))
		c->compose_service =
		    xstrdup(inv_label(c, "com.docker.compose.service"));
	if (inv_label(c, "com.docker.compose.project"))
		c->compose_project =
		    xstrdup(inv_label(c, "com.docker.compose.project"));
	ns = json_object_get(obj, "NetworkSettings");
	v = json_is_object(ns) ? json_object_get(ns, "SandboxKey") : NULL;
	if (json_is_string(v) && *json_string_value(v))
		c->sandbox = xstrdup(json_string_value(v));
	nets = json_is_object(ns) ? json_object_get(ns, "Networks") : NULL;
	if (nets && !json_is_null(nets)) {
		if (!json_is_object(nets)) {
			*why = xstrdup("NetworkSettings.Networks is not an "
				       "object");
			return -EINVAL;
		}
		json_object_foreach(nets, key, v)
		{
			r = add_net(c, &cap, key, v, why);
			if (r)
				return r;
		}
	}
	r = add_ports(
	    c, json_is_object(ns) ? json_object_get(ns, "Ports") : NULL, why);
	if (r)
		return r;
	state = json_object_get(obj, "State");
	v = json_is_object(state) ? json_object_get(state, "Running") : NULL;
	if (v && json_is_false(v))
		return 1; /* stopped: nothing to place */
	return c->nnets ? 0 : 1;
}

int inventory_add_json(struct inventory *inv, json_t *obj, const char *file,
		       unsigned line, unsigned col, struct diags *d)
{
	struct inv_container c = {0};
	char *why = NULL;
	int r;

	if (!json_is_object(obj)) {
		diags_add(d, DIAG_ERROR, file, line, col,
			  "container #%zu is not a JSON object", inv->n + 1);
		return -EINVAL;
	}
	r = fill(&c, obj, &why);
	if (r < 0) {
		diags_add(d, DIAG_ERROR, file, line, col, "container %s: %s",
			  c.name ? c.name : "(unnamed)", why);
		free(why);
		container_free(&c);
		return r;
	}
	if (r > 0) {
		container_free(&c);
		return 0;
	}
	append(inv, &c);
	return 0;
}

/* --- streaming the array ------------------------------------------------ */

struct reader {
	int fd; /* -1: read from mem */
	const char *mem;
	size_t memlen;
	char buf[1 << 16];
	size_t pos, len;
	int err;
	unsigned line, col; /* of the next unread byte */
};

static bool rd_fill(struct reader *r)
{
	ssize_t n;

	if (r->pos < r->len)
		return true;
	if (r->fd < 0) {
		n = (ssize_t)(r->memlen < sizeof(r->buf) ? r->memlen
							 : sizeof(r->buf));
		memcpy(r->buf, r->mem, (size_t)n);
		r->mem += n;
		r->memlen -= (size_t)n;
	} else {
		do
			n = read(r->fd, r->buf, sizeof(r->buf));
		while (n < 0 && errno == EINTR);
	}
	if (n < 0)
		r->err = errno;
	r->pos = 0;
	r->len = n > 0 ? (size_t)n : 0;
	return r->len > 0;
}

static void rd_advance(struct reader *r, const char *p, size_t n)
{
	const char *nl, *end = p + n;

	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		r->line++;
		r->col = 1;
		p = nl + 1;
	}
	r->col += (unsigned)(end - p);
}

/* Next byte that is not white space, consumed; -1 at end of input. */
static int rd_token(struct reader *r)
{
	char ch;

	while (rd_fill(r)) {
		ch = r->buf[r->pos];
		rd_advance(r, &r->buf[r->pos], 1);
		r->pos++;
		if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
			return (unsigned char)ch;
	}
	return -1;
}

/* Hands jansson chunks that end at a '}', so that the object's closing
 * brace is always the last byte of a chunk and jansson never reads past
 * the element it decodes (JSON_DISABLE_EOF_CHECK stops right there). */
static size_t rd_chunk(void *dst, size_t buflen, void *data)
{
	struct reader *r = data;
	const char *p, *brace;
	size_t n;

	if (!rd_fill(r))
		return r->err ? (size_t)-1 : 0;
	p = &r->buf[r->pos];
	n = r->len - r->pos;
	if (n > buflen)
		n = buflen;
	brace = memchr(p, '}', n);
	if (brace)
		n = (size_t)(brace - p) + 1;
	memcpy(dst, p, n);
	rd_advance(r, p, n);
	r->pos += n;
	return n;
}

static int load(struct inventory *inv, struct reader *r, const char *name,
		struct diags *d)
{
	unsigned line, col;
	json_error_t jerr;
	json_t *obj;
	int ch, ret = 0;
	size_t idx = 0;

	r->line = r->col = 1;
	ch = rd_token(r);
	if (ch != '[') {
		diags_add(d, DIAG_ERROR, name, r->line, r->col - (ch >= 0),
			  ch < 0 ? "empty input: expected the JSON array "
				   "that `docker inspect` prints"
				 : "expected '[': the JSON array that `docker "
				   "inspect` prints");
		ret = -EINVAL;
		goto out;
	}
	for (;;) {
		ch = rd_token(r);
		if (ch == ']')
			break;
		if (idx) {
			if (ch != ',') {
				diags_add(d, DIAG_ERROR, name, r->line,
					  r->col - (ch >= 0),
					  ch < 0 ? "truncated input: the array "
						   "is not closed"
						 : "expected ',' or ']' after "
						   "container #%zu",
					  idx);
				ret = -EINVAL;
				goto out;
			}
			ch = rd_token(r);
		}
		if (ch != '{') {
			diags_add(
			    d, DIAG_ERROR, name, r->line, r->col - (ch >= 0),
			    ch < 0 ? "truncated input: the array is not "
				     "closed"
				   : "container #%zu is not a JSON object",
			    idx + 1);
			ret = -EINVAL;
			goto out;
		}
		/* Give the '{' back to jansson. */
		r->pos--;
		r->col--;
		line = r->line;
		col = r->col;
		obj = json_load_callback(rd_chunk, r, JSON_DISABLE_EOF_CHECK,
					 &jerr);
		if (!obj) {
			diags_add(
			    d, DIAG_ERROR, name, line + (unsigned)jerr.line - 1,
			    jerr.line == 1 ? col + (unsigned)jerr.column - 1
					   : (unsigned)jerr.column,
			    "container #%zu: %s", idx + 1, jerr.text);
			ret = -EINVAL;
			goto out;
		}
		if (inventory_add_json(inv, obj, name, line, col, d))
			ret = -EINVAL;
		json_decref(obj);
		idx++;
	}
	if ((ch = rd_token(r)) >= 0) {
		diags_add(d, DIAG_ERROR, name, r->line, r->col - 1,
			  "unexpected data after the array");
		ret = -EINVAL;
	}
out:
	if (r->err && !ret) {
		diags_add(d, DIAG_ERROR, name, 0, 0, "read failed: %s",
			  strerror(r->err));
		ret = -r->err;
	}
	return ret;
}

int inventory_load_fd(struct inventory *inv, int fd, const char *name,
		      struct diags *d)
{
	struct reader *r = xcalloc(1, sizeof(*r));
	int ret;

	r->fd = fd;
	ret = load(inv, r, name, d);
	free(r);
	return ret;
}

int inventory_load_mem(struct inventory *inv, const char *buf, size_t len,
		       const char *name, struct diags *d)
{
	struct reader *r = xcalloc(1, sizeof(*r));
	int ret;

	r->fd = -1;
	r->mem = buf;
	r->memlen = len;
	ret = load(inv, r, name, d);
	free(r);
	return ret;
}

int inventory_load(struct inventory *inv, const char *path, struct diags *d)
{
	int fd, r;

	if (!strcmp(path, "-"))
		return inventory_load_fd(inv, 0, "<stdin>", d);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		diags_add(d, DIAG_ERROR, path, 0, 0, "cannot open: %s",
			  strerror(errno));
		return r;
	}
	r = inventory_load_fd(inv, fd, path, d);
	close(fd);
	return r;
}
