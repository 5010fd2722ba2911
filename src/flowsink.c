/* The flow log's file (see flowlog.h): whole lines or nothing, written
 * by a thread of its own so that a full or hung file system never holds
 * up the loop. The loop appends lines to a bounded queue and wakes the
 * writer; the writer takes the whole queue, writes it with write(2) from
 * its own buffer, and cuts a line a short write left half done back to
 * the last line boundary. What cannot be written is counted as lost,
 * never as written. A second thread syncs (fdatasync) at most once a
 * second, so that the disk's pace never holds the writes up; a file deleted,
 * moved or truncated under us is noticed before the next write. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bulkhead/flowlog.h"

#define CHECK_MS 1000 /* the file's identity and size checked this often */
#define SYNC_MS 1000  /* fdatasync at most this often */
#define TAIL_MAX (1u << 20) /* a torn last line is looked for this far */

struct flowlog_sink {
	char *path;
	size_t max;
	unsigned keep;
	flowlog_write_fn wr;

	pthread_t th, syncer;
	bool started, sync_started;
	pthread_mutex_t mu;
	pthread_cond_t wake, idle, tick;
	/* under mu: what the loop queued, and what the writer says */
	struct strbuf q;
	size_t qlines;
	bool stop, reopen, busy;
	bool dirty; /* written since the last fdatasync */
	int fd;	    /* the writer's; changed under mu, for the syncer */
	struct flowlog_sink_stats st;

	/* the writer's own */
	dev_t dev;
	ino_t ino;
	int efd;      /* an eventfd: failing changed (flowlog_sink_fd) */
	int open_err; /* why the file could not be opened again */
	size_t size;  /* the file's length, at a line boundary */
	bool torn;    /* a half line could not be cut off: end it first */
	double checked_ms;
	struct strbuf w;
};

static void counted(struct flowlog_sink *s, unsigned long written,
		    unsigned long lost, unsigned long cut, int err)
{
	bool was, is;
	uint64_t one = 1;

	pthread_mutex_lock(&s->mu);
	was = s->st.failing;
	s->st.written += written;
	s->st.lost += lost;
	s->st.cut += cut;
	if (err) {
		s->st.episodes += !s->st.failing;
		s->st.failing = true;
		s->st.err = err;
	} else if (written) {
		s->st.failing = false;
	}
	is = s->st.failing;
	pthread_mutex_unlock(&s->mu);
	/* the loop hears of a run of failures starting or ending even
	 * when no event follows to make it look */
	if (was != is && s->efd >= 0 && write(s->efd, &one, sizeof(one)) < 0)
		return;
}

/* The file's last line, when a crash or a full disk left it without its
 * line end, cut off (a record is whole or not there): 1 when one was. */
static int cut_tail(struct flowlog_sink *s)
{
	char buf[4096];
	size_t end = s->size, look;
	ssize_t n, i;

	if (!end)
		return 0;
	if (pread(s->fd, buf, 1, (off_t)end - 1) != 1 || buf[0] == '\n')
		return 0;
	for (look = 0; look < TAIL_MAX && end > 0;) {
		size_t k = end < sizeof(buf) ? end : sizeof(buf);

		n = pread(s->fd, buf, k, (off_t)(end - k));
		if (n != (ssize_t)k)
			return 0;
		for (i = n - 1; i >= 0; i--)
			if (buf[i] == '\n')
				break;
		if (i >= 0) {
			end = end - k + (size_t)i + 1;
			break;
		}
		end -= k;
		look += k;
	}
	if (look >= TAIL_MAX)
		return 0; /* no line end in sight: not ours to cut */
	if (ftruncate(s->fd, (off_t)end))
		return 0;
	s->size = end;
	return 1;
}

