/* The NFLOG decoder on crafted messages (every protocol, extension
 * headers, fragments, truncated and malformed payloads), the record that
 * names both ends (and a container that left), and the query side:
 * --since, filters, --summary and --suggest. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "bulkhead/flowlog.h"
#include "unit.h"

/* messages start 4 bytes into an 8-aligned buffer, as they do inside a
 * datagram of several: nothing may assume more than 4-byte alignment */
static char storage[4096 + 8] __attribute__((aligned(8)));
static char *const buf = storage + 4;

/* An NFLOG packet message as the kernel sends it. */
static size_t nflog(const char *prefix, const void *payload, size_t plen,
		    uint32_t indev, uint32_t outdev)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;

	nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_INET;
	g->res_id = htons(100);
	if (indev)
		mnl_attr_put_u32(nlh, NFULA_IFINDEX_INDEV, htonl(indev));
	{
		/* as the kernel puts it: 4-aligned, after a 4-byte one */
		struct nfulnl_msg_packet_timestamp ts = {
		    .sec = htobe64(1795363262), .usec = htobe64(123000)};

		mnl_attr_put(nlh, NFULA_TIMESTAMP, sizeof(ts), &ts);
	}
	if (outdev)
		mnl_attr_put_u32(nlh, NFULA_IFINDEX_OUTDEV, htonl(outdev));
	if (payload)
		mnl_attr_put(nlh, NFULA_PAYLOAD, plen, payload);
	if (prefix)
		mnl_attr_put_strz(nlh, NFULA_PREFIX, prefix);
	return nlh->nlmsg_len;
}

static size_t v4(uint8_t *p, uint8_t proto, const uint8_t *l4, size_t n)
{
	static const uint8_t h[20] = {0x45, 0, 0,   0,	0, 0, 0x40, 0,	64, 0,
				      0,    0, 172, 28, 5, 2, 172,  28, 5,  4};

	memcpy(p, h, 20);
	p[9] = proto;
	memcpy(p + 20, l4, n);
	return 20 + n;
}

static size_t v6(uint8_t *p, uint8_t nh, const uint8_t *rest, size_t n)
{
	memset(p, 0, 40);
	p[0] = 0x60;
	p[6] = nh;
	p[8] = 0xfd; /* fd00::2 -> fd00::4 */
	p[23] = 2;
	p[24] = 0xfd;
	p[39] = 4;
	memcpy(p + 40, rest, n);
	return 40 + n;
}

static const uint8_t tcp[] = {0x9c, 0x40, 0x15, 0x38,
			      0,    0,	  0,	0}; /* 40000 -> 5432 */
static const uint8_t udp[] = {0x30, 0x39, 0x00, 0x35,
			      0,    8,	  0,	0}; /* 12345 -> 53 */
static const uint8_t echo[] = {8, 0, 0, 0};

