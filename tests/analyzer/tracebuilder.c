/* SPDX-License-Identifier: MIT */
/* Test-only trace writer (see tracebuilder.h): mirrors the decoder's delta
 * state so that hand-built event sequences become valid trace files. */
#define _GNU_SOURCE
#include "tracebuilder.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "leaktrace/codec.h"

#define TB_MAX_THREADS 4096

struct tb_s {
	uint8_t *file;
	size_t file_len, file_cap;
	uint8_t *blk;
	size_t blk_len, blk_cap;
	uint64_t cur_thread, prev_addr;
	uint64_t epochs[TB_MAX_THREADS];
	uint64_t evs_in_block;
	unsigned minor; /* of the file header: picks the block checksum */
};

static void grow(uint8_t **b, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	*b = realloc(*b, n);
	if (!*b)
		abort();
	*cap = n;
}

static void put_file(tb_t *tb, const void *p, size_t n)
{
	grow(&tb->file, &tb->file_cap, tb->file_len + n);
	memcpy(tb->file + tb->file_len, p, n);
	tb->file_len += n;
}

void tb_raw(tb_t *tb, const void *p, size_t n)
{
	if (n == 0) /* p may be NULL then (an empty build-id) */
		return;
	grow(&tb->blk, &tb->blk_cap, tb->blk_len + n);
	memcpy(tb->blk + tb->blk_len, p, n);
	tb->blk_len += n;
}

static void uv(tb_t *tb, uint64_t v)
{
	uint8_t b[LT_UV_MAX];
	tb_raw(tb, b, (size_t)(lt_put_uv(b, v) - b));
}

static void byte(tb_t *tb, uint8_t v)
{
	tb_raw(tb, &v, 1);
}

static void reset_block(tb_t *tb)
{
	tb->blk_len = 0;
	tb->cur_thread = 0;
	tb->prev_addr = 0;
	memset(tb->epochs, 0, sizeof tb->epochs);
}

tb_t *tb_new_version(unsigned major, unsigned minor)
{
	tb_t *tb = calloc(1, sizeof *tb);
	if (!tb)
		abort();
	uint8_t h[LT_FILE_HEADER_LEN] = {0};
	memcpy(h, LT_FILE_MAGIC, LT_FILE_MAGIC_LEN);
	h[8] = (uint8_t)major;
	h[9] = (uint8_t)(major >> 8);
	h[10] = (uint8_t)minor;
	h[11] = (uint8_t)(minor >> 8);
	tb->minor = minor;
	put_file(tb, h, sizeof h);
	reset_block(tb);
	return tb;
}

tb_t *tb_new(void)
{
	return tb_new_version(LT_FORMAT_MAJOR, LT_FORMAT_MINOR);
}

void tb_free(tb_t *tb)
{
	if (!tb)
		return;
	free(tb->file);
	free(tb->blk);
	free(tb);
}

void tb_at(tb_t *tb, uint64_t thread, uint64_t epoch)
{
	if (thread >= TB_MAX_THREADS)
		abort();
	if (thread != tb->cur_thread) {
		byte(tb, LT_REC_THREAD);
		uv(tb, thread);
		tb->cur_thread = thread;
	}
	if (epoch != tb->epochs[thread]) {
		if (epoch < tb->epochs[thread])
			abort(); /* epochs never go back within a thread */
		byte(tb, LT_REC_EPOCH);
		uv(tb, epoch - tb->epochs[thread]);
		tb->epochs[thread] = epoch;
	}
}

static void addr_field(tb_t *tb, uint64_t addr, uint64_t prev)
{
	uv(tb, lt_addr_field(addr, prev));
}

void tb_alloc(tb_t *tb, uint64_t stack, uint64_t size, uint64_t addr)
{
	if (stack < LT_REC_ALLOC_SMALL_COUNT) {
		byte(tb, (uint8_t)(LT_REC_ALLOC_SMALL + stack));
	} else {
		byte(tb, LT_REC_ALLOC);
		uv(tb, stack);
	}
	uv(tb, size);
	addr_field(tb, addr, tb->prev_addr);
	tb->prev_addr = addr;
}

