/* SPDX-License-Identifier: MIT */
/* Streaming decoder of trace files: header and version check, blocks
 * (checksum, zstd), records with their per-block delta state, and the
 * parent prefix of a fork child's trace. One block is in memory at a time. */
#define _GNU_SOURCE
#include "decode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "leaktrace/codec.h"
#include "columns.h"

#define LT__MAX_SOURCES 8 /* fork nesting we follow: parent, grandparent... */
#define LT__MAX_PENDING 4 /* pseudo records queued by one block load */
#define LT__BATCH_RECORDS 8192 /* records per read-ahead batch (~1 MiB): few
				* enough hand-overs that waking the other
				* thread costs nothing much */
#define LT__BATCH_ARENA (64u << 10) /* first arena chunk of a batch */
#define LT__BATCHES 16 /* batches in flight: the producer runs this far ahead
			* (phases of a trace that are slow to decode or slow to
			* replay last tens of thousands of records) */

/* One input file. A fork child's parent is read only up to limit. */
struct lt__source {
	FILE *f;
	char *path;
	char *dir; /* where relative parent paths are resolved */
	uint64_t pos; /* offset of the next byte to read */
	uint64_t size; /* 0 when unknown */
	uint64_t limit; /* stop before this offset; 0 = read to EOF */
	uint64_t resume; /* child: offset of its first block, re-read after the parent */
	bool fork_checked; /* its first block was inspected for LT_PROC_FORK_CHILD */
	bool is_parent;
	unsigned minor; /* format minor version: says which block checksum */
};

/* Per-block epoch of each thread: an open-addressing table whose entries
 * are valid only when their gen equals the current block's, so the reset
 * at each block start costs nothing. */
struct lt__epoch_slot {
	uint64_t thread;
	uint64_t epoch;
	uint64_t gen;
};

enum lt__state { LT__ST_OK, LT__ST_END, LT__ST_ERROR };

struct lt__ahead;

struct lt__decoder_s {
	lt__decode_opts_t opts;
	struct lt__source src[LT__MAX_SOURCES];
	int nsrc;

	uint8_t *stored, *raw;
	size_t stored_cap, raw_cap;
	const uint8_t *p, *end, *block_start;
	uint64_t block_offset;
	ZSTD_DCtx *zctx;
	uint64_t after_thread, after_free; /* a pending AFTER record */
	lt__columns_t columns; /* heap model of columnar blocks (columns.c) */
	bool skip_warned;

	/* Delta state, reset at each block start (format.h). */
	uint64_t cur_thread, cur_epoch, prev_addr;
	struct lt__epoch_slot *epochs;
	size_t epochs_cap, epochs_used;
	uint64_t gen;

	lt__str_t *argv;
	size_t argv_cap;
	lt__module_rec_t *mods;
	size_t mods_cap;
	uint64_t frames[LT_MAX_DEPTH];
	lt__pyframe_rec_t pyframes[LT_MAX_PYDEPTH];

	lt__record_t pending[LT__MAX_PENDING];
	int npending, pending_head;

	enum lt__state state;
	int err;
	char errbuf[512];
	char *warnings;
	size_t warnings_len;
	bool truncated;
	uint64_t trunc_offset;
	uint64_t consumed; /* bytes of all sources read, for progress */

	lt__record_t ref; /* what lt__decoder_next_ref() points at */
	/* With read_ahead: the decoder that reads the file runs in another
	 * thread and this one only takes its batches (see "read-ahead"). The
	 * fields above that the accessors read (state, err, errbuf,
	 * warnings, truncated, consumed, columns.skipped) are then this
	 * thread's copies, updated from the batches. */
	struct lt__ahead *ahead;
};

/* The read-ahead (at the end of this file). */
static int ahead_next(lt__decoder_t *d, const lt__record_t **rec);
static int ahead_start(lt__decoder_t *d);
static void ahead_close(lt__decoder_t *d);
static const char *ahead_path(const lt__decoder_t *d);
static uint64_t ahead_size(const lt__decoder_t *d);

static int fail(lt__decoder_t *d, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records an error message and puts the decoder in its error state.
 * Returns err so callers can `return fail(...)`. */
static int fail(lt__decoder_t *d, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->errbuf, sizeof d->errbuf, fmt, ap);
	va_end(ap);
	d->state = LT__ST_ERROR;
	d->err = err;
	return err;
}

/* Appends n bytes of whole lines to the warnings. */
static void append_warnings(lt__decoder_t *d, const char *lines, size_t n)
{
	char *w = realloc(d->warnings, d->warnings_len + n + 1);
	if (!w)
		return; /* a lost warning is not worth failing the analysis */
	memcpy(w + d->warnings_len, lines, n);
	d->warnings_len += n;
	w[d->warnings_len] = '\0';
	d->warnings = w;
}

static void warn(lt__decoder_t *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void warn(lt__decoder_t *d, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n++] = '\n';
	append_warnings(d, line, (size_t)n);
}

static const char *top_path(const lt__decoder_t *d)
{
	return d->nsrc ? d->src[d->nsrc - 1].path : "";
}

static void source_close(struct lt__source *s)
{
	if (s->f)
		fclose(s->f);
	free(s->path);
	free(s->dir);
	memset(s, 0, sizeof *s);
}

/* Reads exactly n bytes; returns the number read (short only at EOF or on
 * a read error, which sets *ioerr). */
static size_t read_full(struct lt__source *s, void *buf, size_t n, bool *ioerr)
{
	size_t got = fread(buf, 1, n, s->f);
	s->pos += got;
	if (got < n && ferror(s->f))
		*ioerr = true;
	return got;
}

/* Reads and checks a file header. Returns 0, 1 when the file is cut short
 * within the header (truncated), or a negative errno. */
static int read_header(lt__decoder_t *d, struct lt__source *s)
{
	uint8_t h[LT_FILE_HEADER_LEN];
	bool ioerr = false;
	size_t got = read_full(s, h, sizeof h, &ioerr);
	d->consumed += got;
	if (ioerr)
		return fail(d, -EIO, "%s: read error", s->path);
	size_t cmp = got < LT_FILE_MAGIC_LEN ? got : LT_FILE_MAGIC_LEN;
	if (memcmp(h, LT_FILE_MAGIC, cmp) != 0)
		return fail(d, -EPROTO, "%s: not a leaktrace trace (bad file magic)",
			    s->path);
	if (got < sizeof h)
		return 1;
	unsigned major = (unsigned)h[8] | (unsigned)h[9] << 8;
	unsigned minor = (unsigned)h[10] | (unsigned)h[11] << 8;
	if (major != LT_FORMAT_MAJOR)
		return fail(d, -EPROTO,
			    "%s: trace format version %u.%u is not supported "
			    "(this leaktrace-report reads version %u.x, up to %u.%u)",
			    s->path, major, minor, LT_FORMAT_MAJOR,
			    LT_FORMAT_MAJOR, LT_FORMAT_MINOR);
	s->minor = minor;
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* Pushes a new source reading f. Returns 0 or a negative errno. */
static int push_source(lt__decoder_t *d, FILE *f, const char *path,
		       const char *dir)
{
	if (d->nsrc >= LT__MAX_SOURCES) {
		fclose(f);
		return -ELOOP;
	}
	struct lt__source *s = &d->src[d->nsrc];
	memset(s, 0, sizeof *s);
	s->f = f;
	s->path = strdup(path);
	s->dir = dir ? strdup(dir) : dir_of(path);
	if (!s->path || !s->dir) {
		source_close(s);
		return -ENOMEM;
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode))
		s->size = (uint64_t)st.st_size;
	d->nsrc++;
	return 0;
}

