/* libFuzzer harness for what the Docker client parses: the event stream
 * (split into lines at chunk boundaries the input chooses, each line an
 * event), a container's inspect object, a network object, and a
 * connect's list entry and network object (the input cut in two). Any bytes
 * must give events, a clean refusal, or an error, never a crash, a leak
 * or undefined behaviour. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/docker.h"

static void on_line(void *ctx, const char *line, size_t len)
{
	struct docker_event ev;

	(void)ctx;
	if (!docker_event_parse(line, len, &ev) && ev.kind != DEV_OTHER &&
	    (!ev.id[0] || strspn(ev.id, "0123456789abcdef") != strlen(ev.id)))
		abort(); /* an id that could reach a request path */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct docker *d;
	struct docker_lines l = {0};
	struct inventory *inv = inventory_new();
	size_t step, off, cut;
	char err[256];

	if (!d)
		d = docker_new("/nonexistent", err, sizeof(err));
	if (!size)
		goto out;
	step = (size_t)data[0] % 64 + 1;
	for (off = 1; off < size; off += step)
		if (docker_lines_feed(&l, (const char *)data + off,
				      off + step > size ? size - off : step,
				      on_line, NULL))
			break;
	if (docker_parse_inspect(d, (const char *)data + 1, size - 1, inv, err,
				 sizeof(err)) &&
	    !err[0])
		abort(); /* refused without saying why */
	docker_learn_network(d, (const char *)data + 1, size - 1);
	cut = 1 + (size - 1) * data[0] / 256;
	if (docker_parse_connect(d, (const char *)data + 1, cut - 1,
				 (const char *)data + cut, size - cut, "ab",
				 inv, err, sizeof(err)) &&
	    !err[0])
		abort();
out:
	docker_lines_free(&l);
	inventory_free(inv);
	return 0;
}
