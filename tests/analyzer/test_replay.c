/* SPDX-License-Identifier: MIT */
/* Replay tests: memcheck's counting conventions, peak and per-site peak
 * shares, temporary allocations, epoch to time, and fork-child traces. */
#include "helpers.h"
#include "leaktrace/format.h"

static const lt__site_t *site(lt__analysis_t *a, uint64_t stack_id)
{
	lt__agg_t *agg = lt__replay_agg(a->replay);
	long i = lt__agg_site(agg, stack_id);
	cr_assert_geq(i, 0);
	return agg->sites[i];
}

Test(replay, memcheck_counting_conventions)
{
	tb_t *tb = tb_new();
	tb_at(tb, 0, 1);
	tb_alloc(tb, 1, 10, 0x1000); /* malloc(10) */
	tb_realloc(tb, 1, 20, 0x2000, 0x1000); /* grow: 1 alloc + 1 free */
	tb_realloc(tb, 1, 5, 0x2000, 0x2000); /* shrink in place: same */
	tb_alloc(tb, 2, 7, 0x3000); /* realloc(NULL, 7) is written as ALLOC */
	tb_free_ev(tb, 0x3000); /* realloc(p, 0) is written as FREE */
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	const lt__totals_t *t = lt__replay_totals(a.replay);
	cr_assert_eq(t->allocations, 4);
	cr_assert_eq(t->frees, 3);
	cr_assert_eq(t->bytes_allocated, 10 + 20 + 5 + 7);
	cr_assert_eq(t->current_bytes, 5);
	cr_assert_eq(t->current_blocks, 1);
	cr_assert_eq(t->peak_bytes, 20);
	lt__analysis_close(&a);
	tb_free(tb);
}

Test(replay, peak_shares_by_site)
{
	tb_t *tb = tb_new();
	tb_time(tb, 0, 0);
	tb_time(tb, 5, 5000000);
	tb_at(tb, 0, 1);
	tb_alloc(tb, 1, 100, 0x1000);
	tb_alloc(tb, 2, 50, 0x2000);
	tb_at(tb, 0, 6);
	tb_alloc(tb, 3, 30, 0x3000); /* peak: 180 at epoch 6 */
	tb_free_ev(tb, 0x1000);
	tb_alloc(tb, 2, 60, 0x4000); /* 140 < 180 */
	tb_free_ev(tb, 0x3000);
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	const lt__totals_t *t = lt__replay_totals(a.replay);
	cr_assert_eq(t->peak_bytes, 180);
	cr_assert_eq(t->peak_epoch, 6);
	uint64_t ns;
	cr_assert(lt__replay_peak_ns(a.replay, &ns));
	cr_assert_eq(ns, 5000000);
	uint64_t b, n;
	lt__agg_t *agg = lt__replay_agg(a.replay);
	lt__agg_at_peak(agg, site(&a, 1), &b, &n);
	cr_assert_eq(b, 100);
	lt__agg_at_peak(agg, site(&a, 2), &b, &n);
	cr_assert_eq(b, 50);
	cr_assert_eq(n, 1);
	lt__agg_at_peak(agg, site(&a, 3), &b, &n);
	cr_assert_eq(b, 30);
	cr_assert_eq(site(&a, 2)->live_bytes, 110);
	cr_assert_eq(site(&a, 2)->allocations, 2);
	cr_assert_eq(site(&a, 1)->live_bytes, 0);
	lt__analysis_close(&a);
	tb_free(tb);
}

Test(replay, temporary_allocations_like_heaptrack)
{
	tb_t *tb = tb_new();
	tb_at(tb, 0, 1);
	tb_alloc(tb, 1, 8, 0x1000);
	tb_free_ev(tb, 0x1000); /* temporary */
	tb_alloc(tb, 1, 8, 0x1000);
	tb_alloc(tb, 2, 8, 0x2000);
	tb_free_ev(tb, 0x1000); /* not: another allocation in between */
	tb_at(tb, 1, 1);
	tb_free_ev(tb, 0x2000); /* not: freed by another thread */
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	cr_assert_eq(lt__replay_totals(a.replay)->temporary, 1);
	cr_assert_eq(site(&a, 1)->temporary, 1);
	lt__analysis_close(&a);
	tb_free(tb);
}

Test(replay, metadata_process_end_children)
{
	tb_t *tb = tb_new();
	const char *argv[] = {"app", "--x"};
	tb_process(tb, 7, 1, "/usr/bin/app", 2, argv, 0, "", 0, 0);
	uint64_t frames[] = {0x1234, 0x5678};
	uint8_t bid[] = {1, 2, 3};
	tb_module(tb, 1, "/usr/bin/app", 0, 0x1000, 0x9000, bid, 3);
	tb_stack(tb, 1, 2, frames);
	tb_at(tb, 0, 1);
	tb_alloc(tb, 1, 8, 0x1000);
	tb_fork(tb, 8, 1);
	tb_exec(tb, "/bin/true");
	tb_end(tb, LT_EXIT_NORMAL, 3);
	tb_flush(tb, LT_CODEC_ZSTD);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	const lt__process_t *p = lt__replay_process(a.replay);
	cr_assert(p->known);
	cr_assert_eq(p->pid, 7);
	cr_assert_str_eq(p->argv[1], "--x");
	cr_assert(lt__replay_end(a.replay)->seen);
	cr_assert_eq(lt__replay_end(a.replay)->exit_status, 3);
	const lt__child_t *c;
	size_t n;
	lt__replay_children(a.replay, &c, &n);
	cr_assert_eq(n, 2);
	cr_assert_eq(c[0].pid, 8);
	cr_assert_str_eq(c[1].exec_path, "/bin/true");
	const lt__site_t *s = site(&a, 1);
	cr_assert_eq(s->depth, 2);
	cr_assert_eq(s->frames[1], 0x5678);
	cr_assert_eq(s->modmap, 0);
	cr_assert_not_null(lt__modmap_find(lt__replay_modmaps(a.replay), s->modmap, 0x1234));
	lt__analysis_close(&a);
	tb_free(tb);
}