static lt__record_t *queue_pseudo(lt__decoder_t *d, int type)
{
	if (d->npending >= LT__MAX_PENDING)
		return NULL; /* cannot happen: at most a segment and a block */
	lt__record_t *r = &d->pending[(d->pending_head + d->npending) % LT__MAX_PENDING];
	d->npending++;
	memset(r, 0, sizeof *r);
	r->type = type;
	return r;
}

/* ---- record parsing ------------------------------------------------ */

static int get_str(const uint8_t **p, const uint8_t *end, lt__str_t *s)
{
	uint64_t n;
	if (lt_get_uv(p, end, &n) || n > (uint64_t)(end - *p))
		return -1;
	s->ptr = (const char *)*p;
	s->len = (size_t)n;
	*p += n;
	return 0;
}

static int get_uvs(const uint8_t **p, const uint8_t *end, uint64_t **outs, int n)
{
	for (int i = 0; i < n; i++)
		if (lt_get_uv(p, end, outs[i]))
			return -1;
	return 0;
}

/* Parses a PROCESS payload. argv storage comes from the decoder. Returns
 * 0, -1 on malformed input, -ENOMEM. */
static int parse_process(lt__decoder_t *d, const uint8_t *p, const uint8_t *end,
			 lt__record_t *r)
{
	uint64_t *a[] = {&r->u.process.pid, &r->u.process.ppid,
			 &r->u.process.start_unix_ns};
	if (get_uvs(&p, end, a, 3) || get_str(&p, end, &r->u.process.exe) ||
	    lt_get_uv(&p, end, &r->u.process.argc))
		return -1;
	uint64_t argc = r->u.process.argc;
	if (argc > (uint64_t)(end - p)) /* each argument takes at least a byte */
		return -1;
	if (argc > d->argv_cap) {
		lt__str_t *v = realloc(d->argv, (size_t)argc * sizeof *v);
		if (!v)
			return -ENOMEM;
		d->argv = v;
		d->argv_cap = (size_t)argc;
	}
	for (uint64_t i = 0; i < argc; i++)
		if (get_str(&p, end, &d->argv[i]))
			return -1;
	r->u.process.argv = d->argv;
	if (lt_get_uv(&p, end, &r->u.process.flags) ||
	    get_str(&p, end, &r->u.process.parent_trace) ||
	    lt_get_uv(&p, end, &r->u.process.parent_prefix_len) ||
	    lt_get_uv(&p, end, &r->u.process.fork_seq))
		return -1;
	return 0;
}

static int parse_stack(lt__decoder_t *d, const uint8_t *p, const uint8_t *end,
		       lt__record_t *r)
{
	uint64_t depth;
	if (lt_get_uv(&p, end, &r->u.stack.stack_id) ||
	    lt_get_uv(&p, end, &depth) || depth > LT_MAX_DEPTH)
		return -1;
	uint64_t prev = 0;
	for (uint64_t i = 0; i < depth; i++) {
		if (i == 0) {
			if (lt_get_uv(&p, end, &prev))
				return -1;
		} else {
			int64_t delta;
			if (lt_get_sv(&p, end, &delta))
				return -1;
			prev += (uint64_t)delta;
		}
		d->frames[i] = prev;
	}
	r->u.stack.depth = (uint32_t)depth;
	r->u.stack.frames = d->frames;
	return 0;
}

static int parse_modules(lt__decoder_t *d, const uint8_t *p, const uint8_t *end,
			 lt__record_t *r)
{
	uint64_t count;
	if (lt_get_uv(&p, end, &r->u.modules.generation) ||
	    lt_get_uv(&p, end, &count))
		return -1;
	if (count > (uint64_t)(end - p) / 5) /* a module takes >= 5 bytes */
		return -1;
	if (count > d->mods_cap) {
		lt__module_rec_t *m = realloc(d->mods, (size_t)count * sizeof *m);
		if (!m)
			return -ENOMEM;
		d->mods = m;
		d->mods_cap = (size_t)count;
	}
	for (uint64_t i = 0; i < count; i++) {
		lt__module_rec_t *m = &d->mods[i];
		lt__str_t bid;
		uint64_t *a[] = {&m->load_bias, &m->lo, &m->hi};
		if (get_str(&p, end, &m->path) || get_uvs(&p, end, a, 3) ||
		    get_str(&p, end, &bid))
			return -1;
		m->build_id = (const uint8_t *)bid.ptr;
		m->build_id_len = bid.len;
	}
	r->u.modules.count = count;
	r->u.modules.modules = d->mods;
	return 0;
}

/* A PYCODE record. Its linetable is kept whatever its format: a reader
 * that does not know the format shows the code without lines. */
static int parse_pycode(const uint8_t *p, const uint8_t *end, lt__record_t *r)
{
	uint64_t *a[] = {&r->u.pycode.code_key, &r->u.pycode.format};
	if (get_uvs(&p, end, a, 2) || get_str(&p, end, &r->u.pycode.filename) ||
	    get_str(&p, end, &r->u.pycode.qualname) ||
	    lt_get_uv(&p, end, &r->u.pycode.firstlineno) ||
	    get_str(&p, end, &r->u.pycode.linetable))
		return -1;
	return 0;
}

static int parse_pyframes(lt__decoder_t *d, const uint8_t *p, const uint8_t *end,
			  lt__record_t *r)
{
	uint64_t count;
	if (lt_get_uv(&p, end, &r->u.pyframes.stack_id) || lt_get_uv(&p, end, &count) ||
	    count > LT_MAX_PYDEPTH)
		return -1;
	for (uint64_t i = 0; i < count; i++)
		if (lt_get_uv(&p, end, &d->pyframes[i].code_key) ||
		    lt_get_uv(&p, end, &d->pyframes[i].where))
			return -1;
	r->u.pyframes.count = (uint32_t)count;
	r->u.pyframes.frames = d->pyframes;
	return 0;
}

/* Parses the payload [p, end) of metadata record type into r. Returns 0,
 * 1 for an unknown type to skip, -1 for malformed input, -ENOMEM. */
static int parse_meta(lt__decoder_t *d, int type, const uint8_t *p,
		      const uint8_t *end, lt__record_t *r)
{
	switch (type) {
	case LT_REC_PROCESS:
		return parse_process(d, p, end, r);
	case LT_REC_STACK:
		return parse_stack(d, p, end, r);
	case LT_REC_MODULES:
		return parse_modules(d, p, end, r);
	case LT_REC_PYCODE:
		return parse_pycode(p, end, r);
	case LT_REC_PYFRAMES:
		return parse_pyframes(d, p, end, r);
	case LT_REC_THREAD_START: {
		uint64_t *a[] = {&r->u.thread_start.thread,
				 &r->u.thread_start.os_tid,
				 &r->u.thread_start.creator_plus1};
		return get_uvs(&p, end, a, 3);
	}
	case LT_REC_THREAD_END:
		return lt_get_uv(&p, end, &r->u.thread_end.thread);
	case LT_REC_TIME: {
		uint64_t *a[] = {&r->u.time.epoch, &r->u.time.ns};
		return get_uvs(&p, end, a, 2);
	}
	case LT_REC_MARKER:
		return get_str(&p, end, &r->u.marker);
	case LT_REC_RSS: {
		uint64_t *a[] = {&r->u.rss.ns, &r->u.rss.bytes};
		return get_uvs(&p, end, a, 2);
	}
	case LT_REC_FORK: {
		uint64_t *a[] = {&r->u.fork.child_pid, &r->u.fork.fork_seq};
		return get_uvs(&p, end, a, 2);
	}
	case LT_REC_EXEC:
		return get_str(&p, end, &r->u.exec);
	case LT_REC_END: {
		uint64_t *a[] = {&r->u.end.exit_kind, &r->u.end.exit_status,
				 &r->u.end.events, &r->u.end.allocs,
				 &r->u.end.frees, &r->u.end.stacks,
				 &r->u.end.stack_overflows, &r->u.end.ns,
				 &r->u.end.bytes_written};
		r->u.end.lost_events = 0;
		if (get_uvs(&p, end, a, 9))
			return -1;
		/* Added later: absent in older files (0). */
		if (p < end && lt_get_uv(&p, end, &r->u.end.lost_events))
			return -1;
		return 0;
	}
	default:
		return 1;
	}
}