START_TEST(test_decode_protocols)
{
	uint8_t p[128];
	struct flow_pkt k;
	size_t n;

	n = v4(p, IPPROTO_TCP, tcp, sizeof(tcp));
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead deny ", p, n, 3, 3), &k), 0);
	ck_assert(k.family == AF_INET && k.proto == IPPROTO_TCP &&
		  k.has_ports && k.sport == 40000 && k.dport == 5432);
	ck_assert(k.saddr == 0xac1c0502 && k.daddr == 0xac1c0504);
	ck_assert(!k.audit && !k.input && k.indev == 3 && k.icmp_type == -1);
	ck_assert(k.ts_us == 1795363262123000ull);

	n = v4(p, IPPROTO_UDP, udp, sizeof(udp));
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead would-deny ", p, n, 3, 0), &k),
	    0);
	ck_assert(k.audit && k.input && k.proto == IPPROTO_UDP &&
		  k.dport == 53);

	n = v4(p, IPPROTO_ICMP, echo, sizeof(echo));
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead deny ", p, n, 3, 4), &k), 0);
	ck_assert(!k.has_ports && k.icmp_type == 8 && k.icmp_code == 0);

	n = v6(p, IPPROTO_TCP, tcp, sizeof(tcp));
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead deny ", p, n, 3, 4), &k), 0);
	ck_assert(k.family == AF_INET6 && k.dport == 5432);
	ck_assert(k.saddr == (((u128)0xfd00) << 112 | 2));

	{
		/* hop-by-hop options (8 bytes), then udp */
		uint8_t ext[16] = {IPPROTO_UDP, 0};

		memcpy(ext + 8, udp, 8);
		n = v6(p, 0, ext, sizeof(ext));
		ck_assert_int_eq(
		    flowlog_decode(buf, nflog("bulkhead deny ", p, n, 3, 4),
				   &k),
		    0);
		ck_assert(k.proto == IPPROTO_UDP && k.dport == 53);
	}
	{
		uint8_t icmp6[] = {128, 0, 0, 0};

		n = v6(p, IPPROTO_ICMPV6, icmp6, sizeof(icmp6));
		ck_assert_int_eq(
		    flowlog_decode(buf, nflog("bulkhead deny ", p, n, 3, 4),
				   &k),
		    0);
		ck_assert(k.proto == IPPROTO_ICMPV6 && k.icmp_type == 128);
	}
}
END_TEST

START_TEST(test_decode_damaged)
{
	uint8_t p[128];
	struct flow_pkt k;
	size_t n;

	/* a later fragment: addresses, no ports */
	n = v4(p, IPPROTO_TCP, tcp, sizeof(tcp));
	p[7] = 0x10;
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead deny ", p, n, 3, 4), &k), 0);
	ck_assert(!k.has_ports && k.daddr == 0xac1c0504);
	/* the transport header cut short: no ports, no failure */
	n = v4(p, IPPROTO_TCP, tcp, 2);
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead deny ", p, n, 3, 4), &k), 0);
	ck_assert(!k.has_ports);
	/* an IP header cut short, a header length past the copy, no IP */
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead deny ", p, 10, 3, 4), &k),
	    -EBADMSG);
	n = v4(p, IPPROTO_TCP, tcp, 0);
	p[0] = 0x4f;
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead deny ", p, n, 3, 4), &k),
	    -EBADMSG);
	p[0] = 0x75;
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead deny ", p, n, 3, 4), &k),
	    -EBADMSG);
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead deny ", p, 39, 3, 4), &k),
	    -EBADMSG);
	ck_assert_int_eq(
	    flowlog_decode(buf, nflog("bulkhead deny ", NULL, 0, 3, 4), &k),
	    -EBADMSG);
	/* not ours: another prefix, none, another message type */
	n = v4(p, IPPROTO_TCP, tcp, sizeof(tcp));
	ck_assert_int_eq(flowlog_decode(buf, nflog("ulogd ", p, n, 3, 4), &k),
			 -ENOMSG);
	ck_assert_int_eq(flowlog_decode(buf, nflog(NULL, p, n, 3, 4), &k),
			 -ENOMSG);
	n = nflog("bulkhead deny ", p, n, 3, 4);
	((struct nlmsghdr *)buf)->nlmsg_type = NLMSG_NOOP;
	ck_assert_int_eq(flowlog_decode(buf, n, &k), -ENOMSG);
	/* an attribute longer than the message */
	n = v4(p, IPPROTO_TCP, tcp, sizeof(tcp));
	n = nflog("bulkhead deny ", p, n, 3, 4);
	((struct nlattr *)(buf + MNL_NLMSG_HDRLEN +
			   MNL_ALIGN(sizeof(struct nfgenmsg))))
	    ->nla_len = 4000;
	ck_assert_int_eq(flowlog_decode(buf, n, &k), -EBADMSG);
	ck_assert_int_eq(flowlog_decode(buf, 8, &k), -EBADMSG);
}
END_TEST

static const char *at(json_t *r, const char *end, const char *key)
{
	return json_string_value(json_object_get(json_object_get(r, end), key));
}

