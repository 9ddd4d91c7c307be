/* SPDX-License-Identifier: MIT */
/* The writer thread: drains every ring, encodes events into blocks of the
 * trace format (include/leaktrace/format.h), compresses them with zstd and
 * writes the file. It never calls malloc and never takes a lock that an
 * allocating thread may hold, so a producer waiting for ring space cannot
 * deadlock it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem */
#include <zstd.h>

#include "leaktrace/codec.h"
#include "leaktrace/model.h"
#include "shim.h"
#include "sys.h"

#define RAW_CAP (1u << 20) /* a block's raw payload; flushed at half */
#define RAW_SLACK (64u << 10) /* room for the largest event group */
#define FLUSH_NS (50u * 1000000u) /* data is at most this old on disk */
#define EPOCH_NS (100000u) /* the epoch advances at most this often (100 us) */
#define RSS_NS (100u * 1000000u) /* RSS sampling period */
#define IDLE_SLEEP_NS (20u * 1000000u) /* sleep when nothing happens */
#define BUSY_SLEEP_NS (250000u) /* sleep between busy passes */
#define STACK_BITS (3u << 20) /* = LT_STACK_MAX_IDS in stacks.c */

static _Atomic uint32_t lt__writer_doorbell; /* 1 while the writer sleeps */
_Atomic uint64_t lt__signal_markers; /* snapshot signals received */

static char path[PATH_MAX];
/* The trace file's identity: before each write the shim checks that its
 * descriptor (fdguard.c) still names this file, so a program that closed
 * it behind the shim's back (a raw close_range system call, say) and got
 * the number back for a file of its own never receives trace data. */
static dev_t trace_dev;
static ino_t trace_ino;
static int has_trace; /* the file was created (identity is valid) */
static uint64_t start_ns; /* monotonic time of the trace's start */
static uint64_t bytes_written;
static int io_failed;

/* Encoder state: writer-private (or owned by whoever holds the consumer
 * role while no writer thread runs; see request()). A block is built as
 * the six columns of format.h; `raw` is the META column, where every
 * record other than ALLOC and FREE is written in canonical form. */
#define COL_CAP (RAW_CAP + RAW_SLACK)
/* Two sets of columns: events go into one while the block in the other is
 * compressed a slice at a time between drain passes. Compressing a whole
 * block at once takes milliseconds, in which a busy thread fills its ring
 * and has to wait. */
struct colset {
	uint8_t *col[LT_COL_COUNT];
	size_t len[LT_COL_COUNT];
};
static struct colset sets[2];
static int cur_set;
static uint8_t **col = sets[0].col; /* the set being filled */
static size_t *col_len = sets[0].len;
#define raw col[LT_COL_META]
#define raw_len col_len[LT_COL_META]
static lt_model_t model; /* the heap model of columnar blocks */
static int model_ok;
static uint8_t *zbuf;
static size_t zbuf_cap;
static ZSTD_CCtx *zctx;
static uint64_t block_seq = 1;
static uint64_t prev_addr;
static uint32_t cur_thread = UINT32_MAX;
static uint8_t *stack_written; /* bitmap over stack ids */
static uint64_t count_events, count_allocs, count_frees, count_stacks;
static uint64_t markers_done;
static uint64_t writer_epoch_enc; /* pseudo-thread 0's epoch in this block */
static uint64_t writer_epoch_block;

/* Control: requests from other threads (pause for fork/exec, stop at
 * exit). Requesters serialise on ctl_lock, a spinlock that no allocating
 * path ever takes. ctl_req and ctl_ack are futex words: the requester
 * bumps ctl_req (release, publishing the request fields) and waits for
 * ctl_ack to match (acquire, seeing the writer's results). */
static _Atomic int ctl_lock;
static _Atomic uint32_t ctl_req, ctl_ack;
static _Atomic uint32_t resume_word; /* futex: bumped to let a pause end */
static struct {
	int stop; /* 1: exit the thread after serving */
	int drain; /* drain all rings first */
	int end_kind; /* >=0: write an END record */
	int status;
	uint64_t file_size; /* result */
} req;

/* 0 = no writer thread, 1 = thread running, 2 = a caller consumes inline
 * because no thread exists. */
static _Atomic int started;
static pthread_t thread;

/* ---- memory for zstd and the heap model, from mmap (the shim never
 * calls malloc) ---- */

static void *model_map(size_t bytes)
{
	return lt__sys_map(bytes);
}

static void model_unmap(void *p, size_t bytes)
{
	lt__sys_unmap(p, bytes);
}


static void *zalloc(void *opaque, size_t size)
{
	(void)opaque;
	size_t *p = lt__sys_map(size + 16);
	if (!p)
		return NULL;
	p[0] = size + 16;
	return (unsigned char *)p + 16;
}

static void zfree(void *opaque, void *ptr)
{
	(void)opaque;
	if (!ptr)
		return;
	size_t *p = (size_t *)((unsigned char *)ptr - 16);
	lt__sys_unmap(p, p[0]);
}

/* What descriptor 2 was when tracing started. A program may close its
 * stderr and open a file of its own as descriptor 2 (a daemon's log, a
 * data file): the shim's messages must not land there. They go to
 * descriptor 2 only while it is still the file it was at the start. */
static struct {
	int known; /* 1: dev/ino below; -1: descriptor 2 was not open */
	dev_t dev;
	ino_t ino;
} err_file;

void lt__sys_stderr_note(void)
{
	struct stat st;
	if (fstat(2, &st) == 0) {
		err_file.dev = st.st_dev;
		err_file.ino = st.st_ino;
		err_file.known = 1;
	} else {
		err_file.known = -1;
	}
}

static bool stderr_unchanged(void)
{
	struct stat st;
	if (err_file.known == 0) /* before lt__init: nothing can differ yet */
		return true;
	return err_file.known == 1 && fstat(2, &st) == 0 && st.st_dev == err_file.dev &&
	       st.st_ino == err_file.ino;
}

void lt__sys_warn(const char *a, const char *b, const char *c)
{
	if (!stderr_unchanged())
		return;
	char line[1024];
	size_t n = 0;
	const char *parts[] = {"leaktrace: ", a, b, c, "\n"};
	for (size_t i = 0; i < 5; i++) {
		if (!parts[i])
			continue;
		size_t l = strlen(parts[i]);
		if (l > sizeof line - 1 - n)
			l = sizeof line - 1 - n;
		memcpy(line + n, parts[i], l);
		n += l;
	}
	(void)!write(2, line, n);
}