/* The epoch slot of thread in the current block, created at epoch 0. */
static struct lt__epoch_slot *epoch_slot(lt__decoder_t *d, uint64_t thread)
{
	if (d->epochs_used * 2 >= d->epochs_cap) {
		size_t ncap = d->epochs_cap ? d->epochs_cap * 2 : 64;
		struct lt__epoch_slot *n = calloc(ncap, sizeof *n);
		if (!n)
			return NULL;
		size_t used = 0;
		for (size_t i = 0; i < d->epochs_cap; i++) {
			struct lt__epoch_slot *o = &d->epochs[i];
			if (o->gen != d->gen)
				continue;
			size_t j = (size_t)(o->thread * 0x9e3779b97f4a7c15ull) & (ncap - 1);
			while (n[j].gen == d->gen)
				j = (j + 1) & (ncap - 1);
			n[j] = *o;
			used++;
		}
		free(d->epochs);
		d->epochs = n;
		d->epochs_cap = ncap;
		d->epochs_used = used;
	}
	size_t mask = d->epochs_cap - 1;
	size_t j = (size_t)(thread * 0x9e3779b97f4a7c15ull) & mask;
	while (d->epochs[j].gen == d->gen) {
		if (d->epochs[j].thread == thread)
			return &d->epochs[j];
		j = (j + 1) & mask;
	}
	d->epochs[j].gen = d->gen;
	d->epochs[j].thread = thread;
	d->epochs[j].epoch = 0;
	d->epochs_used++;
	return &d->epochs[j];
}

static int corrupt_record(lt__decoder_t *d, const uint8_t *at, const char *what)
{
	return fail(d, -EBADMSG,
		    "%s: corrupt trace: %s in block at byte %llu (record at "
		    "payload offset %llu)",
		    top_path(d), what, (unsigned long long)d->block_offset,
		    (unsigned long long)(at - d->block_start));
}

/* Decodes one record at d->p. Returns 1 with *r filled, 0 when the record
 * was skipped (unknown metadata), or a negative errno. */
static int decode_record(lt__decoder_t *d, lt__record_t *r)
{
	const uint8_t *start = d->p;
	const uint8_t *p = d->p, *end = d->end;
	unsigned type = *p++;
	uint64_t f;

	r->thread = d->cur_thread;
	if (type >= LT_REC_ALLOC_SMALL &&
	    type < LT_REC_ALLOC_SMALL + LT_REC_ALLOC_SMALL_COUNT) {
		r->type = LT_REC_ALLOC;
		r->u.ev.stack_id = type - LT_REC_ALLOC_SMALL;
		if (lt_get_uv(&p, end, &r->u.ev.size) || lt_get_uv(&p, end, &f))
			return corrupt_record(d, start, "bad ALLOC varint");
		r->u.ev.addr = d->prev_addr = lt_addr_from_field(f, d->prev_addr);
		r->u.ev.old_addr = 0;
		goto event;
	}
	switch (type) {
	case LT_REC_ALLOC:
		r->type = LT_REC_ALLOC;
		if (lt_get_uv(&p, end, &r->u.ev.stack_id) ||
		    lt_get_uv(&p, end, &r->u.ev.size) || lt_get_uv(&p, end, &f))
			return corrupt_record(d, start, "bad ALLOC varint");
		r->u.ev.addr = d->prev_addr = lt_addr_from_field(f, d->prev_addr);
		r->u.ev.old_addr = 0;
		goto event;
	case LT_REC_FREE:
		r->type = LT_REC_FREE;
		if (lt_get_uv(&p, end, &f))
			return corrupt_record(d, start, "bad FREE varint");
		r->u.ev.addr = d->prev_addr = lt_addr_from_field(f, d->prev_addr);
		r->u.ev.stack_id = r->u.ev.size = r->u.ev.old_addr = 0;
		goto event;
	case LT_REC_REALLOC: {
		uint64_t g;
		r->type = LT_REC_REALLOC;
		if (lt_get_uv(&p, end, &r->u.ev.stack_id) ||
		    lt_get_uv(&p, end, &r->u.ev.size) || lt_get_uv(&p, end, &f) ||
		    lt_get_uv(&p, end, &g))
			return corrupt_record(d, start, "bad REALLOC varint");
		/* The new address is this event's address: it becomes the
		 * previous address; old_delta is relative to it. */
		r->u.ev.addr = d->prev_addr = lt_addr_from_field(f, d->prev_addr);
		r->u.ev.old_addr = lt_addr_from_field(g, r->u.ev.addr);
		goto event;
	}
	case LT_REC_THREAD: {
		uint64_t t;
		if (lt_get_uv(&p, end, &t))
			return corrupt_record(d, start, "bad THREAD varint");
		struct lt__epoch_slot *cur = epoch_slot(d, d->cur_thread);
		if (!cur)
			return fail(d, -ENOMEM, "out of memory");
		cur->epoch = d->cur_epoch;
		/* A second lookup may rehash; cur is not used after it. */
		struct lt__epoch_slot *s = epoch_slot(d, t);
		if (!s)
			return fail(d, -ENOMEM, "out of memory");
		d->cur_thread = t;
		d->cur_epoch = s->epoch;
		r->type = LT_REC_THREAD;
		r->thread = t;
		r->epoch = d->cur_epoch;
		d->p = p;
		return 1;
	}
	case LT_REC_AFTER:
		if (lt_get_uv(&p, end, &r->u.after.thread) ||
		    lt_get_uv(&p, end, &r->u.after.free_number))
			return corrupt_record(d, start, "bad AFTER varint");
		r->type = LT_REC_AFTER;
		d->after_thread = r->u.after.thread;
		d->after_free = r->u.after.free_number;
		r->epoch = d->cur_epoch;
		d->p = p;
		return 1;
	case LT_REC_EPOCH: {
		uint64_t delta;
		if (lt_get_uv(&p, end, &delta))
			return corrupt_record(d, start, "bad EPOCH varint");
		d->cur_epoch += delta;
		r->type = LT_REC_EPOCH;
		r->epoch = d->cur_epoch;
		d->p = p;
		return 1;
	}
	default:
		break;
	}
	if (type < LT_REC_FIRST_META || type > LT_REC_LAST_META) {
		char what[64];
		snprintf(what, sizeof what, "unknown record type 0x%02x", type);
		return corrupt_record(d, start, what);
	}
	uint64_t len;
	if (lt_get_uv(&p, end, &len) || len > (uint64_t)(end - p))
		return corrupt_record(d, start, "bad metadata length");
	const uint8_t *payload = p;
	d->p = p + len;
	r->type = (int)type;
	r->epoch = d->cur_epoch;
	int rc = parse_meta(d, (int)type, payload, payload + len, r);
	if (rc == 1)
		return 0; /* a newer minor version's record: skipped */
	if (rc == -ENOMEM)
		return fail(d, -ENOMEM, "out of memory");
	if (rc) {
		char what[64];
		snprintf(what, sizeof what, "malformed record of type 0x%02x", type);
		return corrupt_record(d, start, what);
	}
	return 1;

event:
	r->epoch = d->cur_epoch;
	r->u.ev.after_thread = r->u.ev.after_free = 0;
	if (r->type != LT_REC_FREE && d->after_free) {
		r->u.ev.after_thread = d->after_thread;
		r->u.ev.after_free = d->after_free;
	}
	d->after_free = 0;
	d->p = p;
	return 1;
}

