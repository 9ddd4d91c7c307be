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
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "leaktrace/codec.h"
#include "columns.h"

#define LT__MAX_SOURCES 8 /* fork nesting we follow: parent, grandparent... */
#define LT__MAX_PENDING 4 /* pseudo records queued by one block load */

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
};

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
	char *w = realloc(d->warnings, d->warnings_len + (size_t)n + 1);
	if (!w)
		return; /* a lost warning is not worth failing the analysis */
	memcpy(w + d->warnings_len, line, (size_t)n);
	d->warnings_len += (size_t)n;
	w[d->warnings_len] = '\0';
	d->warnings = w;
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
		return get_uvs(&p, end, a, 9);
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
	if (!d->opts.follow_parent || d->p >= d->end || *d->p != LT_REC_PROCESS)
		return 0;
	const uint8_t *p = d->p + 1;
	uint64_t len;
	if (lt_get_uv(&p, d->end, &len) || len > (uint64_t)(d->end - p))
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
		const uint8_t *canon;
		size_t canon_len;
		char why[160];
		int rc = lt__columns_expand(&d->columns, d->raw, raw_len, &canon,
					    &canon_len, why, sizeof why);
		if (rc == -ENOMEM)
			return fail(d, rc, "out of memory");
		if (rc)
			return fail(d, rc, "%s: corrupt trace: %s (block at byte %llu)",
				    s->path, why, (unsigned long long)at);
		d->block_start = d->p = canon;
		d->end = canon + canon_len;
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
			d->p = d->end; /* re-read after the parent's prefix */
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
	}
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

int lt__decoder_next(lt__decoder_t *d, lt__record_t *rec)
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
		int rc = load_block(d);
		if (rc == 0)
			d->state = LT__ST_END;
		else if (rc < 0)
			return rc;
	}
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

const char *lt__decoder_warnings(lt__decoder_t *d)
{
	if (d->columns.skipped && !d->skip_warned) {
		/* Added once, at the first look after the skips happened. */
		d->skip_warned = true;
		warn(d, "%s: %llu events refer to the missing parent trace and were skipped",
		     d->nsrc ? d->src[0].path : "", (unsigned long long)d->columns.skipped);
	}
	return d->warnings ? d->warnings : "";
}

uint64_t lt__decoder_position(const lt__decoder_t *d)
{
	return d->consumed;
}

uint64_t lt__decoder_size(const lt__decoder_t *d)
{
	return d->nsrc ? d->src[0].size : 0;
}

void lt__decoder_close(lt__decoder_t *d)
{
	if (!d)
		return;
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