/* Stops tracing after a failed write, saying so in one line: "cannot
 * write trace PATH: ERRNAME[ (why)]; tracing stopped, the program
 * continues". */
static void io_error(int err, const char *why)
{
	if (io_failed)
		return;
	io_failed = 1;
	const char *name = strerrorname_np(err);
	char tail[256] = ": ";
	size_t n = lt__text_append(tail, 2, sizeof tail, name ? name : "unknown error");
	if (why) {
		n = lt__text_append(tail, n, sizeof tail, " (");
		n = lt__text_append(tail, n, sizeof tail, why);
		n = lt__text_append(tail, n, sizeof tail, ")");
	}
	lt__text_append(tail, n, sizeof tail, "; tracing stopped, the program continues");
	lt__sys_warn("cannot write trace ", path, tail);
	atomic_store_explicit(&lt__state, LT_STATE_OFF, memory_order_relaxed);
}

/* Opens the trace again by its path, for when the program closed or
 * replaced the shim's descriptor: append-only, never creating or
 * truncating, and only if the path still names the very file the shim
 * created. 0 or -errno. */
static int reopen_trace(void)
{
	int f = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (f < 0)
		return -errno;
	struct stat st;
	if (fstat(f, &st) != 0 || st.st_dev != trace_dev || st.st_ino != trace_ino) {
		close(f); /* not guarded: the interposed close lets it through */
		return -ESTALE;
	}
	lt__fd_adopt(LT_FD_TRACE, f);
	return 0;
}

/* lt__sys_write_all() that cannot kill the program. A write past
 * RLIMIT_FSIZE (ulimit -f) raises SIGXFSZ in the writing thread, and its
 * default action ends the process: the shim writes from the program's own
 * threads too (the header, the flush at exit, fork children). So SIGXFSZ is
 * blocked around the write, and a SIGXFSZ that the write raised is taken
 * back before the old mask returns; one that was pending before is the
 * program's and stays. The write then fails with EFBIG, which stops
 * tracing with a message, as any write error does. */