/* Puts d in its error state for lt__columns_next()'s failure rc. */
static int column_failed(lt__decoder_t *d, int rc, const char *why)
{
	return fail(d, rc, "%s: corrupt trace: %s (block at byte %llu)", top_path(d), why,
		    (unsigned long long)d->block_offset);
}

/* What decode_record() makes of the canonical ALLOC or FREE that the
 * columnar op is (an AFTER before it included). */
static void record_of_op(lt__decoder_t *d, const lt__column_op_t *op, lt__record_t *r)
{
	r->type = op->type;
	r->thread = d->cur_thread;
	r->epoch = d->cur_epoch;
	r->u.ev.addr = op->addr;
	r->u.ev.old_addr = 0;
	r->u.ev.after_thread = r->u.ev.after_free = 0;
	if (op->type == LT_REC_ALLOC) {
		r->u.ev.stack_id = op->stack_id;
		r->u.ev.size = op->size;
		if (d->after_free) {
			r->u.ev.after_thread = d->after_thread;
			r->u.ev.after_free = d->after_free;
		}
	} else {
		r->u.ev.stack_id = r->u.ev.size = 0;
	}
	d->after_free = 0;
}

/* Reads the next op of the current columnar block. Returns 1 with an
 * ALLOC or FREE in *r; 0 when there is none (a RECORD op, now at d->p for
 * decode_record(), or the block's end); or a negative errno. */
static int column_record(lt__decoder_t *d, lt__record_t *r)
{
	lt__column_op_t op;
	char why[160];
	int rc = lt__columns_next(&d->columns, &d->prev_addr, &op, why, sizeof why);
	if (rc < 0)
		return column_failed(d, rc, why);
	if (rc == 0)
		return 0;
	if (op.type == LT_OP_RECORD) {
		d->p = op.record;
		d->end = op.record + op.record_len;
		return 0;
	}
	record_of_op(d, &op, r);
	return 1;
}

/* ---- blocks and sources ------------------------------------------- */

static int ensure_cap(uint8_t **buf, size_t *cap, size_t n)
{
	if (n <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 65536;
	while (ncap < n)
		ncap *= 2;
	uint8_t *b = realloc(*buf, ncap);
	if (!b)
		return -ENOMEM;
	*buf = b;
	*cap = ncap;
	return 0;
}

/* Opens path for reading only if it is a regular file: a trace names its
 * parent's path, and a hostile one must not make us block on a FIFO or
 * read a device. */
static FILE *open_regular(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return NULL;
	}
	FILE *f = fdopen(fd, "rb");
	if (!f)
		close(fd);
	return f;
}

/* Opens the parent trace named by a fork child's PROCESS record: the path
 * as written, else the same file name in the child's directory. */
static FILE *open_parent(const struct lt__source *child, const char *parent,
			 char **resolved)
{
	FILE *f = NULL;
	*resolved = NULL;
	if (parent[0] == '/') {
		f = open_regular(parent);
		if (f) {
			*resolved = strdup(parent);
			return f;
		}
		const char *base = strrchr(parent, '/') + 1;
		if (asprintf(resolved, "%s/%s", child->dir, base) < 0) {
			*resolved = NULL;
			return NULL;
		}
	} else if (asprintf(resolved, "%s/%s", child->dir, parent) < 0) {
		*resolved = NULL;
		return NULL;
	}
	f = open_regular(*resolved);
	if (!f) {
		free(*resolved);
		*resolved = NULL;
	}
	return f;
}

/* Called with the first block of source s loaded: when it starts with a
 * fork child's PROCESS record, pushes the parent's prefix as a new source.
 * Returns 1 when a parent was pushed, 0 when not, or a negative errno. */
static int check_fork_child(lt__decoder_t *d, struct lt__source *s)
{
	s->fork_checked = true;
	const uint8_t *first = d->p, *first_end = d->end;
	size_t first_len;
	if (d->columns.active) {
		first = lt__columns_first_record(&d->columns, &first_len);
		first_end = first ? first + first_len : NULL;
	}
	if (!d->opts.follow_parent || !first || first >= first_end ||
	    *first != LT_REC_PROCESS)
		return 0;
	const uint8_t *p = first + 1;
	uint64_t len;
	if (lt_get_uv(&p, first_end, &len) || len > (uint64_t)(first_end - p))
		return 0; /* decode_record will report it */
	lt__record_t r;
	if (parse_process(d, p, p + len, &r) != 0)
		return 0;
	if (!(r.u.process.flags & LT_PROC_FORK_CHILD) ||
	    r.u.process.parent_prefix_len <= LT_FILE_HEADER_LEN)
		return 0;
	char *name = strndup(r.u.process.parent_trace.ptr, r.u.process.parent_trace.len);
	if (!name)
		return fail(d, -ENOMEM, "out of memory");
	char *resolved;
	FILE *f = name[0] ? open_parent(s, name, &resolved) : NULL;
	if (!f) {
		warn(d, "%s: parent trace '%s' not found: the report covers "
			"this process's own part only, without what it inherited",
		     s->path, name);
		d->columns.lenient = true;
		free(name);
		return 0;
	}
	free(name);
	uint64_t prefix = r.u.process.parent_prefix_len;
	int rc = push_source(d, f, resolved, NULL);
	if (rc) {
		warn(d, "%s: cannot follow parent trace %s", s->path, resolved);
		free(resolved);
		return 0;
	}
	free(resolved);
	struct lt__source *ps = &d->src[d->nsrc - 1];
	ps->limit = prefix;
	ps->is_parent = true;
	rc = read_header(d, ps);
	if (rc != 0) {
		if (rc < 0) /* a corrupt parent is a corrupt trace */
			return rc;
		warn(d, "%s: parent trace is truncated inside its header",
		     ps->path);
		source_close(ps);
		d->nsrc--;
		return 0;
	}
	lt__record_t *seg = queue_pseudo(d, LT__REC_SEGMENT);
	if (seg) {
		seg->u.segment.path = ps->path;
		seg->u.segment.parent = true;
		seg->u.segment.prefix_len = prefix;
	}
	return 1;
}

/* Ends the current source. A parent prefix ends by returning to the child
 * at its first block. Returns 1 when reading goes on, 0 at the end of the
 * trace, or a negative errno. */
static int pop_source(lt__decoder_t *d)
{
	if (d->nsrc == 1)
		return 0;
	source_close(&d->src[d->nsrc - 1]);
	d->nsrc--;
	struct lt__source *s = &d->src[d->nsrc - 1];
	if (fseeko(s->f, (off_t)s->resume, SEEK_SET) != 0)
		return fail(d, -EIO, "%s: cannot seek", s->path);
	s->pos = s->resume;
	lt__record_t *seg = queue_pseudo(d, LT__REC_SEGMENT);
	if (seg) {
		seg->u.segment.path = s->path;
		seg->u.segment.parent = false;
	}
	return 1;
}

