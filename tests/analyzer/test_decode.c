/* SPDX-License-Identifier: MIT */
/* Decoder tests: records round-trip through the test trace builder, and
 * truncated, corrupt, foreign and empty inputs fail the way format.h says. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decode.h"
#include "tracebuilder.h"
#include "leaktrace/codec.h"

static lt__decoder_t *open_tb(const tb_t *tb, size_t len)
{
	lt__decoder_t *d;
	lt__decode_opts_t o = {.follow_parent = true};
	int rc = lt__decoder_open_stream(&d, tb_open(tb, len), "mem", ".", &o);
	cr_assert_eq(rc, 0, "open: %s", lt__decoder_error(d));
	return d;
}

/* Reads all records; returns the final status and counts the records. */
static int drain(lt__decoder_t *d, int *count)
{
	lt__record_t r;
	int rc;
	*count = 0;
	while ((rc = lt__decoder_next(d, &r)) == 1)
		(*count)++;
	return rc;
}

static tb_t *sample(int codec)
{
	tb_t *tb = tb_new();
	const char *argv[] = {"./app", "x y"};
	tb_process(tb, 42, 1, "/bin/app", 2, argv, 0, "", 0, 0);
	uint64_t frames[] = {0x401000, 0x401100, 0x7f0000001000};
	tb_stack(tb, 1, 3, frames);
	tb_at(tb, 0, 0);
	tb_alloc(tb, 1, 100, 0x10000);
	tb_at(tb, 1, 3);
	tb_alloc(tb, 70, 8, 0x10013); /* unaligned, large stack id */
	tb_realloc(tb, 1, 200, 0x20000, 0x10000);
	tb_at(tb, 0, 5);
	tb_free_ev(tb, 0x10013);
	tb_flush(tb, codec);
	tb_at(tb, 1, 7); /* new block: delta state starts over */
	tb_free_ev(tb, 0x20000);
	tb_marker(tb, "after");
	tb_end(tb, LT_EXIT_NORMAL, 0);
	tb_flush(tb, codec);
	return tb;
}

static void check_sample(int codec)
{
	tb_t *tb = sample(codec);
	lt__decoder_t *d = open_tb(tb, SIZE_MAX);
	lt__record_t r;
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_PROCESS);
	cr_assert_eq(r.u.process.pid, 42);
	cr_assert_eq(r.u.process.argc, 2);
	cr_assert_eq(r.u.process.argv[1].len, 3);
	cr_assert_eq(memcmp(r.u.process.argv[1].ptr, "x y", 3), 0);
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_STACK);
	cr_assert_eq(r.u.stack.depth, 3);
	cr_assert_eq(r.u.stack.frames[2], 0x7f0000001000);
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_ALLOC);
	cr_assert_eq(r.u.ev.addr, 0x10000);
	cr_assert_eq(r.u.ev.size, 100);
	cr_assert_eq(r.thread, 0);
	/* THREAD 1, EPOCH +3 */
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_THREAD);
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_EPOCH);
	cr_assert_eq(r.epoch, 3);
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_ALLOC);
	cr_assert_eq(r.u.ev.stack_id, 70);
	cr_assert_eq(r.u.ev.addr, 0x10013);
	cr_assert_eq(r.thread, 1);
	cr_assert_eq(r.epoch, 3);
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_REALLOC);
	cr_assert_eq(r.u.ev.addr, 0x20000);
	cr_assert_eq(r.u.ev.old_addr, 0x10000);
	cr_assert_eq(r.u.ev.size, 200);
	cr_assert_eq(lt__decoder_next(d, &r), 1); /* THREAD 0 */
	cr_assert_eq(lt__decoder_next(d, &r), 1); /* EPOCH 5 */
	cr_assert_eq(r.epoch, 5);
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_FREE);
	cr_assert_eq(r.u.ev.addr, 0x10013);
	cr_assert_eq(r.epoch, 5);
	cr_assert_eq(lt__decoder_next(d, &r), 1); /* THREAD 1 */
	cr_assert_eq(lt__decoder_next(d, &r), 1); /* EPOCH 7 (absolute) */
	cr_assert_eq(r.epoch, 7);
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_FREE);
	cr_assert_eq(r.u.ev.addr, 0x20000);
	cr_assert_eq(r.thread, 1);
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_MARKER);
	cr_assert_eq(r.thread, 1);
	cr_assert_eq(lt__decoder_next(d, &r), 1);
	cr_assert_eq(r.type, LT_REC_END);
	cr_assert_eq(lt__decoder_next(d, &r), 0);
	cr_assert_not(lt__decoder_truncated(d, NULL));
	lt__decoder_close(d);
	tb_free(tb);
}

