/* SPDX-License-Identifier: MIT */
/* `leaktrace-report --dump`: prints records one per line in file order.
 * Numbers are decimal, addresses 0x-hex; strings are printed as they are
 * except that control bytes, backslash and bytes >= 0x7f are written as
 * \xHH so that one record is always one line. */
#include "dump.h"

#include <inttypes.h>

#include "leaktrace/format.h"

static void put_str(FILE *out, lt__str_t s)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c < 0x20 || c >= 0x7f || c == '\\')
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
}

static const char *exit_kind_name(uint64_t kind)
{
	switch (kind) {
	case LT_EXIT_NORMAL:
		return "normal";
	case LT_EXIT_UNDERSCORE:
		return "_exit";
	case LT_EXIT_ABORT:
		return "abort";
	case LT_EXIT_EXEC:
		return "exec";
	case LT_EXIT_SIGNAL:
		return "signal";
	default:
		return "unknown";
	}
}

static const char *codec_name(unsigned codec)
{
	switch (codec) {
	case LT_CODEC_RAW:
		return "raw";
	case LT_CODEC_ZSTD:
		return "zstd";
	case LT_CODEC_ZSTD_COLUMNS:
		return "zstd-columns";
	case LT_CODEC_COLUMNS:
		return "columns";
	default:
		return "unknown";
	}
}

