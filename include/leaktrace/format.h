/* SPDX-License-Identifier: MIT */
/* The leaktrace trace file format, version 1: the one definition shared by
 * the shim (encoder) and the analyzer (decoder). Everything about the bytes
 * on disk is documented here; codec.h holds the varint helpers both use. */
#ifndef LEAKTRACE_FORMAT_H
#define LEAKTRACE_FORMAT_H

#include <stdint.h>

/*
 * FILE LAYOUT
 *
 * All integers are little-endian. A file is a fixed 16-byte header followed
 * by blocks until end of file:
 *
 *   file header   magic "LTRACE\r\n" (8 bytes), u16 major, u16 minor,
 *                 u32 flags (reserved, 0)
 *   block         u32 magic "LTBK", u32 stored_len, u32 raw_len,
 *                 u8 codec (LT_CODEC_*), u8 reserved[3], u32 checksum,
 *                 then stored_len bytes of payload.
 *
 * checksum is a 32-bit hash of the stored payload bytes, enough to tell a
 * torn write from a good block: from version 1.1 lt_checksum_lanes()
 * (codec.h), in 1.0 files FNV-1a (lt_checksum()), which was too slow. A reader that finds a block whose header or payload is cut
 * off by end of file reports the trace as truncated at that block; a block
 * whose magic or checksum is wrong is corruption.
 *
 * The payload, after decompression (zstd, one frame per block, or raw), is
 * raw_len bytes holding a sequence of records. Every block is decodable on
 * its own: the delta state (current thread, previous address, ...) resets
 * to zero at the start of each block. That is what lets a forked child's
 * trace start from a byte prefix of its parent's file and what lets a
 * reader recover everything up to a truncation point. (The heap model of
 * columnar blocks is the one state that spans blocks; see below.)
 *
 * Readers must reject a major version they do not know (naming both
 * versions); a higher minor version only adds record types that have a
 * length prefix, which older readers skip.
 *
 * COLUMNAR BLOCKS (codec LT_CODEC_ZSTD_COLUMNS, or LT_CODEC_COLUMNS when
 * stored uncompressed) carry the same records in a form that compresses
 * about twice as well. The payload is six uv column lengths, then the six
 * columns in this order: OPS, SIZE, STACK, SLOT, ADDR, META. A reader
 * expands them back into the record stream described below (the
 * "canonical" stream, with the usual per-block delta state), op by op:
 *
 *   0x00..0x0f  ALLOC_HIT k: uv stack_id (STACK), uv size (SIZE); the
 *               address is the k-th most recently freed address of the
 *               size's class in the heap model (leaktrace/model.h)
 *   0x10  ALLOC_MISS: uv stack_id (STACK), uv size (SIZE), address field
 *         (ADDR, relative to the canonical stream's previous address)
 *   0x11  FREE_SLOT: uv slot (SLOT); the address of that model slot
 *   0x12  FREE_ADDR: address field (ADDR)
 *   0x13  RECORD: one canonical record, copied from META (any record type
 *         but ALLOC and FREE; REALLOC travels this way)
 *
 * The heap model starts empty at the start of the file (for a fork
 * child: at the start of its parent's file) and persists across blocks;
 * every allocation, free and realloc, however it was carried, updates it
 * in stream order (lt_model_alloc, lt_model_free; a realloc is the free
 * of the old address then the allocation of the new). Blocks therefore
 * decode in order from the start of the file; the shim writes the PROCESS
 * record in a block of its own, before any event.
 *
 * RECORDS
 *
 * A record is one type byte followed by fields. Integers are LEB128
 * varints ("uv"), zigzag varints for signed deltas ("sv"), strings are
 * uv length + bytes (no terminator), byte blobs likewise.
 *
 * Event records (hot, no length prefix, so cheap):
 *
 *   ALLOC     uv stack_id, uv size, sv addr_delta
 *   FREE      sv addr_delta
 *   REALLOC   uv stack_id, uv size, sv addr_delta (new), sv old_delta
 *             (old_delta is an address field like addr_delta, taken
 *             relative to the new address; afterwards prev = new address)
 *   ALLOC_Sn  (type LT_REC_ALLOC_SMALL + n, n < 64) as ALLOC with
 *             stack_id = n, saving one byte for the first 64 stacks
 *
 *   Addresses: "addr_delta" is the signed difference between this address
 *   and the previous address seen in the same block (any event, any
 *   thread), in bytes, shifted right by 4 when the address is a multiple
 *   of 16: the low bit of the zigzag payload says which (1 = shifted).
 *   That is, v = zz(delta) where delta = (addr - prev) >> 4, field =
 *   (v << 1) | 1 when addr and prev are both 16-aligned, else field =
 *   zz(addr - prev) << 1. old_delta is relative to the new address.
 *
 *   A REALLOC is one event: a free of old_addr immediately followed by an
 *   allocation at addr (counting conventions: valgrind's; see DESIGN.md).
 *   realloc(p, 0) that frees is written as FREE, realloc(NULL, n) as ALLOC.
 *   Failed calls are not written.
 *
 * Thread and ordering records (no length prefix):
 *
 *   THREAD    uv thread_index      following events belong to this thread
 *   EPOCH     uv epoch_delta       the current thread's epoch advances by
 *                                  delta. Like all delta state, every
 *                                  thread's epoch is 0 at the start of
 *                                  each block, so the first EPOCH of a
 *                                  thread in a block carries its absolute
 *                                  epoch.
 *
 *   Ordering: events of one thread are in program order. Across threads,
 *   each event carries the epoch its thread last read from a global counter
 *   that the writer advances at most every 100 microseconds; if event a
 *   happens-before event b then epoch(a) <= epoch(b). Within equal epochs
 *   the reader restores the order with the causal rule: a free is
 *   recorded before the real free and an allocation after the real
 *   allocation, so an address allocated by one thread while it is still
 *   live in the replay is waiting for a free in another thread's stream
 *   (and a free of an address not yet live waits for the allocation).
 *   Thread indexes are small integers assigned by the shim; they are never
 *   reused within one file.
 *
 *   AFTER     uv thread_index, uv free_number
 *             The current thread's next ALLOC or REALLOC (which follows in
 *             the same block) reuses the address that thread_index freed
 *             in its free_number-th FREE or REALLOC record (counting from
 *             1, both kinds, from the start of the trace, modulo 2^24), so
 *             it happened after that free. The shim writes it when the address was
 *             last freed by another thread and it still knows by whom
 *             (a small table of recent frees): that removes the one case
 *             epochs and the causal rule cannot order, the same address
 *             passing through three threads within one epoch.
 *
 * Metadata records (type byte, uv payload_len, payload; unknown types with
 * a length prefix are skipped by readers):
 *
 *   PROCESS   uv pid, uv ppid, uv start_unix_ns, str exe, uv argc,
 *             argc x str arg, uv flags (LT_PROC_*), str parent_trace,
 *             uv parent_prefix_len (bytes of parent_trace this trace
 *             continues; 0 = none), uv fork_seq
 *   STACK     uv stack_id, uv depth, then depth frames: the first as uv
 *             address, each next as sv delta from the previous frame.
 *             Frames are innermost first and every one is a return
 *             address (the shim drops its own frames), so symbolizers
 *             look each up at address - 1 to land inside the call. Written once, before the first event that uses
 *             it. stack_id 0 means "stack not recorded" (depth 0).
 *   MODULES   uv generation, uv count, count x module:
 *               str path, uv load_bias, uv lo, uv hi (address range of the
 *               PT_LOAD segments, absolute), blob build_id
 *             A complete module map that replaces the previous one.
 *   THREAD_START  uv thread_index, uv os_tid, uv creator_index+1 (0 =
 *             unknown)
 *   THREAD_END    uv thread_index
 *   TIME      uv epoch, uv ns_since_start   the writer's clock when it
 *             advanced the global epoch to this value
 *   MARKER    str name                      a named snapshot point
 *   RSS       uv ns_since_start, uv rss_bytes
 *   FORK      uv child_pid, uv fork_seq     the current thread forked
 *   EXEC      str path                      the current thread calls exec
 *   END       uv exit_kind (LT_EXIT_*), uv exit_status, uv events,
 *             uv allocs, uv frees, uv stacks, uv stack_overflows,
 *             uv ns_since_start, uv bytes_written[, uv lost_events]
 *             lost_events (added in 1.1, absent in older files = 0): events
 *             the shim could not record for want of memory (a new thread's
 *             ring under an address-space limit); the trace is incomplete
 *             when it is not 0.
 *             The process reached the end cleanly (or through _exit /
 *             abort, as exit_kind says). Late events (library destructors)
 *             may still follow it. exit_kind LT_EXIT_SIGNAL (added in 1.1;
 *             older readers name it unknown): a signal at its default
 *             action was ending the process, and the shim's handler wrote
 *             everything up to it; exit_status is 128 + the signal number,
 *             as a shell reports it. A process killed by a signal the shim
 *             cannot catch (SIGKILL) leaves no END.
 *
 *   PYCODE    uv code_key, uv linetable_format, str filename, str qualname,
 *             uv firstlineno, blob linetable
 *             A CPython code object (added in 1.1; written only when the
 *             traced program is a CPython interpreter the shim knows, see
 *             the README). code_key is the object's address plus
 *             (generation << 48): the shim counts a generation up when a
 *             code object at that address is freed, so a key names one
 *             code object for the whole trace. linetable is co_linetable's
 *             bytes, in the format linetable_format names (LT_PYCODE_311:
 *             CPython 3.11's location table, whose line deltas start from
 *             firstlineno). Written before any PYFRAMES that uses it.
 *   PYFRAMES  uv stack_id, uv count, count x (uv code_key, uv where)
 *             The Python frames being run when the allocations of
 *             stack_id were made, innermost first; it follows that
 *             stack's STACK record, which holds the native frames. where
 *             = (instruction << 1) | entry: instruction is the index, in
 *             16-bit code units from the start of the code, of the last
 *             instruction the frame started (the linetable maps its byte
 *             offset, 2 x instruction, to a line); entry is 1 for the
 *             first Python frame that one native call of the interpreter
 *             loop (_PyEval_EvalFrameDefault) ran, so a reader can put
 *             each native interpreter-loop frame's Python frames in its
 *             place: the innermost such native frame ran the Python
 *             frames up to and including the first with entry = 1, the
 *             next one the frames after it up to the next entry = 1, and
 *             so on. Two stacks with the same native frames and different
 *             Python frames have different stack ids.
 *
 *   MARKER, FORK, EXEC, THREAD_START and THREAD_END are positioned: they
 *   take effect at their place in the current thread's stream (the thread
 *   named by the last THREAD record), like events. PROCESS comes first in
 *   the first block. STACK and MODULES records always precede the events
 *   that need them; a STACK is symbolized against the newest MODULES
 *   record written before it, and a frame outside that map against the
 *   newest earlier map that holds it (several maps can be written in a
 *   row, the last one after a dlclose, before the stacks of the library
 *   that was briefly loaded). A fork child's trace (LT_PROC_FORK_CHILD)
 *   is read as: the first parent_prefix_len bytes of parent_trace (whole
 *   blocks, file header included), then this file's blocks.
 */