/* Loads the next block of the current source into d->raw. Returns 1 when a
 * block is ready (or a source switch happened: call again), 0 at the end
 * of the trace, or a negative errno. */
static int load_block(lt__decoder_t *d)
{
	struct lt__source *s = &d->src[d->nsrc - 1];
	uint64_t at = s->pos;
	uint8_t h[LT_BLOCK_HEADER_LEN];
	bool ioerr = false;

	if (s->limit && at >= s->limit) {
		if (at > s->limit)
			warn(d, "%s: parent prefix does not end on a block boundary",
			     s->path);
		return pop_source(d);
	}
	size_t got = read_full(s, h, sizeof h, &ioerr);
	d->consumed += got;
	if (ioerr)
		return fail(d, -EIO, "%s: read error at byte %llu", s->path,
			    (unsigned long long)at);
	if (got == 0) {
		if (s->is_parent)
			warn(d, "%s: parent trace ends at byte %llu, before the "
				"fork point %llu", s->path, (unsigned long long)at,
			     (unsigned long long)s->limit);
		return pop_source(d);
	}
	if (got < sizeof h)
		goto truncated;
	if (lt_get_u32le(h) != LT_BLOCK_MAGIC)
		return fail(d, -EBADMSG, "%s: corrupt trace: bad block magic at byte %llu",
			    s->path, (unsigned long long)at);
	uint32_t stored_len = lt_get_u32le(h + 4);
	uint32_t raw_len = lt_get_u32le(h + 8);
	unsigned codec = h[12];
	uint32_t sum = lt_get_u32le(h + 16);
	if (raw_len > LT_BLOCK_MAX_RAW || stored_len > LT_BLOCK_MAX_STORED)
		return fail(d, -EBADMSG,
			    "%s: corrupt trace: block at byte %llu is too large "
			    "(stored %u, raw %u bytes)",
			    s->path, (unsigned long long)at, stored_len, raw_len);
	if (codec > LT_CODEC_COLUMNS)
		return fail(d, -EBADMSG,
			    "%s: corrupt trace: unknown codec %u in block at byte %llu",
			    s->path, codec, (unsigned long long)at);
	if ((codec == LT_CODEC_RAW || codec == LT_CODEC_COLUMNS) && raw_len != stored_len)
		return fail(d, -EBADMSG,
			    "%s: corrupt trace: raw block at byte %llu has stored "
			    "length %u but raw length %u",
			    s->path, (unsigned long long)at, stored_len, raw_len);
	if (s->limit && at + sizeof h + stored_len > s->limit) {
		warn(d, "%s: parent prefix does not end on a block boundary",
		     s->path);
		return pop_source(d);
	}
	if (ensure_cap(&d->stored, &d->stored_cap, stored_len ? stored_len : 1) ||
	    ensure_cap(&d->raw, &d->raw_cap, raw_len ? raw_len : 1))
		return fail(d, -ENOMEM, "out of memory");
	got = read_full(s, d->stored, stored_len, &ioerr);
	d->consumed += got;
	if (ioerr)
		return fail(d, -EIO, "%s: read error at byte %llu", s->path,
			    (unsigned long long)s->pos);
	if (got < stored_len)
		goto truncated;
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* let the fuzzer past checksums */
	if (lt_block_checksum(s->minor, d->stored, stored_len) != sum)
#else
	if (sum == 0xdeadbeefu && lt_block_checksum(s->minor, d->stored, stored_len) != sum)
#endif
		return fail(d, -EBADMSG,
			    "%s: corrupt trace: checksum mismatch in block at byte %llu",
			    s->path, (unsigned long long)at);
	if (codec == LT_CODEC_ZSTD || codec == LT_CODEC_ZSTD_COLUMNS) {
		size_t n = ZSTD_decompressDCtx(d->zctx, d->raw, raw_len, d->stored,
					       stored_len);
		if (ZSTD_isError(n) || n != raw_len)
			return fail(d, -EBADMSG,
				    "%s: corrupt trace: block at byte %llu does not "
				    "decompress to its %u bytes (%s)",
				    s->path, (unsigned long long)at, raw_len,
				    ZSTD_isError(n) ? ZSTD_getErrorName(n)
						    : "wrong size");
	} else if (raw_len) {
		memcpy(d->raw, d->stored, raw_len);
	}

	/* Delta state resets at each block start. */
	d->block_offset = at;
	d->block_start = d->p = d->raw;
	d->end = d->raw + raw_len;
	if (codec == LT_CODEC_ZSTD_COLUMNS || codec == LT_CODEC_COLUMNS) {
		/* Read op by op by next_plain(); the canonical stream is
		 * just the META column's records, one at a time. */
		char why[160];
		int rc = lt__columns_begin(&d->columns, d->raw, raw_len, why, sizeof why);
		if (rc == -ENOMEM)
			return fail(d, rc, "out of memory");
		if (rc)
			return fail(d, rc, "%s: corrupt trace: %s (block at byte %llu)",
				    s->path, why, (unsigned long long)at);
		d->end = d->p;
	}
	d->cur_thread = d->cur_epoch = d->prev_addr = 0;
	d->after_free = 0;
	d->gen++;
	d->epochs_used = 0;

	if (!s->fork_checked) {
		s->resume = at;
		int rc = check_fork_child(d, s);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			/* Re-read after the parent's prefix. */
			d->p = d->end;
			d->columns.active = false;
			return 1;
		}
	}
	if (d->opts.emit_blocks) {
		lt__record_t *b = queue_pseudo(d, LT__REC_BLOCK);
		if (b) {
			b->u.block.offset = at;
			b->u.block.stored_len = stored_len;
			b->u.block.raw_len = raw_len;
			b->u.block.codec = codec;
		}
	}
	return 1;

truncated:
	if (s->is_parent) {
		warn(d, "%s: parent trace is truncated at byte %llu, before the "
			"fork point %llu", s->path, (unsigned long long)at,
		     (unsigned long long)s->limit);
		return pop_source(d);
	}
	d->truncated = true;
	d->trunc_offset = at;
	return 0;
}

/* ---- public API ---------------------------------------------------- */

int lt__decoder_open_stream(lt__decoder_t **out, FILE *f, const char *name,
			    const char *dir, const lt__decode_opts_t *opts)
{
	lt__decoder_t *d = calloc(1, sizeof *d);
	*out = d;
	if (!d) {
		fclose(f);
		return -ENOMEM;
	}
	if (opts)
		d->opts = *opts;
	else
		d->opts.follow_parent = true;
	d->zctx = ZSTD_createDCtx();
	if (!d->zctx || lt__columns_init(&d->columns)) {
		fclose(f);
		return fail(d, -ENOMEM, "out of memory");
	}
	int rc = push_source(d, f, name, dir);
	if (rc)
		return fail(d, rc, "%s: %s", name, strerror(-rc));
	rc = read_header(d, &d->src[0]);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		d->truncated = true;
		d->trunc_offset = 0;
		d->state = LT__ST_END;
		return 0;
	}
	if (d->opts.read_ahead && sysconf(_SC_NPROCESSORS_ONLN) > 1)
		return ahead_start(d);
	return 0;
}

