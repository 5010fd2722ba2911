/* Unit tests for src/flowsink.c, the flow log's file: rotation and
 * reopening; a writer that fails (a full disk at every offset, short
 * writes, one that hangs): whole lines only, lost counted, never
 * written; a torn last line cut at open; a file deleted or truncated
 * under the sink. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/flowlog.h"
#include "unit.h"

struct tdir {
	char dir[64], path[128];
};

static void tdir_new(struct tdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/bulkhead-sink-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/flows.jsonl", t->dir);
}

static void tdir_free(struct tdir *t)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* The file's bytes, and whether every line is whole (ends in \n). */
static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	char *b = xcalloc(1, 1 << 24);

	*n = f ? fread(b, 1, (1 << 24) - 1, f) : 0;
	if (f)
		fclose(f);
	return b;
}

static size_t count_lines(const char *b, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += b[i] == '\n';
	return k;
}

static struct flowlog_sink *open_sink(struct tdir *t, size_t max, unsigned keep,
				      flowlog_write_fn wr)
{
	char err[256];
	struct flowlog_sink *s =
	    flowlog_sink_open_with(t->path, max, keep, wr, err, sizeof(err));

	ck_assert_msg(s != NULL, "%s", err);
	return s;
}

/* Size-capped rotation keeps KEEP files; a reopen after logrotate moved
 * the file starts a new one. */
