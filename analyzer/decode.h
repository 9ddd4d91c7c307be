/* SPDX-License-Identifier: MIT */
/* Streaming decoder of trace files (format.h): yields one record at a time
 * in file order, holding one block in memory, and follows a fork child's
 * trace into the prefix of its parent's file. */
#ifndef LT_ANALYZER_DECODE_H
#define LT_ANALYZER_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "leaktrace/format.h"

/* A string or blob inside the current block: not NUL-terminated, valid
 * until the next call to lt__decoder_next(). */
typedef struct lt__str_s {
	const char *ptr;
	size_t len;
} lt__str_t;

/* One Python frame of a PYFRAMES record (format.h): where =
 * (instruction << 1) | entry. */
typedef struct lt__pyframe_rec_s {
	uint64_t code_key;
	uint64_t where;
} lt__pyframe_rec_t;

typedef struct lt__module_rec_s {
	lt__str_t path;
	uint64_t load_bias;
	uint64_t lo, hi;
	const uint8_t *build_id;
	size_t build_id_len;
} lt__module_rec_t;

/* Record kinds: the format's record types (ALLOC_Sn reported as
 * LT_REC_ALLOC), plus pseudo records the decoder adds for --dump. */
enum lt__pseudo_record {
	LT__REC_BLOCK = 0x100, /* a block starts (only with emit_blocks) */
	LT__REC_SEGMENT = 0x101, /* reading switches to another file (fork) */
};

typedef struct lt__record_s {
	int type; /* enum lt_record_type or enum lt__pseudo_record */
	uint64_t thread; /* the current thread when the record was read */
	uint64_t epoch; /* that thread's epoch (absolute) */
	union {
		struct {
			uint64_t stack_id, size, addr, old_addr;
			/* ALLOC/REALLOC after an AFTER record: that thread's
			 * after_free-th FREE (mod 2^24) came first; 0 = none */
			uint64_t after_thread, after_free;
		} ev; /* ALLOC, FREE (addr only), REALLOC */
		struct {
			uint64_t thread, free_number;
		} after; /* AFTER */
		struct {
			uint64_t pid, ppid, start_unix_ns, argc, flags;
			uint64_t parent_prefix_len, fork_seq;
			lt__str_t exe, parent_trace;
			const lt__str_t *argv; /* argc entries */
		} process;
		struct {
			uint64_t stack_id;
			uint32_t depth;
			const uint64_t *frames; /* innermost first */
		} stack;
		struct {
			uint64_t generation, count;
			const lt__module_rec_t *modules;
		} modules;
		struct {
			uint64_t code_key, format, firstlineno;
			lt__str_t filename, qualname;
			lt__str_t linetable; /* bytes, in the format `format` names */
		} pycode;
		struct {
			uint64_t stack_id;
			uint32_t count; /* at most LT_MAX_PYDEPTH */
			const lt__pyframe_rec_t *frames; /* innermost first */
		} pyframes;
		struct {
			uint64_t thread, os_tid, creator_plus1;
		} thread_start;
		struct {
			uint64_t thread;
		} thread_end;
		struct {
			uint64_t epoch, ns;
		} time;
		lt__str_t marker;
		struct {
			uint64_t ns, bytes;
		} rss;
		struct {
			uint64_t child_pid, fork_seq;
		} fork;
		lt__str_t exec;
		struct {
			uint64_t exit_kind, exit_status, events, allocs, frees;
			uint64_t stacks, stack_overflows, ns, bytes_written;
			uint64_t lost_events; /* 0 when the record has no such field */
		} end;
		struct {
			uint64_t offset, stored_len, raw_len;
			unsigned codec;
		} block;
		struct {
			const char *path; /* NUL-terminated, decoder-owned */
			bool parent; /* true: a parent's prefix; false: back to the child */
			uint64_t prefix_len;
		} segment;
	} u;
} lt__record_t;

/* A record as the read-ahead hands it over (lt__decoder_peek): an ALLOC,
 * FREE or REALLOC without an AFTER and with a stack id below 2^32 (type
 * LT_REC_ALLOC, LT_REC_FREE or LT_REC_REALLOC; a FREE has stack_id and
 * size 0, only a REALLOC has old_addr), or type -1 for any other record,
 * of which only thread is set here: lt__decoder_next() yields the record
 * itself. */
