/* libFuzzer harness for the nftables event decoder (kernel_event_foreign):
 * whatever a datagram from the event group holds, the walk stays inside
 * it and every message inside its own length; an answer of 1 always says
 * what changed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bulkhead/kernel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ir_ruleset *rs;
	char what[160];
	void *copy;

	if (!rs) {
		enum ir_type k = IRT_IPV4;

		rs = ir_new("bulkhead");
		ir_set_add(rs, "rl4", IRS_DYNAMIC, 1, &k)->timeout_s = 60;
		ir_set_add(rs, "web_peer4", 0, 1, &k);
	}
	/* an exact copy, so that any read past the end is caught */
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	what[0] = 0;
	if (kernel_event_foreign(copy, size, 77, rs, what, sizeof(what)) &&
	    !what[0])
		abort();
	free(copy);
	return 0;
}