Test(decode, round_trip_raw) { check_sample(LT_CODEC_RAW); }
Test(decode, round_trip_zstd) { check_sample(LT_CODEC_ZSTD); }

Test(decode, truncated_in_every_position_stops_cleanly)
{
	tb_t *tb = sample(LT_CODEC_ZSTD);
	size_t len;
	tb_data(tb, &len);
	const uint8_t *data = tb_data(tb, &len);
	size_t first_end = LT_FILE_HEADER_LEN + LT_BLOCK_HEADER_LEN +
			   lt_get_u32le(data + LT_FILE_HEADER_LEN + 4);
	for (size_t cut = 0; cut < len; cut++) {
		lt__decoder_t *d = open_tb(tb, cut);
		int n;
		cr_assert_eq(drain(d, &n), 0, "cut %zu: %s", cut, lt__decoder_error(d));
		uint64_t at = 99;
		if (cut == LT_FILE_HEADER_LEN || cut == first_end) {
			/* A cut on a block boundary looks like a complete trace. */
			cr_assert_not(lt__decoder_truncated(d, &at), "cut %zu", cut);
			lt__decoder_close(d);
			continue;
		}
		cr_assert(lt__decoder_truncated(d, &at), "cut %zu", cut);
		cr_assert_leq(at, cut);
		lt__decoder_close(d);
	}
	tb_free(tb);
}

