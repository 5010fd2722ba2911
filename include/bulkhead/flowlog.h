/* Denied flows: the NFLOG subscriber (netlink, libmnl), the decoder of
 * the packets our deny chain logs, the record that names both ends
 * (design §4) and the JSON-lines sink with size-capped rotation. The
 * decoder and the record are pure; only the subscriber and the sink
 * touch the outside world. */
#ifndef BULKHEAD_FLOWLOG_H
#define BULKHEAD_FLOWLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "bulkhead/trace.h"

#define FLOWLOG_DEFAULT "/var/log/bulkhead/flows.jsonl"
#define FLOWLOG_COPY_RANGE 128u /* headers only */

struct flow_pkt {
	bool audit; /* logged by the audit prefix: let through */
	bool input; /* no output interface: to the host itself */
	int family; /* AF_INET, AF_INET6 */
	u128 saddr, daddr;
	uint8_t proto;
	bool has_ports; /* tcp, udp (and sctp, udplite) */
	uint16_t sport, dport;
	int icmp_type, icmp_code; /* -1 outside icmp and icmpv6 */
	uint32_t indev, outdev;	  /* ifindex, 0 when absent */
	uint64_t ts_us;		  /* the kernel's timestamp, 0 when absent */
};

/* Decodes one NFLOG packet message (header included, len bytes).
 * Returns 0; -ENOMSG for a message that is not a packet logged by
 * bulkhead (another prefix, another message type); -EBADMSG for one that
 * is malformed (attributes, or a payload too short for its IP header).
 * A transport header cut short leaves the ports out, never fails. */
int flowlog_decode(const void *msg, size_t len, struct flow_pkt *pkt);

/* The record of design §4 for pkt, as decided by the policy model (dec,
 * from trace_decide), at ts (ISO 8601, UTC), as one line of JSON text
 * appended to out (written directly: the log's hot path). Ends the
 * decision found no container for may be named from gone (the index of
 * the containers that left lately; NULL: none). */
void flowlog_format(const struct flow_pkt *pkt,
		    const struct trace_decision *dec, const struct policy *p,
		    const struct trace_index *gone, const char *ts,
		    struct strbuf *out);
/* What a record says of a flow's ends: "proto" (with "icmp_type" and
 * "icmp_code"), "src" and "dst", as members (no braces) appended to out:
 * the part every record of the flow log shares. */
void flowlog_ends(const struct flow_pkt *pkt, const struct trace_decision *dec,
		  const struct policy *p, const struct trace_index *gone,
		  struct strbuf *out);
/* s as a JSON string, appended to out. */
void flowlog_jstr(struct strbuf *out, const char *s);
/* The same record as a JSON object. */
json_t *flowlog_record(const struct flow_pkt *pkt,
		       const struct trace_decision *dec, const struct policy *p,
		       const struct trace_index *gone, const char *ts);

/* trace_decide_ix (into dec), then flowlog_format: what the daemon does
 * with each packet. */
void flowlog_attribute(const struct flow_pkt *pkt, const struct compiler *cc,
		       const struct policy *p, const struct trace_index *ix,
		       const struct trace_index *gone, const char *ts,
		       struct strbuf *out, struct trace_decision *dec);
/* The record's reason for a denial decided so. */
const char *flowlog_reason(const struct flow_pkt *pkt,
			   const struct trace_decision *dec);
/* The denial counted in m (NULL: nothing), by verdict, the ends'
 * services (or unmatched, host, world) and reason. */
struct metrics;
void flowlog_count(struct metrics *m, const struct flow_pkt *pkt,
		   const struct trace_decision *dec, const struct policy *p,
		   const struct trace_index *gone);

/* --- the subscriber -------------------------------------------------- */

struct flowlog;
struct flowlog_stats {
	unsigned long packets, foreign, malformed, overruns;
};

/* Binds NFLOG group with a copy range of FLOWLOG_COPY_RANGE bytes.
 * NULL with a message in err (another program may hold the group). */
struct flowlog *flowlog_open(unsigned group, char *err, size_t errlen);
void flowlog_close(struct flowlog *fl);
int flowlog_fd(const struct flowlog *fl);
typedef void (*flowlog_fn)(void *ctx, const struct flow_pkt *pkt);
/* Reads everything pending, without blocking; each decoded packet of
 * ours goes to cb. An overrun (ENOBUFS: the kernel dropped messages) is
 * counted, never fatal. */
void flowlog_read(struct flowlog *fl, flowlog_fn cb, void *ctx);
const struct flowlog_stats *flowlog_stats(const struct flowlog *fl);
/* What flowlog_read does with one datagram (len bytes of messages):
 * decodes each, counts it in st, hands ours to cb. */
void flowlog_feed(struct flowlog_stats *st, const void *buf, size_t len,
		  flowlog_fn cb, void *ctx);

/* --- accounting -------------------------------------------------------- */