static int write_keeping_sigxfsz(int f, const void *buf, size_t len)
{
	sigset_t xfsz, old, pending;
	sigemptyset(&xfsz);
	sigaddset(&xfsz, SIGXFSZ);
	pthread_sigmask(SIG_BLOCK, &xfsz, &old);
	bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ);
	int rc = lt__sys_write_all(f, buf, len);
	if (rc == -EFBIG && !was_pending) {
		const struct timespec now = {0, 0};
		while (sigtimedwait(&xfsz, NULL, &now) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* Writes buf to the trace file, after checking that the shim's descriptor
 * still names it (reopening the file when it does not). 0, or -errno with
 * *why saying what went wrong when it is not a plain write error. */
static int trace_write(const void *buf, size_t len, const char **why)
{
	*why = NULL;
	for (int attempt = 0;; attempt++) {
		int f = lt__fd_get(LT_FD_TRACE);
		struct stat st;
		if (f >= 0 && fstat(f, &st) == 0 && st.st_dev == trace_dev &&
		    st.st_ino == trace_ino) {
			int rc = write_keeping_sigxfsz(f, buf, len);
			lt__fd_put();
			if (rc == -EFBIG)
				*why = "the file size limit, ulimit -f, is reached";
			return rc;
		}
		lt__fd_put();
		/* The number is not ours any more: never write or close it. */
		if (f >= 0)
			lt__fd_forget(LT_FD_TRACE);
		int rc = attempt ? -EBADF : reopen_trace();
		if (rc) {
			*why = "the program closed the trace's descriptor and the file "
			       "cannot be reopened";
			return rc;
		}
	}
}

/* ---- block encoding ---- */

static void block_reset(void)
{
	for (int c = 0; c < LT_COL_COUNT; c++)
		col_len[c] = 0;
	prev_addr = 0;
	cur_thread = UINT32_MAX;
	block_seq++;
}

static inline void put_op(uint8_t op)
{
	col[LT_COL_OPS][col_len[LT_COL_OPS]++] = op;
}

static inline void put_col_uv(int c, uint64_t v)
{
	col_len[c] = (size_t)(lt_put_uv(col[c] + col_len[c], v) - col[c]);
}

/* The block being compressed, from the set that is not being filled. Its
 * input is the column lengths (`head`), then each column in order. */
#define SLICE_BYTES (128u << 10) /* input compressed per slice */
static struct {
	int active;
	struct colset *set;
	uint8_t head[LT_COL_COUNT * LT_UV_MAX];
	size_t head_len, raw_total;
	int part; /* -1: head, 0..LT_COL_COUNT-1: a column, LT_COL_COUNT: end */
	size_t pos; /* within the part */
	ZSTD_outBuffer ob;
	int failed; /* zstd said no: the block is stored instead */
} pend;

static void pend_part(int part, const uint8_t **src, size_t *len)
{
	*src = part < 0 ? pend.head : pend.set->col[part];
	*len = part < 0 ? pend.head_len : pend.set->len[part];
}

/* Writes the pending block out, compressed if zstd did well, else as
 * stored columns, and frees its set. */
static void pend_write(void)
{
	uint8_t *out = zbuf + LT_BLOCK_HEADER_LEN;
	size_t stored = 0;
	uint8_t codec = LT_CODEC_COLUMNS;
	if (zctx && !pend.failed && pend.ob.pos < pend.raw_total) {
		stored = pend.ob.pos;
		codec = LT_CODEC_ZSTD_COLUMNS;
	} else {
		for (int part = -1; part < LT_COL_COUNT; part++) {
			const uint8_t *src;
			size_t len;
			pend_part(part, &src, &len);
			memcpy(out + stored, src, len);
			stored += len;
		}
	}
	lt_put_u32le(zbuf, LT_BLOCK_MAGIC);
	lt_put_u32le(zbuf + 4, (uint32_t)stored);
	lt_put_u32le(zbuf + 8, (uint32_t)pend.raw_total);
	zbuf[12] = codec;
	zbuf[13] = zbuf[14] = zbuf[15] = 0;
	lt_put_u32le(zbuf + 16, lt_block_checksum(LT_FORMAT_MINOR, out, stored));
	if (!io_failed && has_trace) {
		const char *why;
		int rc = trace_write(zbuf, LT_BLOCK_HEADER_LEN + stored, &why);
		if (rc)
			io_error(-rc, why);
		else
			bytes_written += LT_BLOCK_HEADER_LEN + stored;
	}
	for (int c = 0; c < LT_COL_COUNT; c++)
		pend.set->len[c] = 0;
	pend.active = 0;
}

/* Compresses up to `budget` more input bytes of the pending block, and
 * writes the block once it is all in. SIZE_MAX finishes it. */
static void compress_step(size_t budget)
{
	while (pend.active && budget > 0) {
		if (!zctx || pend.failed) {
			pend_write();
			return;
		}
		if (pend.part == LT_COL_COUNT) {
			ZSTD_inBuffer none = {NULL, 0, 0};
			size_t rc;
			do
				rc = ZSTD_compressStream2(zctx, &pend.ob, &none, ZSTD_e_end);
			while (!ZSTD_isError(rc) && rc != 0 && pend.ob.pos < pend.ob.size);
			pend.failed = ZSTD_isError(rc) || rc != 0;
			pend_write();
			return;
		}
		const uint8_t *src;
		size_t len;
		pend_part(pend.part, &src, &len);
		size_t n = len - pend.pos < budget ? len - pend.pos : budget;
		ZSTD_inBuffer ib = {src + pend.pos, n, 0};
		while (ib.pos < ib.size && !pend.failed) {
			size_t rc = ZSTD_compressStream2(zctx, &pend.ob, &ib, ZSTD_e_continue);
			pend.failed = ZSTD_isError(rc) || pend.ob.pos == pend.ob.size;
		}
		pend.pos += n;
		budget -= n;
		if (pend.pos == len) {
			pend.part++;
			pend.pos = 0;
		}
	}
}

static void compress_finish(void)
{
	compress_step(SIZE_MAX);
}

/* Ends the block being filled: it becomes the pending block (the one
 * before it is finished first, which only waits when a whole block filled
 * faster than one compresses), and events go on into the other set. */
static void flush_block(void)
{
	if (col_len[LT_COL_OPS] == 0 && raw_len == 0)
		return;
	compress_finish();
	pend.set = &sets[cur_set];
	cur_set ^= 1;
	col = sets[cur_set].col;
	col_len = sets[cur_set].len;
	uint8_t *h = pend.head;
	size_t total = 0;
	for (int c = 0; c < LT_COL_COUNT; c++) {
		h = lt_put_uv(h, pend.set->len[c]);
		total += pend.set->len[c];
	}
	pend.head_len = (size_t)(h - pend.head);
	pend.raw_total = pend.head_len + total;
	pend.part = -1;
	pend.pos = 0;
	pend.failed = 0;
	pend.ob = (ZSTD_outBuffer){zbuf + LT_BLOCK_HEADER_LEN, zbuf_cap - LT_BLOCK_HEADER_LEN, 0};
	if (zctx) {
		ZSTD_CCtx_reset(zctx, ZSTD_reset_session_only);
		ZSTD_CCtx_setPledgedSrcSize(zctx, pend.raw_total);
	}
	pend.active = 1;
	block_reset();
}

/* Makes room for `need` more raw bytes, flushing the block if needed. */
/* A group of records that must share a block (a THREAD/EPOCH prefix and
 * the record it positions) starts here: when any column has passed
 * RAW_CAP the block is flushed first, so the group itself always fits in
 * the RAW_SLACK left (no group is larger). */
static inline void group_start(void)
{
	for (int c = 0; c < LT_COL_COUNT; c++)
		if (col_len[c] >= RAW_CAP) {
			flush_block();
			return;
		}
}

/* Room for `need` more bytes in META. Inside a group this never flushes
 * (see group_start); only an oversized record, such as a huge module map,
 * gets a flush here. */
static inline uint8_t *room(size_t need)
{
	if (raw_len + need > COL_CAP)
		flush_block();
	return raw + raw_len;
}

/* Length-prefixed records: the length is written as a 4-byte padded
 * LEB128 varint (valid LEB128, decodable by lt_get_uv) and patched. */
static uint8_t *meta_begin(uint8_t type, size_t max_payload)
{
	uint8_t *p = room(5 + max_payload);
	*p = type;
	return p + 5;
}

static void meta_end(uint8_t *payload_start, uint8_t *payload_end)
{
	uint32_t len = (uint32_t)(payload_end - payload_start);
	uint8_t *l = payload_start - 4;
	l[0] = (uint8_t)(len | 0x80);
	l[1] = (uint8_t)((len >> 7) | 0x80);
	l[2] = (uint8_t)((len >> 14) | 0x80);
	l[3] = (uint8_t)((len >> 21) & 0x7f);
	raw_len = (size_t)(payload_end - raw);
	put_op(LT_OP_RECORD);
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	p = lt_put_uv(p, n);
	memcpy(p, s, n);
	return p + n;
}

/* Switches the current thread and brings its epoch up to date in this
 * block. Must be called right before writing a positioned record. */
static void set_thread(uint32_t index, uint64_t *enc_epoch, uint64_t *enc_block,
		       uint64_t epoch)
{
	uint8_t *p = room(3 * LT_UV_MAX);
	if (cur_thread != index) {
		*p++ = LT_REC_THREAD;
		p = lt_put_uv(p, index);
		cur_thread = index;
		put_op(LT_OP_RECORD);
	}
	if (*enc_block != block_seq) {
		*enc_block = block_seq;
		*enc_epoch = 0;
	}
	if (epoch != *enc_epoch) {
		*p++ = LT_REC_EPOCH;
		p = lt_put_uv(p, epoch - *enc_epoch);
		*enc_epoch = epoch;
		put_op(LT_OP_RECORD);
	}
	raw_len = (size_t)(p - raw);
}

/* STACK, and PYFRAMES when the stack has Python frames (shim.h,
 * LT_PYFRAMES_MARK). */
static void write_stack(uint32_t id)
{
	uint32_t all;
	const uint64_t *f = lt__stack_frames(id, &all);
	uint32_t depth = 0;
	while (depth < all && f[depth] != LT_PYFRAMES_MARK)
		depth++;
	uint8_t *p = meta_begin(LT_REC_STACK, (depth + 2) * LT_UV_MAX);
	uint8_t *s = p;
	p = lt_put_uv(p, id);
	p = lt_put_uv(p, depth);
	for (uint32_t i = 0; i < depth; i++)
		p = i == 0 ? lt_put_uv(p, f[0]) : lt_put_sv(p, (int64_t)(f[i] - f[i - 1]));
	meta_end(s, p);
	if (depth < all) {
		const uint64_t *py = f + depth + 1;
		uint32_t n = (all - depth - 1) / 2;
		p = meta_begin(LT_REC_PYFRAMES, (2 + 2 * (size_t)n) * LT_UV_MAX);
		s = p;
		p = lt_put_uv(p, id);
		p = lt_put_uv(p, n);
		for (uint32_t i = 0; i < 2 * n; i++)
			p = lt_put_uv(p, py[i]);
		meta_end(s, p);
	}
	stack_written[id >> 3] |= (uint8_t)(1u << (id & 7));
	count_stacks++;
}

static void write_pycode(const struct lt_pycode *c)
{
	size_t n = lt__py_size(c);
	uint8_t *p = meta_begin(LT_REC_PYCODE, n), *s = p;
	p += lt__py_encode(c, p, n);
	meta_end(s, p);
}

static void write_time(uint64_t epoch, uint64_t now)
{
	uint8_t *p = meta_begin(LT_REC_TIME, 2 * LT_UV_MAX), *s = p;
	p = lt_put_uv(p, epoch);
	p = lt_put_uv(p, now - start_ns);
	meta_end(s, p);
}

static void write_modules(struct lt_modules_s *m)
{
	size_t n = lt__modules_size(m);
	if (n + 5 > RAW_CAP) {
		lt__modules_release(m);
		return; /* cannot happen with sane module counts */
	}
	uint8_t *p = meta_begin(LT_REC_MODULES, n), *s = p;
	p += lt__modules_encode(m, p, n);
	meta_end(s, p);
	lt__modules_release(m);
}

/* Encodes one event from ring r. */
static void encode_event(lt_ring_t *r, const lt_event_t *e)
{
	uint8_t *p, *s;
	switch (e->kind) {
	case LT_EV_EPOCH:
		r->w_epoch = e->size;
		return;
	case LT_EV_THREAD_START:
		/* The ring may have served an exited thread in this very
		 * block: its new thread index starts from epoch 0, so the
		 * delta state must too. */
		r->w_epoch = 0;
		r->enc_block = 0;
		r->after_free = 0;
		break;
	case LT_EV_AFTER:
		/* Written with the allocation it applies to, in its group. */
		r->after_thread = e->addr;
		r->after_free = e->size;
		return;
	case LT_EV_ALLOC:
	case LT_EV_REALLOC:
		group_start();
		if (e->stack_id && !(stack_written[e->stack_id >> 3] & (1u << (e->stack_id & 7))))
			write_stack(e->stack_id);
		break;
	default:
		break;
	}
	group_start();
	set_thread(r->thread_index, &r->enc_epoch, &r->enc_block, r->w_epoch);
	count_events++;
	if (r->after_free && (e->kind == LT_EV_ALLOC || e->kind == LT_EV_REALLOC)) {
		p = room(3 * LT_UV_MAX);
		*p++ = LT_REC_AFTER;
		p = lt_put_uv(p, r->after_thread);
		p = lt_put_uv(p, r->after_free);
		raw_len = (size_t)(p - raw);
		put_op(LT_OP_RECORD);
		r->after_free = 0;
	}
	switch (e->kind) {
	case LT_EV_ALLOC: {
		room(4 * LT_UV_MAX);
		int k = model_ok ? lt_model_alloc(&model, e->addr, e->size) : -1;
		put_col_uv(LT_COL_STACK, e->stack_id);
		put_col_uv(LT_COL_SIZE, e->size);
		if (k >= 0) {
			put_op((uint8_t)(LT_OP_ALLOC_HIT + k));
		} else {
			put_op(LT_OP_ALLOC_MISS);
			put_col_uv(LT_COL_ADDR, lt_addr_field(e->addr, prev_addr));
		}
		prev_addr = e->addr;
		count_allocs++;
		break;
	}
	case LT_EV_FREE: {
		room(2 * LT_UV_MAX);
		uint32_t slot;
		if (model_ok && lt_model_free(&model, e->addr, &slot)) {
			put_op(LT_OP_FREE_SLOT);
			put_col_uv(LT_COL_SLOT, slot);
		} else {
			put_op(LT_OP_FREE_ADDR);
			put_col_uv(LT_COL_ADDR, lt_addr_field(e->addr, prev_addr));
		}
		prev_addr = e->addr;
		count_frees++;
		break;
	}
	case LT_EV_REALLOC: {
		uint32_t slot;
		p = room(5 * LT_UV_MAX);
		*p++ = LT_REC_REALLOC;
		p = lt_put_uv(p, e->stack_id);
		p = lt_put_uv(p, e->size);
		p = lt_put_uv(p, lt_addr_field(e->addr, prev_addr));
		p = lt_put_uv(p, lt_addr_field(e->old_addr, e->addr));
		prev_addr = e->addr;
		raw_len = (size_t)(p - raw);
		put_op(LT_OP_RECORD);
		if (model_ok) {
			lt_model_free(&model, e->old_addr, &slot);
			lt_model_alloc(&model, e->addr, e->size);
		}
		count_allocs++;
		count_frees++;
		break;
	}
	case LT_EV_THREAD_START:
		p = meta_begin(LT_REC_THREAD_START, 3 * LT_UV_MAX), s = p;
		p = lt_put_uv(p, r->thread_index);
		p = lt_put_uv(p, e->size);
		p = lt_put_uv(p, 0);
		meta_end(s, p);
		break;
	case LT_EV_MARKER:
		p = meta_begin(LT_REC_MARKER, LT_UV_MAX + 4096), s = p;
		p = put_str(p, (const char *)(uintptr_t)e->addr, 4095);
		meta_end(s, p);
		break;
	case LT_EV_EXEC:
		p = meta_begin(LT_REC_EXEC, LT_UV_MAX + 4096), s = p;
		p = put_str(p, (const char *)(uintptr_t)e->addr, 4095);
		meta_end(s, p);
		break;
	case LT_EV_FORK:
		p = meta_begin(LT_REC_FORK, 2 * LT_UV_MAX), s = p;
		p = lt_put_uv(p, e->addr);
		p = lt_put_uv(p, e->size);
		meta_end(s, p);
		break;
	default:
		count_events--;
		break;
	}
}

static void write_thread_end(lt_ring_t *r)
{
	group_start();
	set_thread(r->thread_index, &r->enc_epoch, &r->enc_block, r->w_epoch);
	uint8_t *p = meta_begin(LT_REC_THREAD_END, LT_UV_MAX), *s = p;
	p = lt_put_uv(p, r->thread_index);
	meta_end(s, p);
}

/* Drains ring r up to r->snap_tail. Returns the number of events. */
static uint64_t drain_ring(lt_ring_t *r)
{
	/* Relaxed: only the consumer (us) writes head. */
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t t = r->snap_tail;
	for (uint64_t i = h; i != t; i++)
		encode_event(r, &r->slots[i & (LT_RING_CAP - 1)]);
	/* Release pairs with the producer's acquire of head: we are done
	 * reading these slots before the producer may reuse them. */
	if (t != h)
		atomic_store_explicit(&r->head, t, memory_order_release);
	return t - h;
}

/* Retires a ring whose thread is gone: one more drain, then it is free
 * for the next new thread. */
static void retire(lt_ring_t *r)
{
	/* Acquire pairs with the dead thread's last release of tail. */
	r->snap_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	drain_ring(r);
	write_thread_end(r);
	/* Release pairs with the acquire CAS in lt__ring_acquire(): the next
	 * owner sees head == tail. */
	atomic_store_explicit(&r->state, LT_RING_FREE, memory_order_release);
}

static unsigned busy_rings; /* rings that had events in the last pass */
static unsigned cpus; /* the writer may run on, read when it starts */

/* One pass over all rings. Returns the number of events drained. */
static uint64_t drain_pass(void)
{
	busy_rings = 0;
	/* Acquire pairs with the release CAS linking new rings. */
	lt_ring_t *first = atomic_load_explicit(&lt__rings, memory_order_acquire);
	/* Read every tail first, then take the module map: a stack in an
	 * event we drain may point into a module that its thread saw loaded,
	 * and that map was published before the event (see format.h). */
	for (lt_ring_t *r = first; r; r = r->next)
		/* Acquire pairs with the producer's release of tail. */
		r->snap_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	for (struct lt_modules_s *m = lt__modules_take(), *next; m; m = next) {
		next = lt__modules_next(m);
		write_modules(m); /* releases m */
	}
	/* Likewise the code objects the Python frames of those events name. */
	for (struct lt_pycode *c = lt__py_take(); c; c = lt__py_next(c))
		write_pycode(c);
	uint64_t total = 0;
	for (lt_ring_t *r = first; r; r = r->next) {
		uint32_t st = atomic_load_explicit(&r->state, memory_order_relaxed);
		if (st == LT_RING_FREE)
			continue;
		uint64_t n = drain_ring(r);
		total += n;
		busy_rings += n > 0;
		r->idle_passes = n ? 0 : r->idle_passes + 1;
		if (st == LT_RING_DEAD) {
			retire(r);
		} else if (n == 0 && (st == LT_RING_EXITING || (r->idle_passes & 1023) == 1023)) {
			if (lt__sys_thread_alive(lt__pid, r->tid) == -ESRCH)
				retire(r);
		}
	}
	return total;
}

static void write_signal_markers(void)
{
	/* Relaxed: a counter; markers are placed at this drain point. */
	uint64_t n = atomic_load_explicit(&lt__signal_markers, memory_order_relaxed);
	while (markers_done < n) {
		markers_done++;
		uint64_t ep = atomic_load_explicit(&lt__epoch, memory_order_relaxed);
		group_start();
		set_thread(0, &writer_epoch_enc, &writer_epoch_block, ep);
		char name[32] = "signal-";
		char digits[24];
		int k = 0;
		uint64_t v = markers_done;
		do
			digits[k++] = (char)('0' + v % 10);
		while (v /= 10);
		size_t l = 7;
		while (k)
			name[l++] = digits[--k];
		name[l] = 0;
		uint8_t *p = meta_begin(LT_REC_MARKER, LT_UV_MAX + sizeof name), *s = p;
		p = put_str(p, name, sizeof name);
		meta_end(s, p);
	}
}

static void write_rss(uint64_t now)
{
	int f = lt__fd_get(LT_FD_STATM);
	if (f < 0) {
		lt__fd_put();
		f = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
		if (f < 0)
			return;
		lt__fd_adopt(LT_FD_STATM, f);
		f = lt__fd_get(LT_FD_STATM);
	}
	char buf[128];
	ssize_t n = f >= 0 ? pread(f, buf, sizeof buf - 1, 0) : -1;
	lt__fd_put();
	if (n <= 0)
		return;
	buf[n] = 0;
	const char *q = strchr(buf, ' ');
	if (!q)
		return;
	uint64_t pages = strtoull(q + 1, NULL, 10);
	uint8_t *p = meta_begin(LT_REC_RSS, 2 * LT_UV_MAX), *s = p;
	p = lt_put_uv(p, now - start_ns);
	p = lt_put_uv(p, pages * (uint64_t)sysconf(_SC_PAGESIZE));
	meta_end(s, p);
}

static void write_end(int kind, int status)
{
	uint64_t now = lt__sys_now_ns();
	uint8_t *p = meta_begin(LT_REC_END, 10 * LT_UV_MAX), *s = p;
	p = lt_put_uv(p, (uint64_t)kind);
	p = lt_put_uv(p, (uint64_t)(uint32_t)status);
	p = lt_put_uv(p, count_events);
	p = lt_put_uv(p, count_allocs);
	p = lt_put_uv(p, count_frees);
	p = lt_put_uv(p, count_stacks);
	p = lt_put_uv(p, lt__stack_overflows());
	p = lt_put_uv(p, now - start_ns);
	p = lt_put_uv(p, bytes_written);
	/* Relaxed: the requester's drain handshake already ordered it. */
	p = lt_put_uv(p, atomic_load_explicit(&lt__lost_events, memory_order_relaxed));
	meta_end(s, p);
}

/* Serves a pause/stop request. Called by the consumer. */
static void serve_request(void)
{
	if (req.drain) {
		/* Everything published so far, including what the requester
		 * pushed just before asking. */
		while (drain_pass() != 0)
			;
		write_signal_markers();
	}
	if (req.end_kind >= 0)
		write_end(req.end_kind, req.status);
	flush_block();
	compress_finish();
	req.file_size = LT_FILE_HEADER_LEN + bytes_written;
}

/* ---- the thread ---- */

static uint64_t last_flush, last_epoch, last_rss;

/* One round of work; returns the number of events drained. */
static uint64_t work_once(void)
{
	uint64_t now = lt__sys_now_ns();
	/* Advanced also while idle (at most every IDLE_SLEEP_NS then), so
	 * the first events after a quiet spell are timed within that, not
	 * at the end of the last busy spell. */
	if (now - last_epoch >= EPOCH_NS) {
		/* Relaxed: producers read the epoch relaxed too; coherence
		 * of this single variable is all the ordering rule needs
		 * (format.h, "Ordering"). */
		uint64_t e = atomic_load_explicit(&lt__epoch, memory_order_relaxed) + 1;
		atomic_store_explicit(&lt__epoch, e, memory_order_relaxed);
		write_time(e, now);
		last_epoch = now;
	}
	uint64_t n = drain_pass();
	write_signal_markers();
	/* A slice of the pending block after each pass: a pass is short,
	 * so the rings are looked at again soon (writer_main finishes the
	 * block before a long sleep). */
	compress_step(SLICE_BYTES);
	if (now - last_rss >= RSS_NS) {
		write_rss(now);
		last_rss = now;
	}
	if ((raw_len || col_len[LT_COL_OPS]) &&
	    (now - last_flush >= FLUSH_NS || raw_len >= RAW_CAP / 2 ||
	     col_len[LT_COL_OPS] >= RAW_CAP / 2)) {
		flush_block();
		last_flush = now;
	}
	return n;
}

/* Waits up to SPIN_NS for the rings to hold SPIN_EVENTS unread events,
 * yielding the CPU in between. A writer that sleeps while a thread is busy
 * wakes too late (a futex wake-up takes 100 us and more on some virtual
 * machines, while a busy thread fills its ring in a few hundred), so after
 * a pass that found work it keeps looking for a while. On a machine with
 * a core to spare, sched_yield returns at once; on a single core it hands
 * the CPU to the program. Returns 1 when there is work. */
#define SPIN_NS 200000u
/* Only while the busy threads leave a CPU free: when they are as many as
 * the CPUs, polling would take time from them, and a sleeping writer is
 * woken soon enough by a full ring (the rings of several threads fill in
 * turn). */
#define SPIN_EVENTS 256u
static int spin_for_work(void)
{
	uint64_t start = lt__sys_now_ns();
	do {
		sched_yield();
		uint64_t pending = 0;
		/* Acquire pairs with the release CAS linking new rings. */
		for (lt_ring_t *r = atomic_load_explicit(&lt__rings, memory_order_acquire); r;
		     r = r->next)
			/* Relaxed: only a count; drain_pass acquires the tail
			 * it drains up to. */
			pending += atomic_load_explicit(&r->tail, memory_order_relaxed) -
				   atomic_load_explicit(&r->head, memory_order_relaxed);
		if (pending >= SPIN_EVENTS)
			return 1;
	} while (lt__sys_now_ns() - start < SPIN_NS);
	return 0;
}

static void *writer_main(void *arg)
{
	(void)arg;
	cpu_set_t set;
	cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? (unsigned)CPU_COUNT(&set) : 1;
	lt__tls.busy = 1; /* nothing this thread does is recorded */
	prctl(PR_SET_NAME, "leaktrace", 0, 0, 0);
	uint32_t served = atomic_load_explicit(&ctl_ack, memory_order_relaxed);
	uint64_t idle = 0, last_pass = lt__sys_now_ns();
	for (;;) {
		/* Acquire pairs with the requester's release of ctl_req. */
		uint32_t want = atomic_load_explicit(&ctl_req, memory_order_acquire);
		if (want != served) {
			serve_request();
			int stop = req.stop;
			uint32_t resume = atomic_load_explicit(&resume_word, memory_order_acquire);
			served = want;
			/* Release pairs with the requester's acquire: it sees
			 * req.file_size and everything flushed. */
			atomic_store_explicit(&ctl_ack, served, memory_order_release);
			lt__sys_futex_wake(&ctl_ack);
			if (stop)
				return NULL;
			/* Paused: the requester forks or execs now. */
			while (atomic_load_explicit(&resume_word, memory_order_acquire) == resume)
				lt__sys_futex_wait(&resume_word, resume, 0);
			last_flush = lt__sys_now_ns();
			continue;
		}
		uint64_t start = lt__sys_now_ns();
		uint64_t n = work_once();
		/* Events per time since the last pass began: poll only when
		 * SPIN_EVENTS are due within half of SPIN_NS, so a program
		 * that allocates now and then costs no polling. */
		int hot = n * SPIN_NS >= 2ull * SPIN_EVENTS * (start - last_pass);
		last_pass = start;
		idle = n ? 0 : idle + 1;
		if (n > 0 && n < 256 && hot && busy_rings < cpus && spin_for_work())
			continue;
		if (n < 256) {
			if (idle > 64)
				compress_finish();
			/* Seq_cst store then the producers' load: a producer
			 * that misses the flag still gets served within the
			 * sleep timeout. */
			atomic_store(&lt__writer_doorbell, 1);
			lt__sys_futex_wait(&lt__writer_doorbell, 1,
					   idle > 64 ? IDLE_SLEEP_NS : BUSY_SLEEP_NS);
			atomic_store(&lt__writer_doorbell, 0);
		}
	}
}

void lt__writer_wake(void)
{
	if (atomic_load_explicit(&lt__writer_doorbell, memory_order_relaxed)) {
		atomic_store_explicit(&lt__writer_doorbell, 0, memory_order_relaxed);
		lt__sys_futex_wake(&lt__writer_doorbell);
	}
}

int lt__writer_start(void)
{
	int expected = 0;
	/* Acq/rel: the encoder state set up by lt__writer_open is visible
	 * to the new thread (pthread_create also orders this). */
	if (!atomic_compare_exchange_strong_explicit(&started, &expected, 1,
						     memory_order_acq_rel,
						     memory_order_relaxed))
		return 0;
	last_flush = last_epoch = last_rss = lt__sys_now_ns();
	sigset_t all, old;
	sigfillset(&all);
	/* The thread starts with every signal blocked: the program's
	 * signals must keep going to the program's threads. */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&thread, NULL, writer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		atomic_store_explicit(&started, 0, memory_order_release);
		return -rc;
	}
	return 0;
}

static void ctl_lock_acquire(void)
{
	int expected = 0;
	/* Acquire pairs with the release in ctl_lock_release. */
	while (!atomic_compare_exchange_weak_explicit(&ctl_lock, &expected, 1,
						      memory_order_acquire,
						      memory_order_relaxed)) {
		expected = 0;
		sched_yield();
	}
}

static void ctl_lock_release(void)
{
	atomic_store_explicit(&ctl_lock, 0, memory_order_release);
}

/* Hands req (filled in, ctl_lock held) to the running writer thread and
 * waits until it is served, or until deadline (lt__sys_now_ns(); 0 = no
 * deadline). 0 with *file_size (when not NULL) the served request's, or
 * -ETIMEDOUT. The result is read here, right after the acquire that orders
 * it: read by a caller after this returned, GCC 12's ipa-reference (off
 * for the shim, see meson.build) hoisted the read above the call. */
static int post_request(uint64_t deadline, uint64_t *file_size)
{
	/* Release publishes req to the writer's acquire of ctl_req. */
	uint32_t want = atomic_fetch_add_explicit(&ctl_req, 1, memory_order_release) + 1;
	atomic_store_explicit(&lt__writer_doorbell, 0, memory_order_relaxed);
	lt__sys_futex_wake(&lt__writer_doorbell);
	for (;;) {
		/* Acquire pairs with the writer's release of ctl_ack. */
		uint32_t ack = atomic_load_explicit(&ctl_ack, memory_order_acquire);
		if (ack == want) {
			if (file_size)
				*file_size = req.file_size;
			return 0;
		}
		if (deadline && lt__sys_now_ns() > deadline)
			return -ETIMEDOUT;
		lt__sys_futex_wait(&ctl_ack, ack, 10000000);
	}
}

/* Sends a request to the writer thread and waits for it to be served, or
 * serves it inline when no writer thread runs. Leaves ctl_lock held. */
static uint64_t request(int stop, int drain, int end_kind, int status)
{
	ctl_lock_acquire();
	req.stop = stop;
	req.drain = drain;
	req.end_kind = end_kind;
	req.status = status;
	int expected = 0;
	/* No thread yet: become the consumer ourselves (state 2 keeps a
	 * concurrent lt__writer_start from creating one meanwhile). */
	if (atomic_compare_exchange_strong_explicit(&started, &expected, 2,
						    memory_order_acquire,
						    memory_order_relaxed)) {
		serve_request();
		atomic_store_explicit(&started, stop ? 2 : 0, memory_order_release);
		return req.file_size;
	}
	if (expected == 2) /* stopped already */
		return req.file_size;
	uint64_t file_size = 0;
	post_request(0, &file_size);
	if (stop) {
		pthread_join(thread, NULL);
		atomic_store_explicit(&started, 2, memory_order_release);
	}
	return file_size;
}

#define CRASH_WAIT_NS (3000000000ull) /* a crash waits at most this for the writer */

/* From a fatal-signal handler (async-signal-safe: atomics, futex, the
 * writer's own encoder when no writer thread runs). Like
 * lt__writer_pause(1, ...), but every wait is bounded, since the crashing
 * thread may be the one holding ctl_lock, and the writer stays paused
 * for good: the process is about to die. 0, or -ETIMEDOUT. */
int lt__writer_crash_flush(int end_kind, int status)
{
	uint64_t deadline = lt__sys_now_ns() + CRASH_WAIT_NS;
	int expected = 0;
	/* Acquire pairs with the release in ctl_lock_release. */
	while (!atomic_compare_exchange_weak_explicit(&ctl_lock, &expected, 1,
						      memory_order_acquire,
						      memory_order_relaxed)) {
		expected = 0;
		if (lt__sys_now_ns() > deadline)
			return -ETIMEDOUT;
		sched_yield();
	}
	req.stop = 0;
	req.drain = 1;
	req.end_kind = end_kind;
	req.status = status;
	expected = 0;
	/* Acquire as in request(): no writer thread, consume here. State 2
	 * stays: nobody consumes after us. */
	if (atomic_compare_exchange_strong_explicit(&started, &expected, 2,
						    memory_order_acquire,
						    memory_order_relaxed)) {
		serve_request();
		return 0;
	}
	if (expected == 2) /* stopped already */
		return 0;
	return post_request(deadline, NULL);
}

uint64_t lt__writer_pause(int drain, int end_kind, int status)
{
	return request(0, drain, end_kind, status);
}

void lt__writer_resume(void)
{
	/* Release pairs with the writer's acquire in its pause loop. */
	atomic_fetch_add_explicit(&resume_word, 1, memory_order_release);
	lt__sys_futex_wake(&resume_word);
	ctl_lock_release();
}

void lt__writer_stop(int end_kind, int status)
{
	request(1, 1, end_kind, status);
	lt__fd_release(LT_FD_TRACE);
	lt__fd_release(LT_FD_STATM);
	has_trace = 0;
	ctl_lock_release();
}

const char *lt__writer_path(void)
{
	return path;
}

/* In a fork child: the writer thread does not exist here and the control
 * words are copies of a handshake in progress; start from a clean slate
 * but keep the encoder's knowledge of which stacks the parent's prefix
 * already holds. */
void lt__writer_after_fork_child(void)
{
	lt__fd_after_fork_child();
	lt__fd_release(LT_FD_TRACE); /* the parent's: the child opens its own */
	lt__fd_release(LT_FD_STATM);
	has_trace = 0;
	atomic_store_explicit(&started, 0, memory_order_relaxed);
	atomic_store_explicit(&ctl_lock, 0, memory_order_relaxed);
	atomic_store_explicit(&ctl_req, 0, memory_order_relaxed);
	atomic_store_explicit(&ctl_ack, 0, memory_order_relaxed);
	atomic_store_explicit(&lt__writer_doorbell, 0, memory_order_relaxed);
	bytes_written = 0;
	io_failed = 0;
	count_events = count_allocs = count_frees = count_stacks = 0;
	markers_done = atomic_load_explicit(&lt__signal_markers, memory_order_relaxed);
	block_reset();
}

/* ---- the file ---- */

size_t lt__text_append(char *out, size_t n, size_t cap, const char *s)
{
	while (*s && n + 1 < cap)
		out[n++] = *s++;
	out[n] = 0;
	return n;
}

size_t lt__text_append_uint(char *out, size_t n, size_t cap, uint64_t v)
{
	char d[24];
	int k = 0;
	do
		d[k++] = (char)('0' + v % 10);
	while (v /= 10);
	while (k && n + 1 < cap)
		out[n++] = d[--k];
	out[n] = 0;
	return n;
}

size_t lt__text_cwd(char *out, size_t cap)
{
	if (cap < 2 || !getcwd(out, cap - 1)) {
		if (cap)
			out[0] = 0;
		return 0;
	}
	size_t n = strlen(out);
	if (n && out[n - 1] != '/')
		out[n++] = '/';
	out[n] = 0;
	return n;
}

/* Expands LEAKTRACE_OUTPUT: %p pid, %e executable name, %% a percent;
 * relative paths are made absolute so a fork child can name its parent's
 * trace unambiguously. */
static void expand_path(char *out, size_t cap, const char *exe_name)
{
	const char *pat = lt__config.output_pattern;
	size_t n = pat[0] != '/' ? lt__text_cwd(out, cap) : 0;
	out[n] = 0;
	for (const char *s = pat; *s && n + 1 < cap; s++) {
		if (s[0] == '%' && s[1] == 'p') {
			n = lt__text_append_uint(out, n, cap, (uint64_t)getpid());
			s++;
		} else if (s[0] == '%' && s[1] == 'e') {
			n = lt__text_append(out, n, cap, exe_name);
			s++;
		} else if (s[0] == '%' && s[1] == '%') {
			out[n++] = '%';
			s++;
		} else {
			out[n++] = *s;
		}
	}
	out[n] = 0;
}

static int open_trace_file(void)
{
	char exe[PATH_MAX];
	ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[l > 0 ? l : 0] = 0;
	const char *base = strrchr(exe, '/');
	base = base ? base + 1 : exe;
	char want[PATH_MAX];
	expand_path(want, sizeof want, *base ? base : "unknown");
	/* A re-exec of the same program keeps its pid: number the
	 * collisions rather than overwrite or give up. */
	for (int attempt = 0; attempt < 100; attempt++) {
		size_t n = lt__text_append(path, 0, sizeof path, want);
		if (attempt) {
			n = lt__text_append(path, n, sizeof path, ".");
			lt__text_append_uint(path, n, sizeof path, (uint64_t)attempt);
		}
		int f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (f >= 0) {
			struct stat st;
			if (fstat(f, &st) == 0) {
				trace_dev = st.st_dev;
				trace_ino = st.st_ino;
			}
			/* At a high number: the program's own files keep the
			 * numbers they would get without the shim. */
			lt__fd_adopt(LT_FD_TRACE, f);
			has_trace = 1;
			return 0;
		}
		if (errno != EEXIST)
			break;
	}
	int err = errno;
	const char *name = strerrorname_np(err);
	char why[64] = ": ";
	size_t n = strlen(why);
	n = lt__text_append(why, n, sizeof why, name ? name : "unknown error");
	lt__text_append(why, n, sizeof why, "; running untraced");
	lt__sys_warn("cannot create trace file ", want, why);
	return -err;
}

static void write_process(int fork_child, const char *parent, uint64_t prefix, uint64_t seq)
{
	char exe[PATH_MAX];
	ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[l > 0 ? l : 0] = 0;
	/* The command line, NUL-separated, read without stdio. */
	static char cmdline[65536];
	ssize_t cl = 0;
	int cfd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (cfd >= 0) {
		ssize_t got;
		while (cl < (ssize_t)sizeof cmdline - 1 &&
		       (got = read(cfd, cmdline + cl, sizeof cmdline - 1 - (size_t)cl)) > 0)
			cl += got;
		close(cfd);
	}
	uint64_t argc = 0;
	for (ssize_t i = 0; i < cl; i++)
		argc += cmdline[i] == 0;
	uint8_t *p = meta_begin(LT_REC_PROCESS, (size_t)cl + 2 * PATH_MAX + 16 * LT_UV_MAX);
	uint8_t *s = p;
	p = lt_put_uv(p, (uint64_t)getpid());
	p = lt_put_uv(p, (uint64_t)getppid());
	p = lt_put_uv(p, lt__sys_unix_ns());
	p = put_str(p, exe, PATH_MAX);
	p = lt_put_uv(p, argc);
	for (ssize_t i = 0, k = 0; k < (ssize_t)argc; k++) {
		size_t n = strlen(cmdline + i);
		p = put_str(p, cmdline + i, n);
		i += (ssize_t)n + 1;
	}
	uint64_t flags = (fork_child ? LT_PROC_FORK_CHILD : 0) |
			 (lt__config.unwinder == LT_UNWIND_FP ? LT_PROC_FP_UNWIND : 0) |
			 (lt__config.depth == 0 ? LT_PROC_NO_STACKS : 0);
	p = lt_put_uv(p, flags);
	p = put_str(p, parent ? parent : "", PATH_MAX);
	p = lt_put_uv(p, prefix);
	p = lt_put_uv(p, seq);
	meta_end(s, p);
}

int lt__writer_open(int fork_child, const char *parent, uint64_t prefix, uint64_t seq)
{
	if (!raw) {
		for (int k = 0; k < 2; k++)
			for (int c = 0; c < LT_COL_COUNT; c++)
				if (!(sets[k].col[c] = lt__sys_map(COL_CAP))) {
					lt__sys_warn("cannot map the writer's buffers (ENOMEM: an "
						     "address-space limit?); running untraced",
						     NULL, NULL);
					return -ENOMEM;
				}
		zbuf_cap = ZSTD_compressBound(LT_COL_COUNT * COL_CAP) + LT_BLOCK_HEADER_LEN +
			   LT_COL_COUNT * LT_UV_MAX;
		zbuf = lt__sys_map(zbuf_cap);
		stack_written = lt__sys_map(STACK_BITS / 8);
		if (!zbuf || !stack_written) {
			lt__sys_warn("cannot map the writer's buffers (ENOMEM: an address-space "
				     "limit?); running untraced", NULL, NULL);
			return -ENOMEM;
		}
		model_ok = lt_model_init(&model, model_map, model_unmap) == 0;
		if (lt__config.zstd_level > 0) {
			ZSTD_customMem mem = {zalloc, zfree, NULL};
			zctx = ZSTD_createCCtx_advanced(mem);
			if (zctx)
				ZSTD_CCtx_setParameter(zctx, ZSTD_c_compressionLevel,
						       lt__config.zstd_level);
		}
		start_ns = lt__sys_now_ns();
	}
	int rc = open_trace_file();
	if (rc)
		return rc;
	uint8_t header[LT_FILE_HEADER_LEN] = {0};
	memcpy(header, LT_FILE_MAGIC, LT_FILE_MAGIC_LEN);
	header[8] = LT_FORMAT_MAJOR;
	header[10] = LT_FORMAT_MINOR;
	const char *why;
	rc = trace_write(header, sizeof header, &why);
	if (rc) {
		io_error(-rc, why);
		return rc;
	}
	block_reset();
	write_process(fork_child, parent, prefix, seq);
	/* PROCESS gets a block of its own: a reader looks at it before it
	 * knows where the heap model starts (format.h, columnar blocks). */
	flush_block();
	compress_finish();
	return 0;
}