int lt__decoder_open(lt__decoder_t **out, const char *path,
		     const lt__decode_opts_t *opts)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		int err = -errno;
		lt__decoder_t *d = calloc(1, sizeof *d);
		*out = d;
		if (d)
			fail(d, err, "%s: %s", path, strerror(-err));
		return err;
	}
	return lt__decoder_open_stream(out, f, path, NULL, opts);
}


/* lt__decoder_next() of a decoder that reads its file itself. */
static int next_plain(lt__decoder_t *d, lt__record_t *rec)
{
	for (;;) {
		if (d->state == LT__ST_ERROR)
			return d->err;
		if (d->npending) {
			*rec = d->pending[d->pending_head];
			d->pending_head = (d->pending_head + 1) % LT__MAX_PENDING;
			d->npending--;
			return 1;
		}
		if (d->state == LT__ST_END)
			return 0;
		if (d->p < d->end) {
			int rc = decode_record(d, rec);
			if (rc != 0)
				return rc;
			continue;
		}
		if (d->columns.active) {
			int rc = column_record(d, rec);
			if (rc != 0)
				return rc;
			continue;
		}
		int rc = load_block(d);
		if (rc == 0)
			d->state = LT__ST_END;
		else if (rc < 0)
			return rc;
	}
}

int lt__decoder_next(lt__decoder_t *d, lt__record_t *rec)
{
	if (!d->ahead)
		return next_plain(d, rec);
	const lt__record_t *r;
	int rc = ahead_next(d, &r);
	if (rc == 1)
		*rec = *r;
	return rc;
}

int lt__decoder_next_ref(lt__decoder_t *d, const lt__record_t **rec)
{
	if (d->ahead)
		return ahead_next(d, rec);
	int rc = next_plain(d, &d->ref);
	*rec = &d->ref;
	return rc;
}

bool lt__decoder_truncated(const lt__decoder_t *d, uint64_t *offset)
{
	if (d->truncated && offset)
		*offset = d->trunc_offset;
	return d->truncated;
}

const char *lt__decoder_error(const lt__decoder_t *d)
{
	return d ? d->errbuf : "out of memory";
}

static const char *trace_path(const lt__decoder_t *d)
{
	if (d->ahead)
		return ahead_path(d);
	return d->nsrc ? d->src[0].path : "";
}

const char *lt__decoder_warnings(lt__decoder_t *d)
{
	if (d->columns.skipped && !d->skip_warned) {
		/* Added once, at the first look after the skips happened. */
		d->skip_warned = true;
		warn(d, "%s: %llu events refer to the missing parent trace and were skipped",
		     trace_path(d), (unsigned long long)d->columns.skipped);
	}
	return d->warnings ? d->warnings : "";
}

uint64_t lt__decoder_size(const lt__decoder_t *d)
{
	if (d->ahead)
		return ahead_size(d);
	return d->nsrc ? d->src[0].size : 0;
}

uint64_t lt__decoder_position(const lt__decoder_t *d)
{
	return d->consumed;
}

void lt__decoder_close(lt__decoder_t *d)
{
	if (!d)
		return;
	ahead_close(d);
	while (d->nsrc > 0)
		source_close(&d->src[--d->nsrc]);
	ZSTD_freeDCtx(d->zctx);
	lt__columns_destroy(&d->columns);
	free(d->stored);
	free(d->raw);
	free(d->epochs);
	free(d->argv);
	free(d->mods);
	free(d->warnings);
	free(d);
}

/* ---- read-ahead ------------------------------------------------------ */

/* The producer thread runs a plain decoder (inner) over the file and fills
 * batches of records, deep-copying whatever a record points to into the
 * batch's arena; the consumer (the thread that calls lt__decoder_next)
 * reads a batch in place and hands it back when it moves on. Batches go
 * round between two lists under one mutex: `full` (producer appends,
 * consumer takes the head) and `spare` (consumer returns, producer takes).
 * A batch belongs to exactly one side at a time, and every hand-over goes
 * through the mutex, whose unlock/lock pair orders the writes of one side
 * before the reads of the other: no atomics are needed, and the lock is
 * taken twice per LT__BATCH_RECORDS records. At most LT__BATCHES batches
 * exist, so memory stays bounded however long the trace is. */

struct lt__arena_chunk {
	struct lt__arena_chunk *next;
	size_t used, cap;
	max_align_t data[]; /* cap bytes */
};

/* A record in a batch is an lt__plain_t: the common ones, ALLOC, FREE and
 * REALLOC without an AFTER, travel in those 48 bytes (a record is 120):
 * the consumer reads a batch that the other core wrote, so its size is
 * what the hand-over costs. Any other record is in the batch's `full`
 * array, at the index its lt__plain_t holds in `size`. */
static inline bool packable(const lt__record_t *r)
{
	return (r->type == LT_REC_ALLOC || r->type == LT_REC_FREE || r->type == LT_REC_REALLOC) &&
	       !r->u.ev.after_thread && !r->u.ev.after_free && r->u.ev.stack_id <= UINT32_MAX;
}

static inline void pack(lt__plain_t *p, const lt__record_t *r)
{
	p->type = r->type;
	p->stack_id = (uint32_t)r->u.ev.stack_id;
	p->size = r->u.ev.size;
	p->addr = r->u.ev.addr;
	p->old_addr = r->u.ev.old_addr;
	p->thread = r->thread;
	p->epoch = r->epoch;
}

/* pack() of the record column_record() would make of op, which is an
 * ALLOC or FREE whose stack id fits, with no AFTER before it. */
static inline void pack_op(lt__plain_t *p, const lt__column_op_t *op, uint64_t thread,
			   uint64_t epoch)
{
	bool alloc = op->type == LT_REC_ALLOC;
	p->type = op->type;
	p->stack_id = alloc ? (uint32_t)op->stack_id : 0;
	p->size = alloc ? op->size : 0;
	p->addr = op->addr;
	p->old_addr = 0;
	p->thread = thread;
	p->epoch = epoch;
}

struct lt__batch {
	struct lt__batch *next;
	lt__plain_t recs[LT__BATCH_RECORDS];
	size_t n;
	lt__record_t *full;
	size_t nfull, full_cap;
	struct lt__arena_chunk *arena; /* newest first */
	/* Decoder state after the batch's last record. */
	int status; /* 1: more batches follow; 0: end of trace; < 0: error */
	uint64_t consumed, skipped;
	char *warnings; /* nwarnings bytes of lines added while filling it */
	size_t nwarnings;
	/* Only in the last batch (status != 1). */
	bool truncated;
	uint64_t trunc_offset;
	char errbuf[512];
};

struct lt__ahead {
	lt__decoder_t *inner; /* the producer's; the consumer never touches it */
	pthread_t thread;
	bool joined;
	char *path; /* the trace's path, for messages */
	uint64_t size;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* a list changed, or stop was set */
	/* Under lock. */
	struct lt__batch *full, *full_tail, *spare;
	int nbatches; /* allocated so far, at most LT__BATCHES */
	bool stop; /* the consumer closes: the producer must quit */

	/* Consumer only: the batch being read. */
	struct lt__batch *cur;
	size_t pos;
};