typedef struct lt__plain_s {
	uint64_t addr, size, old_addr, thread, epoch;
	uint32_t stack_id;
	int32_t type;
} lt__plain_t;

typedef struct lt__decode_opts_s {
	bool emit_blocks; /* yield LT__REC_BLOCK before each block's records */
	bool follow_parent; /* read a fork child's parent prefix (default on) */
	/* Decode in a second thread, which hands records over in batches
	 * while this one consumes them (only when more than one CPU is
	 * online). The records and every accessor stay the same; the only
	 * visible difference is that a corrupt block may be reported a few
	 * thousand records later than without. */
	bool read_ahead;
} lt__decode_opts_t;

typedef struct lt__decoder_s lt__decoder_t;

/* Opens the trace at path and checks its header. Returns 0 and sets *out,
 * or a negative errno: -ENOENT etc. for I/O, -EPROTO for a foreign file or
 * an unknown major version (the message from lt__decoder_error() names
 * both versions). On error *out is still set when it is non-NULL so the
 * message can be read; close it with lt__decoder_close(). */
int lt__decoder_open(lt__decoder_t **out, const char *path,
		     const lt__decode_opts_t *opts);

/* Like lt__decoder_open() on an already open stream (fmemopen() in tests
 * and the fuzzer). The decoder takes ownership of f. dir is where a fork
 * child's relative parent path is resolved ("." when NULL). */
int lt__decoder_open_stream(lt__decoder_t **out, FILE *f, const char *name,
			    const char *dir, const lt__decode_opts_t *opts);

/* Reads the next record into *rec. Returns 1 when a record was read, 0 at
 * the end of the trace (complete or truncated: see lt__decoder_truncated),
 * or a negative errno (-EBADMSG for corruption, -EIO for read errors) with
 * a message in lt__decoder_error(). After an error or the end, further
 * calls return the same value. Pointers in *rec stay valid until the next
 * call. */
int lt__decoder_next(lt__decoder_t *d, lt__record_t *rec);

/* Like lt__decoder_next(), without the copy: on 1, *rec points at the
 * record, valid (with everything it points to) until the next call. */
int lt__decoder_next_ref(lt__decoder_t *d, const lt__record_t **rec);

/* The records of the read-ahead's current batch not yet handed out, from
 * the next one on: sets *recs and returns how many there are (0 without
 * read-ahead or at the end; a batch used up is followed by the next one,
 * waiting for it as reading would). They stay valid until the next call
 * that reads, skips or peeks. Records with type -1 must be read with
 * lt__decoder_next(); the others may be taken in place and passed with
 * lt__decoder_skip(). */
size_t lt__decoder_peek(lt__decoder_t *d, const lt__plain_t **recs);

/* The records of the read-ahead batch after the one lt__decoder_peek()
 * shows, waiting for it to be decoded; 0 when there is none (the trace
 * ends, or no read-ahead). A look further ahead, valid until the next call
 * that reads, skips or peeks: they follow the last record peek showed. */
size_t lt__decoder_peek_next(lt__decoder_t *d, const lt__plain_t **recs);

/* Passes the next n records, which lt__decoder_peek() showed and which all
 * have type >= 0. */
void lt__decoder_skip(lt__decoder_t *d, size_t n);

/* True when the trace stopped short (a block or the header cut by end of
 * file); *offset is then the byte where the readable trace ends. */
bool lt__decoder_truncated(const lt__decoder_t *d, uint64_t *offset);

/* The error message of the last failure, or "" when there was none. */
const char *lt__decoder_error(const lt__decoder_t *d);

/* Warnings collected so far (missing parent file, ...), one per line, or
 * "" when there are none. */
const char *lt__decoder_warnings(lt__decoder_t *d);

/* Bytes of input consumed so far (for progress) and the file size (0 when
 * unknown). */
uint64_t lt__decoder_position(const lt__decoder_t *d);
uint64_t lt__decoder_size(const lt__decoder_t *d);

void lt__decoder_close(lt__decoder_t *d);

#endif /* LT_ANALYZER_DECODE_H */