void tb_free_ev(tb_t *tb, uint64_t addr)
{
	byte(tb, LT_REC_FREE);
	addr_field(tb, addr, tb->prev_addr);
	tb->prev_addr = addr;
}

void tb_realloc(tb_t *tb, uint64_t stack, uint64_t size, uint64_t addr, uint64_t old)
{
	byte(tb, LT_REC_REALLOC);
	uv(tb, stack);
	uv(tb, size);
	addr_field(tb, addr, tb->prev_addr);
	addr_field(tb, old, addr);
	tb->prev_addr = addr;
}

void tb_after(tb_t *tb, uint64_t thread, uint64_t free_number)
{
	byte(tb, LT_REC_AFTER);
	uv(tb, thread);
	uv(tb, free_number);
}

/* Metadata: type, uv length, payload built in a scratch builder. */
static tb_t *meta_begin(void)
{
	tb_t *m = calloc(1, sizeof *m);
	if (!m)
		abort();
	return m;
}

static void meta_end(tb_t *tb, uint8_t type, tb_t *m)
{
	byte(tb, type);
	uv(tb, m->blk_len);
	tb_raw(tb, m->blk, m->blk_len);
	tb_free(m);
}

static void str(tb_t *m, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	uv(m, n);
	tb_raw(m, s, n);
}

void tb_stack(tb_t *tb, uint64_t id, unsigned depth, const uint64_t *frames)
{
	tb_t *m = meta_begin();
	uv(m, id);
	uv(m, depth);
	for (unsigned i = 0; i < depth; i++) {
		if (i == 0) {
			uv(m, frames[0]);
		} else {
			uint8_t b[LT_UV_MAX];
			tb_raw(m, b, (size_t)(lt_put_sv(b, (int64_t)(frames[i] - frames[i - 1])) - b));
		}
	}
	meta_end(tb, LT_REC_STACK, m);
}

void tb_process(tb_t *tb, uint64_t pid, uint64_t ppid, const char *exe,
		int argc, const char *const *argv, uint64_t flags,
		const char *parent, uint64_t prefix, uint64_t fork_seq)
{
	tb_t *m = meta_begin();
	uv(m, pid);
	uv(m, ppid);
	uv(m, 1700000000000000000ull);
	str(m, exe);
	uv(m, (uint64_t)argc);
	for (int i = 0; i < argc; i++)
		str(m, argv[i]);
	uv(m, flags);
	str(m, parent);
	uv(m, prefix);
	uv(m, fork_seq);
	meta_end(tb, LT_REC_PROCESS, m);
}

void tb_module(tb_t *tb, uint64_t gen, const char *path, uint64_t bias,
	       uint64_t lo, uint64_t hi, const uint8_t *build_id, size_t bid_len)
{
	tb_t *m = meta_begin();
	uv(m, gen);
	uv(m, 1);
	str(m, path);
	uv(m, bias);
	uv(m, lo);
	uv(m, hi);
	uv(m, bid_len);
	tb_raw(m, build_id, bid_len);
	meta_end(tb, LT_REC_MODULES, m);
}

void tb_pycode(tb_t *tb, uint64_t code_key, uint64_t format, const char *filename,
	       const char *qualname, uint64_t firstlineno, const uint8_t *linetable,
	       size_t linetable_len)
{
	tb_t *m = meta_begin();
	uv(m, code_key);
	uv(m, format);
	str(m, filename);
	str(m, qualname);
	uv(m, firstlineno);
	uv(m, linetable_len);
	tb_raw(m, linetable, linetable_len);
	meta_end(tb, LT_REC_PYCODE, m);
}

void tb_pyframes(tb_t *tb, uint64_t stack, unsigned count, const uint64_t *code_keys,
		 const uint64_t *wheres)
{
	tb_t *m = meta_begin();
	uv(m, stack);
	uv(m, count);
	for (unsigned i = 0; i < count; i++) {
		uv(m, code_keys[i]);
		uv(m, wheres[i]);
	}
	meta_end(tb, LT_REC_PYFRAMES, m);
}