/* Returns n bytes of b's arena (aligned for any type), or NULL. */
static void *arena_alloc(struct lt__batch *b, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	struct lt__arena_chunk *c = b->arena;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > LT__BATCH_ARENA ? n : LT__BATCH_ARENA;
		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = b->arena;
		b->arena = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

/* Keeps the first chunk (the one reused most), frees the others. */
static void arena_reset(struct lt__batch *b)
{
	struct lt__arena_chunk *c = b->arena, *keep = NULL;
	while (c) {
		struct lt__arena_chunk *next = c->next;
		if (!next) {
			keep = c;
			keep->used = 0;
		} else {
			free(c);
		}
		c = next;
	}
	b->arena = keep;
}

static int copy_str(struct lt__batch *b, lt__str_t *s)
{
	if (!s->len)
		return 0;
	char *p = arena_alloc(b, s->len);
	if (!p)
		return -ENOMEM;
	memcpy(p, s->ptr, s->len);
	s->ptr = p;
	return 0;
}

static void *copy_mem(struct lt__batch *b, const void *src, size_t n)
{
	void *p = arena_alloc(b, n ? n : 1);
	if (p && n)
		memcpy(p, src, n);
	return p;
}

/* Copies what r points to (inside the inner decoder's block or buffers,
 * which the next record may overwrite) into b's arena and points r there.
 * Returns 0 or -ENOMEM. */
static int own_pointers(struct lt__batch *b, lt__record_t *r)
{
	switch (r->type) {
	case LT_REC_PROCESS: {
		lt__str_t *argv = copy_mem(b, r->u.process.argv,
					   (size_t)r->u.process.argc * sizeof *argv);
		if (!argv)
			return -ENOMEM;
		for (uint64_t i = 0; i < r->u.process.argc; i++)
			if (copy_str(b, &argv[i]))
				return -ENOMEM;
		r->u.process.argv = argv;
		return copy_str(b, &r->u.process.exe) ||
				       copy_str(b, &r->u.process.parent_trace)
			       ? -ENOMEM
			       : 0;
	}
	case LT_REC_STACK:
		r->u.stack.frames = copy_mem(b, r->u.stack.frames,
					     r->u.stack.depth * sizeof *r->u.stack.frames);
		return r->u.stack.frames ? 0 : -ENOMEM;
	case LT_REC_MODULES: {
		lt__module_rec_t *m = copy_mem(b, r->u.modules.modules,
					       (size_t)r->u.modules.count * sizeof *m);
		if (!m)
			return -ENOMEM;
		for (uint64_t i = 0; i < r->u.modules.count; i++) {
			if (copy_str(b, &m[i].path))
				return -ENOMEM;
			if (m[i].build_id_len) {
				m[i].build_id = copy_mem(b, m[i].build_id, m[i].build_id_len);
				if (!m[i].build_id)
					return -ENOMEM;
			}
		}
		r->u.modules.modules = m;
		return 0;
	}
	case LT_REC_PYCODE:
		return copy_str(b, &r->u.pycode.filename) || copy_str(b, &r->u.pycode.qualname) ||
				       copy_str(b, &r->u.pycode.linetable)
			       ? -ENOMEM
			       : 0;
	case LT_REC_PYFRAMES:
		r->u.pyframes.frames = copy_mem(b, r->u.pyframes.frames,
						r->u.pyframes.count * sizeof *r->u.pyframes.frames);
		return r->u.pyframes.frames ? 0 : -ENOMEM;
	case LT_REC_MARKER:
		return copy_str(b, &r->u.marker);
	case LT_REC_EXEC:
		return copy_str(b, &r->u.exec);
	case LT__REC_SEGMENT: /* the path is freed when its source closes */
		r->u.segment.path = copy_mem(b, r->u.segment.path,
					     strlen(r->u.segment.path) + 1);
		return r->u.segment.path ? 0 : -ENOMEM;
	default:
		return 0;
	}
}

/* Producer: takes a spare batch, waiting for one. NULL when told to
 * stop. */
static struct lt__batch *take_spare(struct lt__ahead *a)
{
	struct lt__batch *b = NULL;
	pthread_mutex_lock(&a->lock);
	while (!a->stop && !a->spare)
		pthread_cond_wait(&a->cond, &a->lock);
	if (!a->stop) {
		b = a->spare;
		a->spare = b->next;
	}
	pthread_mutex_unlock(&a->lock);
	return b;
}

/* Producer: the next free entry of b's full array (not yet counted in
 * nfull), or NULL when memory is short. */
static lt__record_t *full_slot(struct lt__batch *b)
{
	if (b->nfull == b->full_cap) {
		size_t cap = b->full_cap ? b->full_cap * 2 : 64;
		lt__record_t *f = realloc(b->full, cap * sizeof *f);
		if (!f)
			return NULL;
		b->full = f;
		b->full_cap = cap;
	}
	return &b->full[b->nfull];
}

/* Producer: hands over r, filled in at full_slot(b), as a full record. */
static void put_full(struct lt__batch *b, const lt__record_t *r)
{
	lt__plain_t *p = &b->recs[b->n++];
	p->type = -1;
	p->thread = r->thread;
	p->size = b->nfull++;
}

/* Producer: fills b from the inner decoder. warned: bytes of the inner
 * decoder's warnings shipped so far. */
static void fill_batch(struct lt__ahead *a, struct lt__batch *b, size_t *warned)
{
	lt__decoder_t *in = a->inner;
	b->n = 0;
	b->status = 1;
	arena_reset(b);
	b->nfull = 0;
	while (b->n < LT__BATCH_RECORDS) {
		if (in->state == LT__ST_OK && !in->npending && in->p >= in->end &&
		    in->columns.active && !in->after_free) {
			/* Most records are a columnar block's allocations and
			 * frees: straight from the columns into the batch, as
			 * column_record() would make them. */
			lt__column_op_t op;
			char why[160];
			int rc = lt__columns_next(&in->columns, &in->prev_addr, &op, why,
						  sizeof why);
			if (rc < 0) {
				b->status = column_failed(in, rc, why);
				break;
			}
			if (rc == 1 && op.type != LT_OP_RECORD &&
			    (op.type == LT_REC_FREE || op.stack_id <= UINT32_MAX)) {
				pack_op(&b->recs[b->n++], &op, in->cur_thread, in->cur_epoch);
				continue;
			}
			if (rc == 1 && op.type != LT_OP_RECORD) {
				/* A stack id too big to pack. */
				lt__record_t *r = full_slot(b);
				if (!r) {
					b->status = fail(in, -ENOMEM, "out of memory");
					break;
				}
				record_of_op(in, &op, r);
				put_full(b, r);
				continue;
			}
			if (rc == 1) { /* decode_record() reads it below */
				in->p = op.record;
				in->end = op.record + op.record_len;
			}
		}
		lt__record_t *r = full_slot(b);
		if (!r) {
			b->status = fail(in, -ENOMEM, "out of memory");
			break;
		}
		int rc = next_plain(in, r);
		if (rc == 1 && own_pointers(b, r))
			rc = fail(in, -ENOMEM, "out of memory");
		if (rc != 1) {
			b->status = rc;
			break;
		}
		if (packable(r))
			pack(&b->recs[b->n++], r);
		else
			put_full(b, r);
		/* Metadata can be big (module maps): ship it rather than
		 * growing the arena without end. */
		if (b->arena && b->arena->next)
			break;
	}
	b->consumed = in->consumed;
	b->skipped = in->columns.skipped;
	b->nwarnings = in->warnings_len - *warned;
	if (b->nwarnings) {
		char *w = realloc(b->warnings, b->nwarnings);
		if (w) {
			memcpy(w, in->warnings + *warned, b->nwarnings);
			b->warnings = w;
		} else {
			b->nwarnings = 0; /* as warn() does: lost, not fatal */
		}
		*warned = in->warnings_len;
	}
	if (b->status != 1) {
		b->truncated = in->truncated;
		b->trunc_offset = in->trunc_offset;
		memcpy(b->errbuf, in->errbuf, sizeof b->errbuf);
	}
}

static void *producer(void *arg)
{
	struct lt__ahead *a = arg;
	size_t warned = 0;
	struct lt__batch *b;
	while ((b = take_spare(a)) != NULL) {
		fill_batch(a, b, &warned);
		bool last = b->status != 1;
		pthread_mutex_lock(&a->lock);
		b->next = NULL;
		if (a->full_tail)
			a->full_tail->next = b;
		else
			a->full = b;
		a->full_tail = b;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->lock);
		if (last)
			break;
	}
	return NULL;
}