/* Many live blocks: the table grows and deletes correctly. */
Test(replay, live_table_grows_and_shrinks)
{
	tb_t *tb = tb_new();
	tb_at(tb, 0, 1);
	for (uint64_t i = 0; i < 100000; i++) {
		tb_alloc(tb, 1 + i % 3, 16, 0x100000 + i * 16);
		if (i % 5000 == 4999)
			tb_flush(tb, LT_CODEC_ZSTD);
	}
	for (uint64_t i = 0; i < 100000; i += 2)
		tb_free_ev(tb, 0x100000 + i * 16);
	tb_flush(tb, LT_CODEC_ZSTD);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	const lt__totals_t *t = lt__replay_totals(a.replay);
	cr_assert_eq(t->current_blocks, 50000);
	cr_assert_eq(t->unmatched_frees, 0);
	for (uint64_t i = 0; i < 100000; i++)
		cr_assert_eq(lt__replay_find(a.replay, 0x100000 + i * 16) != NULL, i % 2 == 1);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* An allocation at an address still live in the replay (the merge put it
 * before the free of the block there) drops that block and expects its
 * free later: a debt. The free that comes soon after is that one, not the
 * new block's: the new block stays live (here: a leak). A debt much older
 * than the free is not taken first: the live block is freed then. */
Test(replay, a_late_free_pays_the_debt_not_the_new_block)
{
	tb_t *tb = tb_new();
	tb_at(tb, 1, 10);
	tb_alloc(tb, 1, 100, 0x1000);
	tb_alloc(tb, 2, 200, 0x1000); /* reordered: 0x1000 is still live */
	tb_free_ev(tb, 0x1000); /* the late free of the first block */
	tb_alloc(tb, 1, 100, 0x2000);
	tb_alloc(tb, 2, 200, 0x2000);
	tb_at(tb, 1, 10 + 1000);
	tb_free_ev(tb, 0x2000); /* long after: frees the live block */
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	const lt__totals_t *t = lt__replay_totals(a.replay);
	cr_assert_eq(t->allocations, 4);
	cr_assert_eq(t->overlapping_allocs, 2);
	cr_assert_eq(t->late_frees, 1);
	cr_assert_eq(t->current_blocks, 1, "the block at 0x1000 from stack 2 leaks");
	cr_assert_eq(site(&a, 2)->live_blocks, 1);
	cr_assert_eq(site(&a, 2)->live_bytes, 200);
	cr_assert_eq(site(&a, 1)->live_blocks, 0);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* A stack's Python frames (PYFRAMES) stay with its site, each with the
 * code object a PYCODE record named before; a key none named has none.
 * The frames belong to the STACK record they follow: when the stack id
 * is written again, they go. */
Test(replay, python_frames_stay_with_their_stack)
{
	/* first line 4; then line 5 (one-line form, delta 1) */
	static const uint8_t linetable[] = {0x80, 0x00, 0xd8, 0x04, 0x0a};
	uint64_t native[] = {0x401000, 0x402000};
	uint64_t keys[] = {0x7f0000a000, 0x7f0000b000}, wheres[] = {TB_WHERE(1, 1), TB_WHERE(0, 0)};
	tb_t *tb = tb_new();
	tb_pycode(tb, keys[0], LT_PYCODE_311, "/tmp/x.py", "handle", 4, linetable,
		  sizeof linetable);
	tb_stack(tb, 1, 2, native);
	tb_pyframes(tb, 1, 2, keys, wheres);
	tb_stack(tb, 2, 2, native);
	tb_pyframes(tb, 2, 1, keys, wheres);
	tb_at(tb, 0, 1);
	tb_alloc(tb, 1, 10, 0x1000);
	tb_alloc(tb, 2, 10, 0x2000);
	tb_stack(tb, 2, 1, native);
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	const lt__site_t *s = site(&a, 1);
	cr_assert_eq(s->depth, 2);
	cr_assert_eq(s->npyframes, 2);
	cr_assert_eq(s->pyframes[0].code_key, keys[0]);
	cr_assert_eq(s->pyframes[0].where, wheres[0]);
	cr_assert_not_null(s->pyframes[0].code);
	cr_assert_str_eq(s->pyframes[0].code->qualname, "handle");
	cr_assert_eq(lt__pycode_line(s->pyframes[0].code, 1), 5);
	cr_assert_eq(s->pyframes[1].code_key, keys[1]);
	cr_assert_null(s->pyframes[1].code);
	s = site(&a, 2);
	cr_assert_eq(s->depth, 1);
	cr_assert_eq(s->npyframes, 0);
	cr_assert_null(s->pyframes);
	lt__analysis_close(&a);
	tb_free(tb);
}