/* nginx -> db:5432 in the three-tier fixture, and the same once db left */
START_TEST(test_record)
{
	struct policy *p = load_policy_fixture("policies/three-tier.yaml");
	struct inventory *inv =
	    load_inventory_fixture(FIXTURES "/three-tier.json");
	struct inventory *gone = inventory_new();
	struct compiler *cc = compile_new(p, NULL);
	struct trace_index *gix = trace_index_new(cc, p, gone);
	struct trace_decision dec;
	struct flow_pkt k;
	uint8_t pk[64];
	json_t *r;

	ck_assert_int_eq(
	    flowlog_decode(buf,
			   nflog("bulkhead deny ", pk,
				 v4(pk, IPPROTO_TCP, tcp, sizeof(tcp)), 3, 3),
			   &k),
	    0);
	trace_decide(cc, p, inv, k.family, k.saddr, k.daddr, k.input, k.proto,
		     k.dport, &dec);
	r = flowlog_record(&k, &dec, p, gix, "2026-11-22T16:01:02.123Z");
	ck_assert_str_eq(json_string_value(json_object_get(r, "verdict")),
			 "denied");
	ck_assert_str_eq(json_string_value(json_object_get(r, "proto")), "tcp");
	ck_assert_str_eq(json_string_value(json_object_get(r, "reason")),
			 "no-edge");
	ck_assert_str_eq(at(r, "src", "container"), "nginx");
	ck_assert_str_eq(at(r, "src", "service"), "nginx");
	ck_assert_str_eq(at(r, "src", "network"), "appnet");
	ck_assert_str_eq(at(r, "dst", "container"), "db");
	ck_assert_str_eq(at(r, "dst", "service"), "db");
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(r, "dst"), "port")),
			 5432);
	json_decref(r);

	/* db left a moment ago: still named */
	inventory_move(
	    gone, inv,
	    (size_t)inventory_index(inv, inventory_find(inv, "db")->id));
	ck_assert(trace_index_add(gix, &gone->c[gone->n - 1]));
	trace_decide(cc, p, inv, k.family, k.saddr, k.daddr, k.input, k.proto,
		     k.dport, &dec);
	r = flowlog_record(&k, &dec, p, gix, "2026-11-22T16:01:02.123Z");
	ck_assert_str_eq(at(r, "dst", "container"), "db");
	ck_assert_str_eq(at(r, "dst", "service"), "db");
	json_decref(r);

	/* nginx -> backend on a port the edge does not list */
	k.daddr = 0xac1c0503;
	k.dport = 9999;
	trace_decide(cc, p, inv, k.family, k.saddr, k.daddr, k.input, k.proto,
		     k.dport, &dec);
	r = flowlog_record(&k, &dec, p, gix, "2026-11-22T16:01:02.123Z");
	ck_assert_str_eq(json_string_value(json_object_get(r, "reason")),
			 "port-not-allowed");
	json_decref(r);
	/* to the world */
	k.daddr = 0xcb007109;
	trace_decide(cc, p, inv, k.family, k.saddr, k.daddr, k.input, k.proto,
		     k.dport, &dec);
	r = flowlog_record(&k, &dec, p, gix, "2026-11-22T16:01:02.123Z");
	ck_assert_str_eq(at(r, "dst", "peer"), "world");
	json_decref(r);
	/* a router solicitation from a link-local address nobody is known
	 * by yet: dropped for that, not for a placement behind */
	k.family = AF_INET6;
	k.saddr = ((u128)0xfe80 << 112) | 1;
	k.daddr = ((u128)0xff02 << 112) | 2;
	k.proto = IPPROTO_ICMPV6;
	trace_decide(cc, p, inv, k.family, k.saddr, k.daddr, k.input, k.proto,
		     0, &dec);
	ck_assert(dec.allowed && !dec.src);
	r = flowlog_record(&k, &dec, p, gix, "2026-11-22T16:01:02.123Z");
	ck_assert_str_eq(json_string_value(json_object_get(r, "reason")),
			 "link-local");
	json_decref(r);
	k.saddr = ((u128)0x2001 << 112) | 1; /* a global one: the race */
	r = flowlog_record(&k, &dec, p, gix, "2026-11-22T16:01:02.123Z");
	ck_assert_str_eq(json_string_value(json_object_get(r, "reason")),
			 "not-placed-yet");
	json_decref(r);

	trace_index_free(gix);
	compile_free(cc);
	inventory_free(gone);
	inventory_free(inv);
	policy_free(p);
}
END_TEST