START_TEST(test_rotate)
{
	struct flowlog_sink_stats st;
	char p1[160], p2[160], p3[160], moved[160], err[256];
	struct flowlog_sink *s;
	struct stat sb;
	struct tdir t;
	int i;

	tdir_new(&t);
	snprintf(t.path, sizeof(t.path), "%s/sub/denied.jsonl", t.dir);
	snprintf(p1, sizeof(p1), "%s.1", t.path);
	snprintf(p2, sizeof(p2), "%s.2", t.path);
	snprintf(p3, sizeof(p3), "%s.3", t.path);
	snprintf(moved, sizeof(moved), "%s/moved", t.dir);
	/* its directory is made; 100-byte files, two kept */
	s = open_sink(&t, 100, 2, NULL);
	for (i = 0; i < 20; i++) {
		ck_assert_int_eq(
		    flowlog_sink_write_line(s, "{\"n\":123456789012345}", 21),
		    0);
		flowlog_sink_flush(s);
		ck_assert_int_eq(flowlog_sink_drain(s, 2000), 0);
	}
	flowlog_sink_stats(s, &st);
	ck_assert_uint_eq(st.lines, 20);
	ck_assert_uint_eq(st.written, 20);
	ck_assert_uint_eq(st.lost, 0);
	ck_assert_int_eq(stat(p1, &sb), 0);
	ck_assert_int_ge(sb.st_size, 100);
	ck_assert_int_eq(stat(p2, &sb), 0);
	ck_assert_int_ne(stat(p3, &sb), 0);
	/* logrotate moves it, SIGHUP reopens: a new file */
	ck_assert_int_eq(rename(t.path, moved), 0);
	ck_assert_int_eq(flowlog_sink_reopen(s), 0);
	ck_assert_int_eq(flowlog_sink_write_line(s, "{}", 2), 0);
	ck_assert_int_eq(flowlog_sink_drain(s, 2000), 0);
	ck_assert_int_eq(stat(t.path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 3);
	flowlog_sink_close(s);
	/* a path that cannot be opened says so */
	ck_assert_ptr_null(
	    flowlog_sink_open("/proc/none/x.jsonl", 0, 1, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "/proc/none/x.jsonl"));
	tdir_free(&t);
}
END_TEST

/* A disk with room for budget bytes more: a write past it goes in part
 * (as a full file system does), then fails with ENOSPC. chunk > 0 also
 * makes every write short. */
static long budget = -1, chunk;

static ssize_t full_disk(int fd, const void *buf, size_t n)
{
	if (chunk > 0 && n > (size_t)chunk)
		n = (size_t)chunk;
	if (budget >= 0 && n > (size_t)budget)
		n = (size_t)budget;
	if (!n) {
		errno = ENOSPC;
		return -1;
	}
	if (budget >= 0)
		budget -= (long)n;
	return write(fd, buf, n);
}

static const char *const rec[] = {
    "{\"verdict\":\"denied\",\"n\":1}", "{\"verdict\":\"denied\",\"n\":22}",
    "{\"verdict\":\"allowed\",\"event\":\"open\",\"n\":333}",
    "{\"verdict\":\"denied\",\"n\":4444}"};

/* A full disk at every offset of a batch of records: what is on file is
 * whole lines, as many as are counted written; the rest counted lost;
 * once there is room the next records start on a line boundary. */
START_TEST(test_full_at_every_offset)
{
	size_t total = 0, i, n, k;
	long at;

	for (i = 0; i < 4; i++)
		total += strlen(rec[i]) + 1;
	for (at = 0; at <= (long)total; at++) {
		struct pollfd pf = {.fd = -1, .events = POLLIN};
		struct flowlog_sink_stats st;
		struct flowlog_sink *s;
		struct tdir t;
		char *b;

		tdir_new(&t);
		budget = at;
		chunk = 0;
		s = open_sink(&t, 0, 1, full_disk);
		pf.fd = flowlog_sink_fd(s);
		ck_assert_int_ge(pf.fd, 0);
		for (i = 0; i < 4; i++)
			flowlog_sink_write_line(s, rec[i], strlen(rec[i]));
		flowlog_sink_flush(s);
		ck_assert_int_eq(flowlog_sink_drain(s, 2000), 0);
		flowlog_sink_stats(s, &st);
		b = slurp(t.path, &n);
		ck_assert_msg(!n || b[n - 1] == '\n', "at %ld: a half line",
			      at);
		ck_assert_uint_eq(count_lines(b, n), st.written);
		ck_assert_uint_eq(st.written + st.lost, 4);
		ck_assert_uint_eq(st.failing, at < (long)total);
		if (at < (long)total) {
			ck_assert_int_eq(st.err, ENOSPC);
			/* the loop is told, with no event of its own */
			ck_assert_int_eq(poll(&pf, 1, 0), 1);
			flowlog_sink_fd(s);
			ck_assert_int_eq(poll(&pf, 1, 0), 0);
		}
		/* whole lines that fit are written: none left out */
		for (k = 0, i = 0;
		     i < 4 && k + strlen(rec[i]) + 1 <= (size_t)at; i++)
			k += strlen(rec[i]) + 1;
		ck_assert_uint_eq(st.written, i);
		ck_assert_int_eq(memcmp(b, rec[0], n ? strlen(rec[0]) : 0), 0);
		free(b);
		/* room again */
		budget = -1;
		flowlog_sink_write_line(s, "{\"after\":1}", 11);
		ck_assert_int_eq(flowlog_sink_drain(s, 2000), 0);
		flowlog_sink_stats(s, &st);
		ck_assert(!st.failing);
		/* and told it works again */
		ck_assert_int_eq(poll(&pf, 1, 0), at < (long)total);
		ck_assert_uint_eq(st.written + st.lost, 5);
		b = slurp(t.path, &n);
		ck_assert_uint_eq(count_lines(b, n), st.written);
		ck_assert_msg(
		    n >= 12 && !memcmp(b + n - 12, "{\"after\":1}\n", 12),
		    "at %ld: the next record is not a line of its own", at);
		ck_assert(n == 12 || b[n - 13] == '\n');
		free(b);
		flowlog_sink_close(s);
		tdir_free(&t);
	}
}
END_TEST

/* Short writes (a few bytes each) lose nothing. */
START_TEST(test_short_writes)
{
	struct flowlog_sink_stats st;
	struct flowlog_sink *s;
	struct tdir t;
	size_t n, i;
	char *b;

	tdir_new(&t);
	budget = -1;
	chunk = 7;
	s = open_sink(&t, 0, 1, full_disk);
	for (i = 0; i < 400; i++)
		flowlog_sink_write_line(s, rec[i % 4], strlen(rec[i % 4]));
	flowlog_sink_flush(s);
	ck_assert_int_eq(flowlog_sink_drain(s, 5000), 0);
	flowlog_sink_stats(s, &st);
	ck_assert_uint_eq(st.written, 400);
	ck_assert_uint_eq(st.lost, 0);
	b = slurp(t.path, &n);
	ck_assert_uint_eq(count_lines(b, n), 400);
	free(b);
	chunk = 0;
	flowlog_sink_close(s);
	tdir_free(&t);
}
END_TEST

/* A writer that hangs (a file system that stopped answering) until it
 * is let go: the gate's write end closed, each read ends at once. */
static int gate[2] = {-1, -1};

static ssize_t hung(int fd, const void *buf, size_t n)
{
	char c;

	if (read(gate[0], &c, 1) < 0)
		return -1;
	return write(fd, buf, n);
}

/* The loop never waits for a hung writer: past the queue's bound each
 * line is counted lost at once; let go, the writer catches up and the
 * sum holds. */
START_TEST(test_hung)
{
	struct flowlog_sink_stats st;
	struct flowlog_sink *s;
	struct timespec a, b;
	char line[200];
	struct tdir t;
	size_t i, n, refused = 0;
	char *f;

	ck_assert_int_eq(pipe(gate), 0);
	tdir_new(&t);
	s = open_sink(&t, 0, 1, hung);
	memset(line, 'x', sizeof(line));
	line[0] = '{';
	line[sizeof(line) - 1] = '}';
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < 2 * FLOWLOG_QUEUE_MAX / sizeof(line); i++) {
		refused +=
		    flowlog_sink_write_line(s, line, sizeof(line)) == -ENOBUFS;
		flowlog_sink_flush(s);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* 40,000 lines queued or refused in well under a second */
	ck_assert_int_lt((b.tv_sec - a.tv_sec) * 1000 +
			     (b.tv_nsec - a.tv_nsec) / 1000000,
			 1000);
	ck_assert_uint_gt(refused, 0);
	flowlog_sink_stats(s, &st);
	ck_assert(st.failing);
	ck_assert_int_eq(st.err, ENOBUFS);
	ck_assert_uint_eq(st.lost, refused);
	/* let it go */
	close(gate[1]);
	ck_assert_int_eq(flowlog_sink_drain(s, 10000), 0);
	flowlog_sink_write_line(s, "{}", 2);
	ck_assert_int_eq(flowlog_sink_drain(s, 2000), 0);
	flowlog_sink_stats(s, &st);
	ck_assert(!st.failing);
	ck_assert_uint_eq(st.lines, i + 1);
	ck_assert_uint_eq(st.written + st.lost, st.lines);
	f = slurp(t.path, &n);
	ck_assert_uint_eq(count_lines(f, n), st.written);
	free(f);
	flowlog_sink_close(s);
	close(gate[0]);
	tdir_free(&t);
}
END_TEST

/* A crash left half a line: cut at open; a whole last line stays. */
START_TEST(test_torn_tail)
{
	struct flowlog_sink_stats st;
	struct flowlog_sink *s;
	struct tdir t;
	FILE *f;
	size_t n;
	char *b;

	tdir_new(&t);
	f = fopen(t.path, "w");
	fputs("{\"a\":1}\n{\"b\":2}\n{\"c\":", f);
	fclose(f);
	s = open_sink(&t, 0, 1, NULL);
	flowlog_sink_stats(s, &st);
	ck_assert_uint_eq(st.cut, 1);
	flowlog_sink_write_line(s, "{\"d\":4}", 7);
	ck_assert_int_eq(flowlog_sink_drain(s, 2000), 0);
	b = slurp(t.path, &n);
	ck_assert_str_eq(b, "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");
	free(b);
	flowlog_sink_close(s);
	s = open_sink(&t, 0, 1, NULL);
	flowlog_sink_stats(s, &st);
	ck_assert_uint_eq(st.cut, 0);
	flowlog_sink_close(s);
	tdir_free(&t);
}
END_TEST

/* Deleted without a SIGHUP: a new file; truncated (copytruncate): on
 * at its new end; moved and created anew (logrotate): the new one. */
START_TEST(test_deleted_truncated)
{
	char moved[160];
	struct flowlog_sink *s;
	struct tdir t;
	size_t n;
	char *b;

	tdir_new(&t);
	s = open_sink(&t, 0, 1, NULL);
	flowlog_sink_write_line(s, "{\"a\":1}", 7);
	ck_assert_int_eq(flowlog_sink_drain(s, 2000), 0);
	ck_assert_int_eq(unlink(t.path), 0);
	usleep(1100 * 1000); /* the file is looked at once a second */
	flowlog_sink_write_line(s, "{\"b\":2}", 7);
	ck_assert_int_eq(flowlog_sink_drain(s, 2000), 0);
	b = slurp(t.path, &n);
	ck_assert_str_eq(b, "{\"b\":2}\n");
	free(b);
	ck_assert_int_eq(truncate(t.path, 0), 0);
	usleep(1100 * 1000);
	flowlog_sink_write_line(s, "{\"c\":3}", 7);
	ck_assert_int_eq(flowlog_sink_drain(s, 2000), 0);
	b = slurp(t.path, &n);
	ck_assert_str_eq(b, "{\"c\":3}\n");
	free(b);
	/* logrotate's way: moved, an empty file created in its place */
	snprintf(moved, sizeof(moved), "%s/flows.jsonl-20261202", t.dir);
	ck_assert_int_eq(rename(t.path, moved), 0);
	fclose(fopen(t.path, "w"));
	usleep(1100 * 1000);
	flowlog_sink_write_line(s, "{\"d\":4}", 7);
	ck_assert_int_eq(flowlog_sink_drain(s, 2000), 0);
	b = slurp(t.path, &n);
	ck_assert_str_eq(b, "{\"d\":4}\n");
	free(b);
	b = slurp(moved, &n);
	ck_assert_str_eq(b, "{\"c\":3}\n");
	free(b);
	flowlog_sink_close(s);
	tdir_free(&t);
}
END_TEST

Suite *flowsink_suite(void)
{
	Suite *s = suite_create("flowsink");
	TCase *tc = tcase_create("flowsink");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rotate);
	tcase_add_test(tc, test_full_at_every_offset);
	tcase_add_test(tc, test_short_writes);
	tcase_add_test(tc, test_hung);
	tcase_add_test(tc, test_torn_tail);
	tcase_add_test(tc, test_deleted_truncated);
	suite_add_tcase(s, tc);
	return s;
}