/* What the records cannot say themselves, counted: the deny chain's
 * count of denied packets since a base, less the records written since
 * then, is what the rate limit kept out of the log. */
struct flowlog_account {
	unsigned long records; /* written */
	unsigned long records_base, suppressed, summarized_supp;
	uint64_t denied_base;
	bool has_base;
	struct flowlog_stats summarized; /* as the last summary said */
	unsigned long summarized_lost;
	time_t last_summary;
};

/* The deny chain's count of denied packets (its last counter) in a
 * ruleset read back, or -1. */
int64_t flowlog_denied_packets(const struct ir_ruleset *have);
/* Brings suppressed up to date from the deny chain's counter in have
 * (our table read back; NULL or without it: nothing is learnt). The
 * first look sets the base. */
void flowlog_account_count(struct flowlog_account *a,
			   const struct ir_ruleset *have);
/* Our table was replaced whole: its deny counter counts from zero. */
void flowlog_account_restart(struct flowlog_account *a);
/* Whether a summary may be written at now: at most once a minute. */
bool flowlog_account_due(const struct flowlog_account *a, time_t now);
/* The summary record (ts: its time) of what changed since the last one
 * (the kernel's overruns, malformed messages, records held back; lost,
 * the lines the log could not write, as a running total, so that a
 * summary lost with them is made up by the next), or NULL when nothing
 * did. The caller writes and frees it. */
json_t *flowlog_account_summary(struct flowlog_account *a,
				const struct flowlog_stats *st,
				unsigned long lost, time_t now, const char *ts);
/* A wall-clock time in microseconds as the records write it (ISO 8601,
 * UTC, milliseconds). */
void flowlog_time(uint64_t us, char *buf, size_t len);

/* --- the sink ---------------------------------------------------------- */

/* The flow log's file: JSON lines, each on file whole or not at all.
 * The loop queues lines and goes on; a thread of the sink's writes them
 * (so a full or hung file system never holds the loop up), rotating to
 * path.1 .. path.KEEP past max_bytes. What cannot be written (a write
 * error, the queue full behind a hung writer) is counted as lost, never
 * as written; a line a short write cut is cut back off the file. Data
 * reach the disk (fdatasync) at most a second after they are written. A
 * file deleted, moved or truncated under the daemon is noticed before
 * the next write; a last line without its end (a crash) is cut at open. */
struct flowlog_sink;

#define FLOWLOG_KEEP 5		     /* rotated files the daemon keeps */
#define FLOWLOG_QUEUE_MAX (4u << 20) /* bytes waiting for the writer */

struct flowlog_sink_stats {
	unsigned long lines;	/* handed to the sink */
	unsigned long written;	/* on file, whole */
	unsigned long lost;	/* not, and never will be */
	unsigned long cut;	/* half lines cut off the file */
	unsigned long episodes; /* runs of failed writes */
	bool failing;		/* the last write failed ... */
	int err;		/* ... with this errno */
};

/* Appends to path (its directory is created). NULL with a message in
 * err when it cannot be opened. */
struct flowlog_sink *flowlog_sink_open(const char *path, size_t max_bytes,
				       unsigned keep, char *err, size_t errlen);
/* The same, writing with wr in place of write(2) (a test's failing
 * writer). */
typedef ssize_t (*flowlog_write_fn)(int fd, const void *buf, size_t n);
struct flowlog_sink *flowlog_sink_open_with(const char *path, size_t max_bytes,
					    unsigned keep, flowlog_write_fn wr,
					    char *err, size_t errlen);
/* What is queued written (for up to 2 s), then closed. */
void flowlog_sink_close(struct flowlog_sink *s);
/* One JSON line, queued: 0, or -ENOBUFS when the queue is full (the
 * line is counted as lost). */
int flowlog_sink_write(struct flowlog_sink *s, json_t *rec);
int flowlog_sink_write_line(struct flowlog_sink *s, const char *line, size_t n);
/* Wakes the writer for what is queued: after each batch. Never waits. */
void flowlog_sink_flush(struct flowlog_sink *s);
/* Waits until everything queued is written or lost, for up to ms: 0 or
 * -ETIMEDOUT. */
int flowlog_sink_drain(struct flowlog_sink *s, unsigned ms);
/* The name of the log's i-th rotated file (path itself for 0): what
 * the sink writes and `denials` reads. The caller frees it. */
char *flowlog_rotated(const char *path, unsigned i);
/* The path opened anew by the writer (after logrotate moved it):
 * SIGHUP. */
int flowlog_sink_reopen(struct flowlog_sink *s);
void flowlog_sink_stats(struct flowlog_sink *s, struct flowlog_sink_stats *out);
/* An fd that turns readable when writing starts or stops failing (the
 * writer's doing, with no event of the loop's to follow), emptied by
 * this call; -1 when there is none. */
int flowlog_sink_fd(struct flowlog_sink *s);

#endif