#define LT_FILE_MAGIC "LTRACE\r\n"
#define LT_FILE_MAGIC_LEN 8
#define LT_FILE_HEADER_LEN 16
#define LT_FORMAT_MAJOR 1
#define LT_FORMAT_MINOR 1 /* 1: lt_checksum_lanes block checksums */

#define LT_BLOCK_MAGIC 0x4b42544cu /* "LTBK" read as a little-endian u32 */
#define LT_BLOCK_HEADER_LEN 20
#define LT_BLOCK_MAX_RAW (8u << 20)    /* a reader refuses larger blocks */
#define LT_BLOCK_MAX_STORED (9u << 20) /* zstd bound of 8 MiB, rounded up */

enum lt_codec {
	LT_CODEC_RAW = 0,
	LT_CODEC_ZSTD = 1,
	LT_CODEC_ZSTD_COLUMNS = 2,
	LT_CODEC_COLUMNS = 3,
};

enum lt_column {
	LT_COL_OPS,
	LT_COL_SIZE,
	LT_COL_STACK,
	LT_COL_SLOT,
	LT_COL_ADDR,
	LT_COL_META,
	LT_COL_COUNT,
};

enum lt_column_op {
	LT_OP_ALLOC_HIT = 0x00, /* + k, k < LT_MODEL_MRU (16) */
	LT_OP_ALLOC_MISS = 0x10,
	LT_OP_FREE_SLOT = 0x11,
	LT_OP_FREE_ADDR = 0x12,
	LT_OP_RECORD = 0x13,
};