static int sink_open(struct flowlog_sink *s)
{
	struct stat st;
	int fd = open(s->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -(s->open_err = errno);
	if (fstat(fd, &st)) {
		s->open_err = errno;
		close(fd);
		return -s->open_err;
	}
	pthread_mutex_lock(&s->mu);
	s->fd = fd;
	pthread_mutex_unlock(&s->mu);
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = (size_t)st.st_size;
	s->torn = false;
	s->checked_ms = mono_ms();
	if (cut_tail(s))
		counted(s, 0, 0, 1, 0);
	return 0;
}

static void sink_close_fd(struct flowlog_sink *s)
{
	int fd = s->fd;

	if (fd < 0)
		return;
	pthread_mutex_lock(&s->mu);
	s->fd = -1;
	s->dirty = false;
	pthread_mutex_unlock(&s->mu);
	fdatasync(fd); /* what the old file holds, on disk */
	close(fd);
}

static void sink_reopen(struct flowlog_sink *s)
{
	sink_close_fd(s);
	sink_open(s);
}

/* Deleted or moved (rm, or logrotate without our SIGHUP): a new file
 * where the path is; truncated (logrotate's copytruncate): its length
 * as it is now. */
static void check_file(struct flowlog_sink *s)
{
	struct stat a, b;

	if (s->fd >= 0 && mono_ms() - s->checked_ms < CHECK_MS)
		return;
	s->checked_ms = mono_ms();
	if (s->fd < 0) {
		sink_open(s);
		return;
	}
	if (fstat(s->fd, &a))
		return;
	if (a.st_nlink == 0 || stat(s->path, &b) || b.st_dev != a.st_dev ||
	    b.st_ino != a.st_ino) {
		sink_reopen(s);
		return;
	}
	if ((size_t)a.st_size < s->size)
		s->size = (size_t)a.st_size;
}

static void rotate(struct flowlog_sink *s)
{
	unsigned i;

	for (i = s->keep; i > 0; i--) {
		char *from = flowlog_rotated(s->path, i - 1);
		char *to = flowlog_rotated(s->path, i);

		rename(from, to);
		free(from);
		free(to);
	}
	sink_reopen(s);
}

static size_t lines_in(const char *p, size_t n)
{
	size_t k = 0;
	const char *e = p + n;

	while (p < e && (p = memchr(p, '\n', (size_t)(e - p)))) {
		k++;
		p++;
	}
	return k;
}

/* n bytes of whole lines (nlines of them) to the file. */
static void write_out(struct flowlog_sink *s, const char *buf, size_t n,
		      size_t nlines)
{
	size_t off = 0, done, wrote;
	unsigned long cut = 0;
	int err = 0;
	ssize_t k;

	check_file(s);
	if (s->fd < 0) {
		counted(s, 0, nlines, 0, s->open_err ? s->open_err : EIO);
		return;
	}
	if (s->torn) {
		/* the half line left before ends here: one unreadable line,
		 * never two records run together */
		if (s->wr(s->fd, "\n", 1) != 1) {
			counted(s, 0, nlines, 0, errno ? errno : ENOSPC);
			return;
		}
		s->torn = false;
		s->size++;
	}
	while (off < n) {
		k = s->wr(s->fd, buf + off, n - off);
		if (k > 0) {
			off += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		err = k < 0 ? errno : ENOSPC;
		break;
	}
	done = off;
	if (off < n) {
		const char *nl = off ? memrchr(buf, '\n', off) : NULL;

		done = nl ? (size_t)(nl - buf) + 1 : 0;
	}
	if (done < off) {
		/* a line cut short: back to the boundary before it */
		if (ftruncate(s->fd, (off_t)(s->size + done))) {
			s->torn = true;
			s->size += off;
		} else {
			s->size += done;
			cut = 1;
		}
	} else {
		s->size += done;
	}
	wrote = lines_in(buf, done);
	if (off) {
		pthread_mutex_lock(&s->mu);
		s->dirty = true;
		pthread_mutex_unlock(&s->mu);
	}
	counted(s, wrote, nlines - wrote, cut, err);
	if (s->max && s->size >= s->max)
		rotate(s);
}

static void *writer(void *arg)
{
	struct flowlog_sink *s = arg;
	struct strbuf t;
	size_t nlines;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (!s->q.len && !s->stop && !s->reopen) {
			pthread_cond_wait(&s->wake, &s->mu);
			continue;
		}
		if (s->reopen) {
			s->reopen = false;
			s->busy = true;
			pthread_mutex_unlock(&s->mu);
			sink_reopen(s);
			pthread_mutex_lock(&s->mu);
			s->busy = false;
			continue;
		}
		if (!s->q.len) {
			break; /* stopping, everything written */
		}
		/* the queue is the writer's now; the loop gets an empty one */
		t = s->q;
		s->q = s->w;
		s->q.len = 0;
		nlines = s->qlines;
		s->qlines = 0;
		s->busy = true;
		pthread_mutex_unlock(&s->mu);
		write_out(s, t.s, t.len, nlines);
		pthread_mutex_lock(&s->mu);
		s->w = t;
		s->busy = false;
		pthread_cond_broadcast(&s->idle);
	}
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* What the writer wrote reaches the disk at most a second later; the
 * writer never waits for it (a duplicate of its fd is synced). */
static void *syncer(void *arg)
{
	struct flowlog_sink *s = arg;
	struct timespec ts;
	int fd;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += SYNC_MS / 1000;
		pthread_cond_timedwait(&s->tick, &s->mu, &ts);
		if (!s->dirty || s->fd < 0)
			continue;
		s->dirty = false;
		fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
		pthread_mutex_unlock(&s->mu);
		if (fd >= 0) {
			fdatasync(fd);
			close(fd);
		}
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

struct flowlog_sink *flowlog_sink_open_with(const char *path, size_t max_bytes,
					    unsigned keep, flowlog_write_fn wr,
					    char *err, size_t errlen)
{
	struct flowlog_sink *s = xcalloc(1, sizeof(*s));
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int r;

	if (slash && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0750); /* one level: /var/log/bulkhead */
	}
	free(dir);
	s->path = xstrdup(path);
	s->max = max_bytes;
	s->keep = keep ? keep : 1;
	s->wr = wr ? wr : write;
	s->fd = -1;
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->wake, NULL);
	pthread_cond_init(&s->idle, NULL);
	pthread_cond_init(&s->tick, NULL);
	r = sink_open(s);
	if (!r && (r = -pthread_create(&s->th, NULL, writer, s)) == 0)
		s->started = true;
	if (!r && (r = -pthread_create(&s->syncer, NULL, syncer, s)) == 0)
		s->sync_started = true;
	if (r) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		flowlog_sink_close(s);
		return NULL;
	}
	return s;
}

