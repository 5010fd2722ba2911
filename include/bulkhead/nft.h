/* What the kernel module's rooms share, and no one else: the socket, the
 * batch a transaction is built in, and the encoder's entry points. The
 * socket and batch are in kernel.c, the encoder in encode.c, the read-back
 * in readback.c, the event watch in nftwatch.c. */
#ifndef BULKHEAD_NFT_H
#define BULKHEAD_NFT_H

#include <linux/netfilter.h>
#include <linux/netfilter_bridge.h>
#include <stdint.h>

#include <libmnl/libmnl.h>

#include "bulkhead/ir.h"
#include "bulkhead/kernel.h"

/* nft's datatype numbers, for set key types (nftables src/datatype.h) */
enum {
	DT_INTEGER = 4,
	DT_IPADDR = 7,
	DT_IP6ADDR = 8,
	DT_ETHERADDR = 9,
	DT_PROTO = 12,
	DT_SERVICE = 13,
	DT_IFNAME = 41
};
#define DT_BITS 6
#define ELEMS_PER_MSG 512

/* One netlink socket for every batch and dump: closing a socket after a
 * transaction that deleted elements waits for the kernel to free them
 * (an RCU grace period, some milliseconds), so a daemon keeps it open. */
struct kernel {
	struct mnl_socket *nl;
	uint32_t portid, seq;
	int sndbuf; /* the send buffer set for the largest batch yet */
};

/* The nfproto of an IR family's table. */
static inline uint8_t nfproto(enum ir_family f)
{
	return f == IRF_BRIDGE ? NFPROTO_BRIDGE : NFPROTO_INET;
}

/* The filter priority of a family's hooks, which chain priorities are
 * relative to (nft's "priority filter"). */
static inline int filter_prio(enum ir_family f)
{
	return f == IRF_BRIDGE ? NF_BR_PRI_FILTER_BRIDGED : 0;
}

static inline const char *family_name(enum ir_family f)
{
	return f == IRF_BRIDGE ? "bridge" : "inet";
}

/* nft's datatype of an IR key type */
static inline unsigned type_dt(enum ir_type t)
{
	static const unsigned dt[] = {
	    [IRT_IFNAME] = DT_IFNAME, [IRT_IPV4] = DT_IPADDR,
	    [IRT_IPV6] = DT_IP6ADDR,  [IRT_PROTO] = DT_PROTO,
	    [IRT_PORT] = DT_SERVICE,  [IRT_ETHER] = DT_ETHERADDR,
	    [IRT_RAW128] = DT_INTEGER};

	return dt[t];
}

/* A transaction being built: every message numbered, and what each one
 * is about, so that an error names the object it concerns. */
struct batch {
	char *buf;
	size_t len, cap;
	uint32_t seq, first_seq;
	size_t last; /* offset of the last message before the end */
	char **what; /* what[seq - first_seq]: the object of each message */
	size_t nwhat, capwhat;
};

void batch_reserve(struct batch *b, size_t n);
/* Starts a message about what (taken); the caller fills it and calls
 * batch_done(). */
struct nlmsghdr *batch_msg(struct batch *b, enum ir_family fam, uint16_t type,
			   uint16_t flags, char *what);
void batch_done(struct batch *b, struct nlmsghdr *nlh);
/* gen: see kernel_apply_delta. */
void batch_begin(struct batch *b, const struct kernel *k, uint32_t gen);
void batch_end(struct batch *b);
void batch_free(struct batch *b);
/* Sends the batch and reads every answer: 0, or the first error with
 * the object it concerns and the kernel's own words where it gives them. */
int batch_send(struct kernel *k, struct batch *b, char *err, size_t errlen);

/* The encoder (encode.c). */
/* Creates (so that the delete cannot fail) and deletes table fam NAME. */
void nft_del_table(struct batch *b, enum ir_family fam, const char *name);
/* The messages of a full apply, between batch begin and end. */
void nft_build_apply(struct batch *b, const struct ir_ruleset *rs);
/* The messages of a delta, in its order; 0 or -EINVAL (err says). */
int nft_put_changes(struct batch *b, const struct ir_ruleset *rs,
		    const struct ir_delta *delta, char *err, size_t errlen);

#endif