static void meta_uvs(tb_t *tb, uint8_t type, int n, const uint64_t *v)
{
	tb_t *m = meta_begin();
	for (int i = 0; i < n; i++)
		uv(m, v[i]);
	meta_end(tb, type, m);
}

static void meta_str(tb_t *tb, uint8_t type, const char *s)
{
	tb_t *m = meta_begin();
	str(m, s);
	meta_end(tb, type, m);
}

void tb_time(tb_t *tb, uint64_t epoch, uint64_t ns)
{
	meta_uvs(tb, LT_REC_TIME, 2, (uint64_t[]){epoch, ns});
}

void tb_marker(tb_t *tb, const char *name)
{
	meta_str(tb, LT_REC_MARKER, name);
}

void tb_thread_start(tb_t *tb, uint64_t thread, uint64_t tid, uint64_t creator_plus1)
{
	meta_uvs(tb, LT_REC_THREAD_START, 3, (uint64_t[]){thread, tid, creator_plus1});
}

void tb_thread_end(tb_t *tb, uint64_t thread)
{
	meta_uvs(tb, LT_REC_THREAD_END, 1, (uint64_t[]){thread});
}

void tb_fork(tb_t *tb, uint64_t child_pid, uint64_t seq)
{
	meta_uvs(tb, LT_REC_FORK, 2, (uint64_t[]){child_pid, seq});
}

void tb_exec(tb_t *tb, const char *path)
{
	meta_str(tb, LT_REC_EXEC, path);
}

void tb_rss(tb_t *tb, uint64_t ns, uint64_t bytes)
{
	meta_uvs(tb, LT_REC_RSS, 2, (uint64_t[]){ns, bytes});
}

void tb_end(tb_t *tb, uint64_t kind, uint64_t status)
{
	meta_uvs(tb, LT_REC_END, 9, (uint64_t[]){kind, status, 0, 0, 0, 0, 0, 1000000, 0});
}

void tb_flush(tb_t *tb, int codec)
{
	uint8_t *stored = tb->blk;
	size_t stored_len = tb->blk_len;
	uint8_t *z = NULL;
	if (codec == LT_CODEC_ZSTD) {
		size_t cap = ZSTD_compressBound(tb->blk_len);
		z = malloc(cap ? cap : 1);
		if (!z)
			abort();
		stored_len = ZSTD_compress(z, cap, tb->blk, tb->blk_len, 1);
		if (ZSTD_isError(stored_len))
			abort();
		stored = z;
	}
	uint8_t h[LT_BLOCK_HEADER_LEN] = {0};
	lt_put_u32le(h, LT_BLOCK_MAGIC);
	lt_put_u32le(h + 4, (uint32_t)stored_len);
	lt_put_u32le(h + 8, (uint32_t)tb->blk_len);
	h[12] = (uint8_t)codec;
	lt_put_u32le(h + 16, lt_block_checksum(tb->minor, stored, stored_len));
	put_file(tb, h, sizeof h);
	put_file(tb, stored, stored_len);
	free(z);
	reset_block(tb);
}

const uint8_t *tb_data(const tb_t *tb, size_t *len)
{
	*len = tb->file_len;
	return tb->file;
}

int tb_write(const tb_t *tb, const char *path)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t n = fwrite(tb->file, 1, tb->file_len, f);
	return (fclose(f) == 0 && n == tb->file_len) ? 0 : -1;
}

FILE *tb_open(const tb_t *tb, size_t len)
{
	if (len > tb->file_len)
		len = tb->file_len;
	/* fmemopen on a private copy, freed with the stream: open_memstream
	 * cannot be read, so write the bytes to a temporary file instead. */
	FILE *f = tmpfile();
	if (!f)
		abort();
	if (len && fwrite(tb->file, 1, len, f) != len)
		abort();
	rewind(f);
	return f;
}
