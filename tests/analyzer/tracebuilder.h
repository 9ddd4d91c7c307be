/* SPDX-License-Identifier: MIT */
/* Test-only trace writer: builds valid (or deliberately broken) trace files
 * in memory with format.h and codec.h, so analyzer tests need no shim. */
#ifndef LT_TESTS_TRACEBUILDER_H
#define LT_TESTS_TRACEBUILDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct tb_s tb_t;

/* A new trace with a version 1.0 file header. Aborts on out-of-memory. */
tb_t *tb_new(void);
/* A new trace whose header claims major.minor. */
tb_t *tb_new_version(unsigned major, unsigned minor);
void tb_free(tb_t *tb);

/* Events go to the open block; tb_flush() closes it (codec: LT_CODEC_*).
 * tb_at() makes `thread` current at absolute `epoch`, writing THREAD and
 * EPOCH records as needed (epochs are per block, like the decoder's). */
void tb_at(tb_t *tb, uint64_t thread, uint64_t epoch);
void tb_alloc(tb_t *tb, uint64_t stack, uint64_t size, uint64_t addr);
void tb_free_ev(tb_t *tb, uint64_t addr);
void tb_realloc(tb_t *tb, uint64_t stack, uint64_t size, uint64_t addr, uint64_t old);
/* AFTER: the next allocation of the current thread reuses the address
 * that thread freed in its free_number-th free (format.h). */
void tb_after(tb_t *tb, uint64_t thread, uint64_t free_number);
void tb_stack(tb_t *tb, uint64_t id, unsigned depth, const uint64_t *frames);
void tb_process(tb_t *tb, uint64_t pid, uint64_t ppid, const char *exe,
		int argc, const char *const *argv, uint64_t flags,
		const char *parent, uint64_t prefix, uint64_t fork_seq);
void tb_module(tb_t *tb, uint64_t gen, const char *path, uint64_t bias,
	       uint64_t lo, uint64_t hi, const uint8_t *build_id, size_t bid_len);
/* PYCODE: a CPython code object (format LT_PYCODE_311 or any other). */
void tb_pycode(tb_t *tb, uint64_t code_key, uint64_t format, const char *filename,
	       const char *qualname, uint64_t firstlineno, const uint8_t *linetable,
	       size_t linetable_len);
/* PYFRAMES: the Python frames of stack `stack`, innermost first, each a
 * code key and where = (instruction << 1) | entry (TB_WHERE). */
void tb_pyframes(tb_t *tb, uint64_t stack, unsigned count, const uint64_t *code_keys,
		 const uint64_t *wheres);
#define TB_WHERE(instruction, entry) (((uint64_t)(instruction) << 1) | ((entry) ? 1u : 0u))
void tb_time(tb_t *tb, uint64_t epoch, uint64_t ns);
void tb_marker(tb_t *tb, const char *name);
void tb_thread_start(tb_t *tb, uint64_t thread, uint64_t tid, uint64_t creator_plus1);
void tb_thread_end(tb_t *tb, uint64_t thread);
void tb_fork(tb_t *tb, uint64_t child_pid, uint64_t seq);
void tb_exec(tb_t *tb, const char *path);
void tb_rss(tb_t *tb, uint64_t ns, uint64_t bytes);
void tb_end(tb_t *tb, uint64_t kind, uint64_t status);
/* Appends raw bytes to the open block (for corrupt-record tests). */
void tb_raw(tb_t *tb, const void *bytes, size_t n);
void tb_flush(tb_t *tb, int codec);

/* The file bytes so far (closed blocks only). */
const uint8_t *tb_data(const tb_t *tb, size_t *len);
/* Writes the file bytes to path; returns 0 or -1. */
int tb_write(const tb_t *tb, const char *path);
/* A read-only stream over a copy of the file bytes, first `len` of them
 * (or all when len is SIZE_MAX). */
FILE *tb_open(const tb_t *tb, size_t len);

#endif