struct flowlog_sink *flowlog_sink_open(const char *path, size_t max_bytes,
				       unsigned keep, char *err, size_t errlen)
{
	return flowlog_sink_open_with(path, max_bytes, keep, NULL, err, errlen);
}

int flowlog_sink_drain(struct flowlog_sink *s, unsigned ms)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	pthread_cond_signal(&s->wake);
	while (s->started && (s->q.len || s->busy || s->reopen) && !r)
		r = pthread_cond_timedwait(&s->idle, &s->mu, &ts);
	pthread_mutex_unlock(&s->mu);
	return r ? -ETIMEDOUT : 0;
}

void flowlog_sink_close(struct flowlog_sink *s)
{
	bool hung = false;

	if (!s)
		return;
	if (s->started) {
		/* what is queued is written, unless the file system hangs:
		 * then the writer is left to it, and the rest is lost */
		hung = flowlog_sink_drain(s, 2000) != 0;
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_signal(&s->wake);
		pthread_cond_signal(&s->tick);
		pthread_mutex_unlock(&s->mu);
		if (hung) {
			pthread_detach(s->th);
			if (s->sync_started)
				pthread_detach(s->syncer);
			return;
		}
		pthread_join(s->th, NULL);
	}
	if (s->sync_started) {
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_signal(&s->tick);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->syncer, NULL);
	}
	sink_close_fd(s);
	if (s->efd >= 0)
		close(s->efd);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->idle);
	pthread_cond_destroy(&s->tick);
	pthread_mutex_destroy(&s->mu);
	sb_free(&s->q);
	sb_free(&s->w);
	free(s->path);
	free(s);
}

int flowlog_sink_reopen(struct flowlog_sink *s)
{
	pthread_mutex_lock(&s->mu);
	s->reopen = true;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

char *flowlog_rotated(const char *path, unsigned i)
{
	return i ? xasprintf("%s.%u", path, i) : xstrdup(path);
}

int flowlog_sink_write_line(struct flowlog_sink *s, const char *line, size_t n)
{
	int r = 0;

	pthread_mutex_lock(&s->mu);
	s->st.lines++;
	if (s->q.len + n + 1 > FLOWLOG_QUEUE_MAX) {
		/* the writer is that far behind (a hung file system): the
		 * loop goes on, the line is counted as lost */
		s->st.lost++;
		s->st.episodes += !s->st.failing;
		s->st.failing = true;
		s->st.err = ENOBUFS;
		r = -ENOBUFS;
	} else {
		sb_putn(&s->q, line, n);
		sb_putc(&s->q, '\n');
		s->qlines++;
		/* a batch this big need not wait for its flush */
		if (s->q.len >= FLOWLOG_QUEUE_MAX / 4 &&
		    s->q.len - n - 1 < FLOWLOG_QUEUE_MAX / 4)
			pthread_cond_signal(&s->wake);
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int flowlog_sink_write(struct flowlog_sink *s, json_t *rec)
{
	char *line = json_dumps(rec, JSON_COMPACT);
	int r = line ? flowlog_sink_write_line(s, line, strlen(line)) : -ENOMEM;

	free(line);
	return r;
}

void flowlog_sink_flush(struct flowlog_sink *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->q.len)
		pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->mu);
}

int flowlog_sink_fd(struct flowlog_sink *s)
{
	uint64_t n;

	if (s->efd >= 0 && read(s->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return -1;
	return s->efd;
}

void flowlog_sink_stats(struct flowlog_sink *s, struct flowlog_sink_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->st;
	pthread_mutex_unlock(&s->mu);
}