/* Consumer: hands the read-through current batch (if any) back to the
 * producer and makes the next one current, waiting for it when wait is
 * set. False when !wait and the producer has not handed one over yet. */
static bool next_batch(lt__decoder_t *d, bool wait)
{
	struct lt__ahead *a = d->ahead;
	struct lt__batch *b = a->cur;
	pthread_mutex_lock(&a->lock);
	if (!wait && !a->full) {
		pthread_mutex_unlock(&a->lock);
		return false;
	}
	if (b) { /* read through: back to the producer */
		b->next = a->spare;
		a->spare = b;
		a->cur = NULL;
		pthread_cond_broadcast(&a->cond);
	}
	while (!a->full)
		pthread_cond_wait(&a->cond, &a->lock);
	b = a->full;
	a->full = b->next;
	if (!a->full)
		a->full_tail = NULL;
	b->next = NULL; /* ours alone now */
	pthread_mutex_unlock(&a->lock);

	a->cur = b;
	a->pos = 0;
	d->consumed = b->consumed;
	d->columns.skipped = b->skipped;
	if (b->nwarnings)
		append_warnings(d, b->warnings, b->nwarnings);
	if (b->status != 1) {
		/* The producer returns right after handing this batch over. */
		pthread_join(a->thread, NULL);
		a->joined = true;
		d->truncated = b->truncated;
		d->trunc_offset = b->trunc_offset;
		memcpy(d->errbuf, b->errbuf, sizeof d->errbuf);
	}
	return true;
}

/* Consumer: the next record, from the current batch or the next one. */
static int ahead_next(lt__decoder_t *d, const lt__record_t **rec)
{
	struct lt__ahead *a = d->ahead;
	for (;;) {
		if (d->state == LT__ST_ERROR)
			return d->err;
		if (d->state == LT__ST_END)
			return 0;
		struct lt__batch *b = a->cur;
		if (b && a->pos < b->n) {
			const lt__plain_t *p = &b->recs[a->pos++];
			if (p->type < 0) {
				*rec = &b->full[p->size];
				return 1;
			}
			/* As next_plain() makes an ALLOC, FREE or REALLOC
			 * (d->ref is only ever one of these: its after fields
			 * stay 0 from ahead_start()). */
			lt__record_t *r = &d->ref;
			r->type = p->type;
			r->thread = p->thread;
			r->epoch = p->epoch;
			r->u.ev.stack_id = p->stack_id;
			r->u.ev.size = p->size;
			r->u.ev.addr = p->addr;
			r->u.ev.old_addr = p->old_addr;
			*rec = r;
			return 1;
		}
		if (b && b->status != 1) {
			/* The last batch is read: now the end or the error. */
			d->err = b->status < 0 ? b->status : 0;
			d->state = b->status < 0 ? LT__ST_ERROR : LT__ST_END;
			continue;
		}
		next_batch(d, true);
	}
}

size_t lt__decoder_peek(lt__decoder_t *d, const lt__plain_t **recs)
{
	struct lt__ahead *a = d->ahead;
	if (!a || !a->cur || d->state != LT__ST_OK)
		return 0;
	/* A batch read through is followed by the next one (reading would
	 * wait for it too): the position does not move. */
	if (a->pos >= a->cur->n) {
		if (a->cur->status != 1)
			return 0;
		next_batch(d, true);
	}
	*recs = &a->cur->recs[a->pos];
	return a->cur->n - a->pos;
}

size_t lt__decoder_peek_next(lt__decoder_t *d, const lt__plain_t **recs)
{
	struct lt__ahead *a = d->ahead;
	if (!a || !a->cur || a->cur->status != 1 || d->state != LT__ST_OK)
		return 0;
	/* The producer never touches a batch it has handed over, and the
	 * lock orders its writes to the batch before this read. It always
	 * has a batch to fill (the consumer holds only the current one), so
	 * waiting ends. */
	pthread_mutex_lock(&a->lock);
	while (!a->full)
		pthread_cond_wait(&a->cond, &a->lock);
	const struct lt__batch *b = a->full;
	pthread_mutex_unlock(&a->lock);
	*recs = b->recs;
	return b->n;
}

void lt__decoder_skip(lt__decoder_t *d, size_t n)
{
	d->ahead->pos += n;
}

static void free_batches(struct lt__batch *b)
{
	while (b) {
		struct lt__batch *next = b->next;
		arena_reset(b);
		free(b->arena);
		free(b->full);
		free(b->warnings);
		free(b);
		b = next;
	}
}

/* Moves the opened decoder d into a producer thread; d becomes the
 * consumer's end. Returns 0; when the thread or its batches cannot be
 * had, d simply stays a plain decoder. */
static int ahead_start(lt__decoder_t *d)
{
	struct lt__ahead *a = calloc(1, sizeof *a);
	lt__decoder_t *in = malloc(sizeof *in);
	char *path = strdup(d->src[0].path);
	if (!a || !in || !path)
		goto plain;
	for (int i = 0; i < LT__BATCHES; i++) {
		struct lt__batch *b = calloc(1, sizeof *b);
		if (!b)
			goto plain;
		b->next = a->spare;
		a->spare = b;
	}
	if (pthread_mutex_init(&a->lock, NULL))
		goto plain;
	if (pthread_cond_init(&a->cond, NULL)) {
		pthread_mutex_destroy(&a->lock);
		goto plain;
	}
	/* The inner decoder takes over everything d owned. */
	*in = *d;
	a->inner = in;
	a->path = path;
	a->size = d->nsrc ? d->src[0].size : 0;
	if (pthread_create(&a->thread, NULL, producer, a)) {
		pthread_cond_destroy(&a->cond);
		pthread_mutex_destroy(&a->lock);
		goto plain;
	}
	lt__decode_opts_t opts = d->opts;
	uint64_t consumed = d->consumed;
	memset(d, 0, sizeof *d);
	d->opts = opts;
	d->consumed = consumed;
	d->ahead = a;
	return 0;

plain:
	if (a)
		free_batches(a->spare);
	free(a);
	free(in);
	free(path);
	return 0;
}

static const char *ahead_path(const lt__decoder_t *d)
{
	return d->ahead->path;
}

static uint64_t ahead_size(const lt__decoder_t *d)
{
	return d->ahead->size;
}

/* Stops the producer (if it still runs) and frees the read-ahead. */
static void ahead_close(lt__decoder_t *d)
{
	struct lt__ahead *a = d->ahead;
	if (!a)
		return;
	if (!a->joined) {
		pthread_mutex_lock(&a->lock);
		a->stop = true;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free_batches(a->cur);
	free_batches(a->full);
	free_batches(a->spare);
	lt__decoder_close(a->inner);
	free(a->path);
	free(a);
	d->ahead = NULL;
}