static void dump_record(const lt__record_t *r, FILE *out)
{
	switch (r->type) {
	case LT_REC_ALLOC:
		fprintf(out, "alloc %" PRIu64 " %" PRIu64 " stack=%" PRIu64
			     " size=%" PRIu64 " addr=0x%" PRIx64 "\n",
			r->thread, r->epoch, r->u.ev.stack_id, r->u.ev.size,
			r->u.ev.addr);
		break;
	case LT_REC_FREE:
		fprintf(out, "free %" PRIu64 " %" PRIu64 " addr=0x%" PRIx64 "\n",
			r->thread, r->epoch, r->u.ev.addr);
		break;
	case LT_REC_REALLOC:
		fprintf(out, "realloc %" PRIu64 " %" PRIu64 " stack=%" PRIu64
			     " size=%" PRIu64 " addr=0x%" PRIx64 " old=0x%" PRIx64 "\n",
			r->thread, r->epoch, r->u.ev.stack_id, r->u.ev.size,
			r->u.ev.addr, r->u.ev.old_addr);
		break;
	case LT_REC_THREAD:
		fprintf(out, "thread %" PRIu64 "\n", r->thread);
		break;
	case LT_REC_EPOCH:
		fprintf(out, "epoch %" PRIu64 " %" PRIu64 "\n", r->thread, r->epoch);
		break;
	case LT_REC_AFTER:
		fprintf(out, "after %" PRIu64 " %" PRIu64 " thread=%" PRIu64 " free=%" PRIu64 "\n",
			r->thread, r->epoch, r->u.after.thread, r->u.after.free_number);
		break;
	case LT_REC_PROCESS:
		fprintf(out, "process pid=%" PRIu64 " ppid=%" PRIu64 " exe=",
			r->u.process.pid, r->u.process.ppid);
		put_str(out, r->u.process.exe);
		fprintf(out, " argc=%" PRIu64 " flags=%" PRIu64 " parent=",
			r->u.process.argc, r->u.process.flags);
		put_str(out, r->u.process.parent_trace);
		fprintf(out, " prefix=%" PRIu64 " fork_seq=%" PRIu64 "\n",
			r->u.process.parent_prefix_len, r->u.process.fork_seq);
		for (uint64_t i = 0; i < r->u.process.argc; i++) {
			fprintf(out, "arg %" PRIu64 " ", i);
			put_str(out, r->u.process.argv[i]);
			fputc('\n', out);
		}
		break;
	case LT_REC_STACK:
		fprintf(out, "stack %" PRIu64 " depth=%u", r->u.stack.stack_id,
			r->u.stack.depth);
		for (uint32_t i = 0; i < r->u.stack.depth; i++)
			fprintf(out, " 0x%" PRIx64, r->u.stack.frames[i]);
		fputc('\n', out);
		break;
	case LT_REC_MODULES:
		fprintf(out, "modules gen=%" PRIu64 " count=%" PRIu64 "\n",
			r->u.modules.generation, r->u.modules.count);
		for (uint64_t i = 0; i < r->u.modules.count; i++) {
			const lt__module_rec_t *m = &r->u.modules.modules[i];
			fputs("module ", out);
			put_str(out, m->path);
			fprintf(out, " bias=0x%" PRIx64 " lo=0x%" PRIx64
				     " hi=0x%" PRIx64 " build_id=",
				m->load_bias, m->lo, m->hi);
			for (size_t j = 0; j < m->build_id_len; j++)
				fprintf(out, "%02x", m->build_id[j]);
			fputc('\n', out);
		}
		break;
	case LT_REC_PYCODE:
		fprintf(out, "pycode 0x%" PRIx64 " fmt=0x%" PRIx64 " file=", r->u.pycode.code_key,
			r->u.pycode.format);
		put_str(out, r->u.pycode.filename);
		fputs(" name=", out);
		put_str(out, r->u.pycode.qualname);
		fprintf(out, " first=%" PRIu64 " linetable=%zu\n", r->u.pycode.firstlineno,
			r->u.pycode.linetable.len);
		break;
	case LT_REC_PYFRAMES:
		fprintf(out, "pyframes %" PRIu64 " n=%u", r->u.pyframes.stack_id,
			r->u.pyframes.count);
		for (uint32_t i = 0; i < r->u.pyframes.count; i++)
			fprintf(out, " 0x%" PRIx64 ":%" PRIu64, r->u.pyframes.frames[i].code_key,
				r->u.pyframes.frames[i].where);
		fputc('\n', out);
		break;
	case LT_REC_THREAD_START:
		fprintf(out, "thread_start %" PRIu64 " tid=%" PRIu64 " creator=",
			r->u.thread_start.thread, r->u.thread_start.os_tid);
		if (r->u.thread_start.creator_plus1)
			fprintf(out, "%" PRIu64 "\n", r->u.thread_start.creator_plus1 - 1);
		else
			fputs("-\n", out);
		break;
	case LT_REC_THREAD_END:
		fprintf(out, "thread_end %" PRIu64 "\n", r->u.thread_end.thread);
		break;
	case LT_REC_TIME:
		fprintf(out, "time %" PRIu64 " %" PRIu64 "\n", r->u.time.epoch,
			r->u.time.ns);
		break;
	case LT_REC_MARKER:
		fprintf(out, "marker %" PRIu64 " ", r->thread);
		put_str(out, r->u.marker);
		fputc('\n', out);
		break;
	case LT_REC_RSS:
		fprintf(out, "rss %" PRIu64 " %" PRIu64 "\n", r->u.rss.ns,
			r->u.rss.bytes);
		break;
	case LT_REC_FORK:
		fprintf(out, "fork %" PRIu64 " child=%" PRIu64 " seq=%" PRIu64 "\n",
			r->thread, r->u.fork.child_pid, r->u.fork.fork_seq);
		break;
	case LT_REC_EXEC:
		fprintf(out, "exec %" PRIu64 " ", r->thread);
		put_str(out, r->u.exec);
		fputc('\n', out);
		break;
	case LT_REC_END:
		fprintf(out, "end kind=%s status=%" PRIu64 " events=%" PRIu64
			     " allocs=%" PRIu64 " frees=%" PRIu64 " stacks=%" PRIu64
			     " stack_overflows=%" PRIu64 " ns=%" PRIu64
			     " bytes=%" PRIu64 " lost=%" PRIu64 "\n",
			exit_kind_name(r->u.end.exit_kind), r->u.end.exit_status,
			r->u.end.events, r->u.end.allocs, r->u.end.frees,
			r->u.end.stacks, r->u.end.stack_overflows, r->u.end.ns,
			r->u.end.bytes_written, r->u.end.lost_events);
		break;
	case LT__REC_BLOCK:
		fprintf(out, "block %" PRIu64 " stored=%" PRIu64 " raw=%" PRIu64
			     " codec=%s\n",
			r->u.block.offset, r->u.block.stored_len,
			r->u.block.raw_len,
			codec_name(r->u.block.codec));
		break;
	case LT__REC_SEGMENT:
		if (r->u.segment.parent)
			fprintf(out, "file %s parent prefix=%" PRIu64 "\n",
				r->u.segment.path, r->u.segment.prefix_len);
		else
			fprintf(out, "file %s\n", r->u.segment.path);
		break;
	default:
		break;
	}
}

int lt__dump_trace(lt__decoder_t *d, FILE *out)
{
	lt__record_t r;
	int rc;
	while ((rc = lt__decoder_next(d, &r)) == 1)
		dump_record(&r, out);
	return rc;
}