/* Our table as read back with the deny chain's counter at packets. */
static struct ir_ruleset *denied_at(uint64_t packets)
{
	struct ir_ruleset *rs = ir_new("bulkhead");
	struct ir_rule *r = ir_rule_add(ir_chain_add(rs, "deny", IRH_NONE, 0));

	r->counter = true;
	r->packets = packets;
	return rs;
}

/* What the rate limit held back: the deny counter since the first look,
 * less the records written since; a table replaced counts from zero. */
START_TEST(test_account)
{
	struct flowlog_account a = {0};
	struct flowlog_stats st = {0};
	struct ir_ruleset *rs;
	json_t *rec;
	char *name;

	rs = denied_at(1000); /* before the daemon: not ours to count */
	flowlog_account_count(&a, rs);
	ir_free(rs);
	ck_assert(a.has_base);
	ck_assert_uint_eq(a.suppressed, 0);
	a.records = 3;
	rs = denied_at(1010);
	flowlog_account_count(&a, rs);
	ir_free(rs);
	ck_assert_uint_eq(a.suppressed, 7);
	flowlog_account_count(&a, NULL); /* unknown: nothing learnt */
	ck_assert_uint_eq(a.suppressed, 7);
	ck_assert(flowlog_account_due(&a, 60));
	st.overruns = 2;
	rec =
	    flowlog_account_summary(&a, &st, 0, 60, "2026-12-01T00:01:00.000Z");
	ck_assert_ptr_nonnull(rec);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "verdict")),
			 "summary");
	ck_assert_int_eq(json_integer_value(json_object_get(rec, "suppressed")),
			 7);
	ck_assert_int_eq(json_integer_value(json_object_get(rec, "overruns")),
			 2);
	json_decref(rec);
	ck_assert(!flowlog_account_due(&a, 100));
	/* nothing new: no summary */
	ck_assert_ptr_null(flowlog_account_summary(&a, &st, 0, 200, "x"));
	/* lines the log could not write: a summary with their total */
	rec = flowlog_account_summary(&a, &st, 12, 260, "y");
	ck_assert_ptr_nonnull(rec);
	ck_assert_int_eq(json_integer_value(json_object_get(rec, "lost")), 12);
	ck_assert_int_eq(json_integer_value(json_object_get(rec, "overruns")),
			 0);
	json_decref(rec);
	ck_assert_ptr_null(flowlog_account_summary(&a, &st, 12, 320, "z"));
	/* replaced: its counter starts again, the records since count */
	flowlog_account_restart(&a);
	a.records = 5;
	rs = denied_at(4);
	flowlog_account_count(&a, rs);
	ir_free(rs);
	ck_assert_uint_eq(a.suppressed, 2);
	name = flowlog_rotated("/var/log/x.jsonl", 0);
	ck_assert_str_eq(name, "/var/log/x.jsonl");
	free(name);
	name = flowlog_rotated("/var/log/x.jsonl", 3);
	ck_assert_str_eq(name, "/var/log/x.jsonl.3");
	free(name);
}
END_TEST

Suite *flowlog_suite(void)
{
	Suite *s = suite_create("flowlog");
	TCase *tc = tcase_create("flowlog");

	tcase_add_test(tc, test_decode_protocols);
	tcase_add_test(tc, test_decode_damaged);
	tcase_add_test(tc, test_record);
	tcase_add_test(tc, test_account);
	suite_add_tcase(s, tc);
	return s;
}