enum lt_record_type {
	LT_REC_ALLOC = 0x01,
	LT_REC_FREE = 0x02,
	LT_REC_REALLOC = 0x03,
	LT_REC_THREAD = 0x04,
	LT_REC_EPOCH = 0x05,
	LT_REC_AFTER = 0x06,

	/* Length-prefixed metadata records start here. */
	LT_REC_FIRST_META = 0x20,
	LT_REC_PROCESS = 0x20,
	LT_REC_STACK = 0x21,
	LT_REC_MODULES = 0x22,
	LT_REC_THREAD_START = 0x23,
	LT_REC_THREAD_END = 0x24,
	LT_REC_TIME = 0x25,
	LT_REC_MARKER = 0x26,
	LT_REC_RSS = 0x27,
	LT_REC_FORK = 0x28,
	LT_REC_EXEC = 0x29,
	LT_REC_END = 0x2a,
	LT_REC_PYCODE = 0x2b,
	LT_REC_PYFRAMES = 0x2c,
	LT_REC_LAST_META = 0x7f,

	/* 0x80..0xbf: ALLOC with stack_id = type - 0x80. */
	LT_REC_ALLOC_SMALL = 0x80,
	LT_REC_ALLOC_SMALL_COUNT = 64,
};

enum lt_exit_kind {
	LT_EXIT_NORMAL = 0, /* exit() or return from main */
	LT_EXIT_UNDERSCORE = 1, /* _exit() / _Exit() */
	LT_EXIT_ABORT = 2, /* abort() */
	LT_EXIT_EXEC = 3, /* execve() replaced the image */
	LT_EXIT_SIGNAL = 4, /* killed by a signal (exit_status = 128 + its number) */
};

enum lt_process_flags {
	LT_PROC_FORK_CHILD = 1u << 0, /* this trace continues parent_trace */
	LT_PROC_FP_UNWIND = 1u << 1, /* stacks from frame pointers */
	LT_PROC_NO_STACKS = 1u << 2, /* LEAKTRACE_DEPTH=0 */
};

#define LT_MAX_DEPTH 256 /* deepest stack a file may carry */
#define LT_MAX_PYDEPTH 256 /* most Python frames a PYFRAMES record may carry */
#define LT_PYCODE_311 0x030b /* PYCODE linetable_format: CPython 3.11's */

#endif /* LEAKTRACE_FORMAT_H */