Test(decode, zero_length_is_truncated_at_zero)
{
	tb_t *tb = tb_new();
	lt__decoder_t *d = open_tb(tb, 0);
	int n;
	uint64_t at = 1;
	cr_assert_eq(drain(d, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert(lt__decoder_truncated(d, &at));
	cr_assert_eq(at, 0);
	lt__decoder_close(d);
	tb_free(tb);
}

Test(decode, header_only_is_complete_and_empty)
{
	tb_t *tb = tb_new();
	lt__decoder_t *d = open_tb(tb, SIZE_MAX);
	int n;
	cr_assert_eq(drain(d, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_not(lt__decoder_truncated(d, NULL));
	lt__decoder_close(d);
	tb_free(tb);
}

Test(decode, unknown_major_names_both_versions)
{
	tb_t *tb = tb_new_version(2, 3);
	lt__decoder_t *d;
	int rc = lt__decoder_open_stream(&d, tb_open(tb, SIZE_MAX), "mem", ".", NULL);
	cr_assert_eq(rc, -EPROTO);
	cr_assert(strstr(lt__decoder_error(d), "2.3"), "%s", lt__decoder_error(d));
	cr_assert(strstr(lt__decoder_error(d), "version 1"), "%s", lt__decoder_error(d));
	lt__decoder_close(d);
	tb_free(tb);
}

Test(decode, higher_minor_is_read)
{
	tb_t *tb = tb_new_version(1, 7);
	tb_alloc(tb, 1, 8, 0x1000);
	tb_flush(tb, LT_CODEC_RAW);
	lt__decoder_t *d = open_tb(tb, SIZE_MAX);
	int n;
	cr_assert_eq(drain(d, &n), 0);
	cr_assert_eq(n, 1);
	lt__decoder_close(d);
	tb_free(tb);
}

Test(decode, garbage_is_foreign)
{
	FILE *f = tmpfile();
	fputs("#!/bin/sh\necho hello world\n", f);
	rewind(f);
	lt__decoder_t *d;
	cr_assert_eq(lt__decoder_open_stream(&d, f, "mem", ".", NULL), -EPROTO);
	cr_assert(strstr(lt__decoder_error(d), "not a leaktrace trace"));
	lt__decoder_close(d);
}

static int corrupt_status(tb_t *tb, size_t at, uint8_t xor, char *msg, size_t msglen)
{
	size_t len;
	const uint8_t *data = tb_data(tb, &len);
	FILE *f = tmpfile();
	for (size_t i = 0; i < len; i++)
		fputc(i == at ? data[i] ^ xor : data[i], f);
	rewind(f);
	lt__decoder_t *d;
	int rc = lt__decoder_open_stream(&d, f, "mem", ".", NULL);
	int n;
	if (rc == 0)
		rc = drain(d, &n);
	snprintf(msg, msglen, "%s", lt__decoder_error(d));
	lt__decoder_close(d);
	return rc;
}

Test(decode, bad_block_magic_names_offset)
{
	tb_t *tb = sample(LT_CODEC_RAW);
	char msg[512];
	cr_assert_eq(corrupt_status(tb, LT_FILE_HEADER_LEN, 0xff, msg, sizeof msg), -EBADMSG);
	cr_assert(strstr(msg, "bad block magic at byte 16"), "%s", msg);
	tb_free(tb);
}

Test(decode, checksum_mismatch_is_corrupt)
{
	tb_t *tb = sample(LT_CODEC_ZSTD);
	char msg[512];
	cr_assert_eq(corrupt_status(tb, LT_FILE_HEADER_LEN + LT_BLOCK_HEADER_LEN + 5, 0x10,
				    msg, sizeof msg), -EBADMSG);
	cr_assert(strstr(msg, "checksum"), "%s", msg);
	tb_free(tb);
}

Test(decode, oversized_block_is_refused)
{
	tb_t *tb = sample(LT_CODEC_RAW);
	char msg[512];
	/* raw_len's top byte */
	cr_assert_eq(corrupt_status(tb, LT_FILE_HEADER_LEN + 11, 0x40, msg, sizeof msg), -EBADMSG);
	cr_assert(strstr(msg, "too large"), "%s", msg);
	tb_free(tb);
}

static int single_block_status(const void *bytes, size_t n, char *msg, size_t msglen, int *count)
{
	tb_t *tb = tb_new();
	tb_raw(tb, bytes, n);
	tb_flush(tb, LT_CODEC_RAW);
	lt__decoder_t *d = open_tb(tb, SIZE_MAX);
	int rc = drain(d, count);
	snprintf(msg, msglen, "%s", lt__decoder_error(d));
	lt__decoder_close(d);
	tb_free(tb);
	return rc;
}

Test(decode, unknown_event_type_is_corrupt)
{
	char msg[512];
	int n;
	uint8_t rec[] = {0x11, 0x00};
	cr_assert_eq(single_block_status(rec, sizeof rec, msg, sizeof msg, &n), -EBADMSG);
	cr_assert(strstr(msg, "unknown record type 0x11"), "%s", msg);
	cr_assert(strstr(msg, "block at byte 16"), "%s", msg);
}

Test(decode, unknown_metadata_is_skipped)
{
	char msg[512];
	int n;
	uint8_t rec[] = {0x7e, 0x03, 0xaa, 0xbb, 0xcc, LT_REC_FREE, 0x01};
	cr_assert_eq(single_block_status(rec, sizeof rec, msg, sizeof msg, &n), 0);
	cr_assert_eq(n, 1);
}

Test(decode, varint_cut_by_block_end_is_corrupt)
{
	char msg[512];
	int n;
	uint8_t rec[] = {LT_REC_ALLOC, 0x81};
	cr_assert_eq(single_block_status(rec, sizeof rec, msg, sizeof msg, &n), -EBADMSG);
	cr_assert(strstr(msg, "varint"), "%s", msg);
}

Test(decode, metadata_length_past_block_is_corrupt)
{
	char msg[512];
	int n;
	uint8_t rec[] = {LT_REC_MARKER, 0x40, 0x01, 'a'};
	cr_assert_eq(single_block_status(rec, sizeof rec, msg, sizeof msg, &n), -EBADMSG);
}

Test(decode, stack_deeper_than_max_is_corrupt)
{
	char msg[512];
	int n;
	uint8_t rec[] = {LT_REC_STACK, 0x04, 0x01, 0x81, 0x02, 0x00};
	cr_assert_eq(single_block_status(rec, sizeof rec, msg, sizeof msg, &n), -EBADMSG);
}

/* ---- Python records (PYCODE, PYFRAMES) ------------------------------- */

static const uint8_t py_linetable[] = {0x80, 0x00, 0xd8, 0x04, 0x0a};

/* The next record of d, which must be one of type `type`. */
static lt__record_t next_of(lt__decoder_t *d, int type)
{
	lt__record_t r;
	cr_assert_eq(lt__decoder_next(d, &r), 1, "%s", lt__decoder_error(d));
	cr_assert_eq(r.type, type, "record of type 0x%x, not 0x%x", r.type, type);
	return r;
}

static void check_python_records(int codec)
{
	tb_t *tb = tb_new();
	uint64_t native[] = {0x401000, 0x402000};
	uint64_t keys[] = {0x7f0000001230, (3ull << 48) | 0x7f0000004560};
	uint64_t wheres[] = {TB_WHERE(17, 0), TB_WHERE(300, 1)};
	tb_pycode(tb, keys[0], LT_PYCODE_311, "/tmp/x.py", "handle", 4, py_linetable,
		  sizeof py_linetable);
	tb_pycode(tb, keys[1], 0x030c, "<frozen x>", "C.<locals>.f", 1, py_linetable, 2);
	tb_stack(tb, 9, 2, native);
	tb_pyframes(tb, 9, 2, keys, wheres);
	tb_pyframes(tb, 10, 0, NULL, NULL);
	tb_flush(tb, codec);
	lt__decoder_t *d = open_tb(tb, SIZE_MAX);
	lt__record_t r = next_of(d, LT_REC_PYCODE);
	cr_assert_eq(r.u.pycode.code_key, keys[0]);
	cr_assert_eq(r.u.pycode.format, LT_PYCODE_311);
	cr_assert_eq(r.u.pycode.firstlineno, 4);
	cr_assert_eq(r.u.pycode.filename.len, 9);
	cr_assert_eq(memcmp(r.u.pycode.filename.ptr, "/tmp/x.py", 9), 0);
	cr_assert_eq(r.u.pycode.qualname.len, 6);
	cr_assert_eq(memcmp(r.u.pycode.qualname.ptr, "handle", 6), 0);
	cr_assert_eq(r.u.pycode.linetable.len, sizeof py_linetable);
	cr_assert_eq(memcmp(r.u.pycode.linetable.ptr, py_linetable, sizeof py_linetable), 0);
	/* A format this reader does not know: the record is still read. */
	r = next_of(d, LT_REC_PYCODE);
	cr_assert_eq(r.u.pycode.code_key, keys[1]);
	cr_assert_eq(r.u.pycode.format, 0x030c);
	cr_assert_eq(r.u.pycode.linetable.len, 2);
	next_of(d, LT_REC_STACK);
	r = next_of(d, LT_REC_PYFRAMES);
	cr_assert_eq(r.u.pyframes.stack_id, 9);
	cr_assert_eq(r.u.pyframes.count, 2);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(r.u.pyframes.frames[i].code_key, keys[i], "frame %d", i);
		cr_assert_eq(r.u.pyframes.frames[i].where, wheres[i], "frame %d", i);
	}
	r = next_of(d, LT_REC_PYFRAMES);
	cr_assert_eq(r.u.pyframes.stack_id, 10);
	cr_assert_eq(r.u.pyframes.count, 0);
	cr_assert_eq(lt__decoder_next(d, &r), 0);
	lt__decoder_close(d);
	tb_free(tb);
}

Test(decode, python_records_round_trip_raw) { check_python_records(LT_CODEC_RAW); }
Test(decode, python_records_round_trip_zstd) { check_python_records(LT_CODEC_ZSTD); }

/* Each payload is a malformed PYCODE or PYFRAMES record body: the trace is
 * corrupt (one clear error naming the record type), never a crash. */
static void check_malformed_python(uint8_t type, const uint8_t *payload, size_t n,
				   const char *why)
{
	uint8_t rec[64];
	cr_assert_lt(n, sizeof rec - 2);
	rec[0] = type;
	rec[1] = (uint8_t)n;
	memcpy(rec + 2, payload, n);
	char msg[512];
	int count;
	cr_assert_eq(single_block_status(rec, n + 2, msg, sizeof msg, &count), -EBADMSG, "%s",
		     why);
	char want[64];
	snprintf(want, sizeof want, "malformed record of type 0x%02x", type);
	cr_assert(strstr(msg, want), "%s: %s", why, msg);
	cr_assert_eq(count, 0, "%s", why);
}

Test(decode, malformed_pycode_is_corrupt)
{
	/* key, format, filename "a", qualname "f", firstlineno, linetable */
	static const uint8_t good[] = {0x01, 0x8b, 0x06, 0x01, 'a', 0x01,
				       'f',  0x04, 0x02, 0x80, 0x00};
	int count;
	char msg[512];
	uint8_t rec[2 + sizeof good] = {LT_REC_PYCODE, sizeof good};
	memcpy(rec + 2, good, sizeof good);
	cr_assert_eq(single_block_status(rec, sizeof rec, msg, sizeof msg, &count), 0, "%s", msg);
	cr_assert_eq(count, 1);
	/* Every cut of the payload is a truncated record. */
	for (size_t n = 0; n < sizeof good; n++)
		check_malformed_python(LT_REC_PYCODE, good, n, "cut PYCODE");
	static const uint8_t long_name[] = {0x01, 0x8b, 0x06, 0x01, 'a', 0x7f, 'f', 0x04, 0x00};
	check_malformed_python(LT_REC_PYCODE, long_name, sizeof long_name,
			       "qualname longer than the record");
	static const uint8_t long_table[] = {0x01, 0x8b, 0x06, 0x00, 0x00, 0x04, 0x05, 0x80};
	check_malformed_python(LT_REC_PYCODE, long_table, sizeof long_table,
			       "linetable longer than the record");
	static const uint8_t bad_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					     0xff, 0xff, 0xff, 0x7f, 0x00};
	check_malformed_python(LT_REC_PYCODE, bad_varint, sizeof bad_varint,
			       "code key past 64 bits");
}

Test(decode, malformed_pyframes_is_corrupt)
{
	/* stack 1, two frames (key, where) */
	static const uint8_t good[] = {0x01, 0x02, 0x81, 0x20, 0x05, 0x82, 0x20, 0x03};
	int count;
	char msg[512];
	uint8_t rec[2 + sizeof good] = {LT_REC_PYFRAMES, sizeof good};
	memcpy(rec + 2, good, sizeof good);
	cr_assert_eq(single_block_status(rec, sizeof rec, msg, sizeof msg, &count), 0, "%s", msg);
	cr_assert_eq(count, 1);
	for (size_t n = 0; n < sizeof good; n++)
		check_malformed_python(LT_REC_PYFRAMES, good, n, "cut PYFRAMES");
	/* More frames than a record may carry, whatever follows. */
	static const uint8_t deep[] = {0x01, 0x81, 0x02, 0x01, 0x01};
	check_malformed_python(LT_REC_PYFRAMES, deep, sizeof deep, "257 frames");
	static const uint8_t huge[] = {0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x01};
	check_malformed_python(LT_REC_PYFRAMES, huge, sizeof huge, "2^32 frames");
	static const uint8_t more[] = {0x01, 0x03, 0x01, 0x01, 0x02, 0x02};
	check_malformed_python(LT_REC_PYFRAMES, more, sizeof more, "count past the frames");
}

/* The most frames a record may carry are read. */
Test(decode, pyframes_at_max_depth_are_read)
{
	tb_t *tb = tb_new();
	uint64_t keys[LT_MAX_PYDEPTH], wheres[LT_MAX_PYDEPTH];
	for (unsigned i = 0; i < LT_MAX_PYDEPTH; i++) {
		keys[i] = 0x7f0000000000 + 0x100 * i;
		wheres[i] = TB_WHERE(i, i % 3 == 0);
	}
	tb_pyframes(tb, 1, LT_MAX_PYDEPTH, keys, wheres);
	tb_flush(tb, LT_CODEC_ZSTD);
	lt__decoder_t *d = open_tb(tb, SIZE_MAX);
	lt__record_t r = next_of(d, LT_REC_PYFRAMES);
	cr_assert_eq(r.u.pyframes.count, LT_MAX_PYDEPTH);
	cr_assert_eq(r.u.pyframes.frames[LT_MAX_PYDEPTH - 1].code_key, keys[LT_MAX_PYDEPTH - 1]);
	cr_assert_eq(r.u.pyframes.frames[LT_MAX_PYDEPTH - 1].where, wheres[LT_MAX_PYDEPTH - 1]);
	lt__decoder_close(d);
	tb_free(tb);
}

/* A fork child's trace continues the first bytes of its parent's. */
Test(decode, fork_child_reads_parent_prefix)
{
	char dir[] = "/tmp/lt-decode-XXXXXX";
	cr_assert(mkdtemp(dir));
	char ppath[256], cpath[256];
	snprintf(ppath, sizeof ppath, "%s/parent.bin", dir);
	snprintf(cpath, sizeof cpath, "%s/child.bin", dir);

	tb_t *p = tb_new();
	tb_process(p, 10, 1, "/bin/p", 0, NULL, 0, "", 0, 0);
	tb_alloc(p, 1, 16, 0x1000);
	tb_flush(p, LT_CODEC_ZSTD);
	size_t prefix;
	tb_data(p, &prefix);
	tb_alloc(p, 1, 32, 0x2000); /* after the fork: not the child's */
	tb_flush(p, LT_CODEC_ZSTD);
	cr_assert_eq(tb_write(p, ppath), 0);

	tb_t *c = tb_new();
	/* Absolute path that no longer exists: resolved in the child's dir. */
	tb_process(c, 11, 10, "/bin/p", 0, NULL, LT_PROC_FORK_CHILD,
		   "/nonexistent/dir/parent.bin", prefix, 1);
	tb_free_ev(c, 0x1000);
	tb_flush(c, LT_CODEC_RAW);
	cr_assert_eq(tb_write(c, cpath), 0);

	lt__decoder_t *d;
	lt__decode_opts_t o = {.follow_parent = true};
	cr_assert_eq(lt__decoder_open(&d, cpath, &o), 0);
	lt__record_t r;
	int types[16], n = 0, rc;
	uint64_t sizes[16];
	while ((rc = lt__decoder_next(d, &r)) == 1 && n < 16) {
		sizes[n] = r.type == LT_REC_PROCESS ? r.u.process.pid : r.u.ev.size;
		types[n++] = r.type;
	}
	cr_assert_eq(rc, 0, "%s", lt__decoder_error(d));
	cr_assert_eq(n, 6);
	cr_assert_eq(types[5], LT_REC_FREE);
	cr_assert_eq(types[0], LT__REC_SEGMENT);
	cr_assert_eq(types[1], LT_REC_PROCESS);
	cr_assert_eq(sizes[1], 10);
	cr_assert_eq(types[2], LT_REC_ALLOC);
	cr_assert_eq(sizes[2], 16);
	cr_assert_eq(types[3], LT__REC_SEGMENT);
	cr_assert_eq(types[4], LT_REC_PROCESS);
	cr_assert_eq(sizes[4], 11);
	lt__decoder_close(d);

	/* Without the parent: a warning, and the child's own part. */
	unlink(ppath);
	cr_assert_eq(lt__decoder_open(&d, cpath, &o), 0);
	int count;
	cr_assert_eq(drain(d, &count), 0);
	cr_assert_eq(count, 2);
	cr_assert(strstr(lt__decoder_warnings(d), "not found"));
	lt__decoder_close(d);
	unlink(cpath);
	rmdir(dir);
	tb_free(p);
	tb_free(c);
}

/* ---- read-ahead -------------------------------------------------------- */

/* A trace of several read-ahead batches (many events, across blocks and
 * threads) with every kind of record that points into the block. */
static tb_t *long_trace(void)
{
	tb_t *tb = tb_new();
	const char *argv[] = {"./app", "--flag"};
	tb_process(tb, 7, 1, "/bin/app", 2, argv, 0, "", 0, 0);
	static const uint8_t bid[] = {1, 2, 3, 4};
	tb_module(tb, 1, "/lib/libx.so", 0x1000, 0x1000, 0x9000, bid, sizeof bid);
	tb_flush(tb, LT_CODEC_RAW);
	uint64_t frames[] = {0x1100, 0x1200};
	for (uint64_t i = 0; i < 30000; i++) {
		if (i % 5000 == 0) {
			static const uint8_t linetable[] = {0x80, 0x00, 0xd8, 0x04, 0x0a};
			uint64_t key = 0x7f0000001000 + i, where = TB_WHERE(i / 5000, 1);
			tb_stack(tb, 1 + i / 5000, 2, frames);
			tb_pycode(tb, key, LT_PYCODE_311, "/srv/app.py", "f", 3, linetable,
				  sizeof linetable);
			tb_pyframes(tb, 1 + i / 5000, 1, &key, &where);
			tb_marker(tb, "m");
		}
		tb_at(tb, i % 3, i / 1000);
		tb_alloc(tb, 1 + i / 5000, 16 + i % 100, 0x100000 + 16 * i);
		if (i % 7 == 0)
			tb_realloc(tb, 1, 64, 0x900000 + 16 * i, 0x100000 + 16 * i);
		else if (i % 11 == 0)
			tb_after(tb, (i + 1) % 3, i);
		else
			tb_free_ev(tb, 0x100000 + 16 * i);
		if (i % 9000 == 8999)
			tb_flush(tb, i % 2 ? LT_CODEC_ZSTD : LT_CODEC_RAW);
	}
	tb_end(tb, LT_EXIT_NORMAL, 0);
	tb_flush(tb, LT_CODEC_ZSTD);
	return tb;
}

static void same_str(lt__str_t a, lt__str_t b)
{
	cr_assert_eq(a.len, b.len);
	cr_assert_eq(memcmp(a.ptr, b.ptr, a.len), 0);
}

/* Asserts that two records are the same, and so is what they point to. */
static void same_record(const lt__record_t *a, const lt__record_t *b, int n)
{
	cr_assert_eq(a->type, b->type, "record %d", n);
	cr_assert_eq(a->thread, b->thread, "record %d", n);
	cr_assert_eq(a->epoch, b->epoch, "record %d", n);
	switch (a->type) {
	case LT_REC_PROCESS:
		cr_assert_eq(a->u.process.argc, b->u.process.argc);
		for (uint64_t i = 0; i < a->u.process.argc; i++)
			same_str(a->u.process.argv[i], b->u.process.argv[i]);
		same_str(a->u.process.exe, b->u.process.exe);
		break;
	case LT_REC_STACK:
		cr_assert_eq(a->u.stack.depth, b->u.stack.depth);
		cr_assert_eq(memcmp(a->u.stack.frames, b->u.stack.frames,
				    a->u.stack.depth * sizeof *a->u.stack.frames), 0);
		break;
	case LT_REC_MODULES:
		cr_assert_eq(a->u.modules.count, b->u.modules.count);
		for (uint64_t i = 0; i < a->u.modules.count; i++) {
			same_str(a->u.modules.modules[i].path, b->u.modules.modules[i].path);
			cr_assert_eq(a->u.modules.modules[i].build_id_len,
				     b->u.modules.modules[i].build_id_len);
			cr_assert_eq(memcmp(a->u.modules.modules[i].build_id,
					    b->u.modules.modules[i].build_id,
					    a->u.modules.modules[i].build_id_len), 0);
		}
		break;
	case LT_REC_MARKER:
		same_str(a->u.marker, b->u.marker);
		break;
	case LT_REC_PYCODE:
		cr_assert_eq(a->u.pycode.code_key, b->u.pycode.code_key, "record %d", n);
		same_str(a->u.pycode.filename, b->u.pycode.filename);
		same_str(a->u.pycode.qualname, b->u.pycode.qualname);
		same_str(a->u.pycode.linetable, b->u.pycode.linetable);
		break;
	case LT_REC_PYFRAMES:
		cr_assert_eq(a->u.pyframes.count, b->u.pyframes.count, "record %d", n);
		cr_assert_eq(memcmp(a->u.pyframes.frames, b->u.pyframes.frames,
				    a->u.pyframes.count * sizeof *a->u.pyframes.frames),
			     0, "record %d", n);
		break;
	case LT_REC_ALLOC:
	case LT_REC_FREE:
	case LT_REC_REALLOC:
		cr_assert_eq(memcmp(&a->u.ev, &b->u.ev, sizeof a->u.ev), 0, "record %d", n);
		break;
	default:
		break;
	}
}

/* Decodes the first len bytes of tb with and without read-ahead and
 * asserts the same records, end status, truncation and error. */
static void check_read_ahead(const tb_t *tb, size_t len)
{
	lt__decoder_t *plain, *ahead;
	lt__decode_opts_t po = {.follow_parent = true};
	lt__decode_opts_t ao = {.follow_parent = true, .read_ahead = true};
	int rp = lt__decoder_open_stream(&plain, tb_open(tb, len), "mem", ".", &po);
	int ra = lt__decoder_open_stream(&ahead, tb_open(tb, len), "mem", ".", &ao);
	cr_assert_eq(rp, ra);
	int n = 0;
	for (;; n++) {
		lt__record_t a;
		const lt__record_t *b;
		rp = lt__decoder_next(plain, &a);
		ra = lt__decoder_next_ref(ahead, &b);
		cr_assert_eq(rp, ra, "record %d: %d vs %d", n, rp, ra);
		if (rp != 1)
			break;
		same_record(&a, b, n);
	}
	cr_assert_eq(lt__decoder_next_ref(ahead, &(const lt__record_t *){NULL}), rp,
		     "the end repeats");
	uint64_t op = 0, oa = 0;
	cr_assert_eq(lt__decoder_truncated(plain, &op), lt__decoder_truncated(ahead, &oa));
	cr_assert_eq(op, oa);
	cr_assert_str_eq(lt__decoder_error(plain), lt__decoder_error(ahead));
	cr_assert_str_eq(lt__decoder_warnings(plain), lt__decoder_warnings(ahead));
	cr_assert_eq(lt__decoder_position(plain), lt__decoder_position(ahead));
	lt__decoder_close(plain);
	lt__decoder_close(ahead);
}

Test(decode, read_ahead_yields_the_same_records)
{
	tb_t *tb = long_trace();
	check_read_ahead(tb, SIZE_MAX);
	tb_free(tb);
}

Test(decode, read_ahead_stops_the_same_when_truncated)
{
	tb_t *tb = long_trace();
	size_t len;
	tb_data(tb, &len);
	for (size_t cut = 0; cut < len; cut += len / 7 + 1)
		check_read_ahead(tb, cut);
	tb_free(tb);
}

Test(decode, read_ahead_reports_corruption_after_the_good_records)
{
	tb_t *tb = long_trace();
	size_t len;
	const uint8_t *data = tb_data(tb, &len);
	/* A bad block magic somewhere after the first few batches: find the
	 * last block's header by its magic. */
	size_t at = 0;
	for (size_t i = len - 4; i > LT_FILE_HEADER_LEN; i--)
		if (lt_get_u32le(data + i) == LT_BLOCK_MAGIC) {
			at = i;
			break;
		}
	cr_assert_gt(at, 0);
	char path[] = "/tmp/lt-read-ahead-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	uint8_t *bad = malloc(len);
	memcpy(bad, data, len);
	bad[at] ^= 0xff;
	cr_assert_eq(write(fd, bad, len), (ssize_t)len);
	close(fd);
	lt__decoder_t *plain, *ahead;
	lt__decode_opts_t po = {.follow_parent = true};
	lt__decode_opts_t ao = {.follow_parent = true, .read_ahead = true};
	cr_assert_eq(lt__decoder_open(&plain, path, &po), 0);
	cr_assert_eq(lt__decoder_open(&ahead, path, &ao), 0);
	int np, na, rp = drain(plain, &np), ra = drain(ahead, &na);
	cr_assert_eq(rp, -EBADMSG);
	cr_assert_eq(ra, rp);
	cr_assert_eq(na, np);
	cr_assert_str_eq(lt__decoder_error(ahead), lt__decoder_error(plain));
	lt__decoder_close(plain);
	lt__decoder_close(ahead);
	unlink(path);
	free(bad);
	tb_free(tb);
}

Test(decode, read_ahead_closed_early_stops_its_thread)
{
	tb_t *tb = long_trace();
	lt__decoder_t *d;
	lt__decode_opts_t o = {.follow_parent = true, .read_ahead = true};
	cr_assert_eq(lt__decoder_open_stream(&d, tb_open(tb, SIZE_MAX), "mem", ".", &o), 0);
	lt__record_t r;
	for (int i = 0; i < 10; i++)
		cr_assert_eq(lt__decoder_next(d, &r), 1);
	lt__decoder_close(d); /* must not hang or leak */
	tb_free(tb);
}
