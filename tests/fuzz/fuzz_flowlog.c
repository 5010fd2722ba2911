/* libFuzzer harness for the NFLOG decoder: the input is either raw
 * netlink bytes (first byte even) or a packet payload wrapped in a
 * well-formed NFLOG message with bulkhead's prefix (first byte odd), so
 * that the IPv4/IPv6/transport parsing is reached as often as the
 * attribute parsing. Never a crash, an over-read or undefined
 * behaviour; a decoded packet is always complete. */
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "bulkhead/flowlog.h"

static void check(const struct flow_pkt *k)
{
	if (k->family != AF_INET && k->family != AF_INET6)
		abort();
	if (k->has_ports && k->icmp_type >= 0)
		abort();
}

static void on_pkt(void *ctx, const struct flow_pkt *k)
{
	(void)ctx;
	check(k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char buf[1 << 17];
	struct flowlog_stats st = {0};
	struct flow_pkt k;
	struct nlmsghdr *nlh;

	if (!size || size > (1 << 16))
		return 0;
	if (data[0] & 1) {
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
		mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg));
		mnl_attr_put_u32(nlh, NFULA_IFINDEX_INDEV, htonl(3));
		if (data[0] & 8) {
			/* at a 4-aligned, not 8-aligned place, as the
			 * kernel puts it */
			char ts[16] = {0};

			mnl_attr_put(nlh, NFULA_TIMESTAMP, sizeof(ts), ts);
		}
		if (data[0] & 2)
			mnl_attr_put_u32(nlh, NFULA_IFINDEX_OUTDEV, htonl(4));
		mnl_attr_put(nlh, NFULA_PAYLOAD, size - 1, data + 1);
		mnl_attr_put_strz(nlh, NFULA_PREFIX,
				  data[0] & 4 ? "bulkhead would-deny "
					      : "bulkhead deny ");
		if (!flowlog_decode(buf, nlh->nlmsg_len, &k))
			check(&k);
		return 0;
	}
	/* raw: one message after another, as recv() hands them over */
	memcpy(buf, data + 1, size - 1);
	flowlog_feed(&st, buf, size - 1, on_pkt, NULL);
	return 0;
}
