/* SPDX-License-Identifier: MIT */
/* Merge tests: hand-built per-thread streams whose file order differs from
 * the order the program ran in; the replay must pair every free with its
 * allocation (no unmatched frees, no overlapping allocations, no false
 * leaks). A seeded simulation of a producer/consumer program checks the
 * same at scale, with writer-like skew between the threads' streams. */
#include <stdlib.h>

#include "helpers.h"
#include "leaktrace/format.h"

static const lt__totals_t *totals(lt__analysis_t *a)
{
	return lt__replay_totals(a->replay);
}

static void assert_clean(lt__analysis_t *a, uint64_t allocs, uint64_t frees)
{
	const lt__totals_t *t = totals(a);
	cr_assert_eq(t->unmatched_frees, 0, "unmatched frees: %lu", (unsigned long)t->unmatched_frees);
	cr_assert_eq(t->overlapping_allocs, 0, "overlapping: %lu", (unsigned long)t->overlapping_allocs);
	cr_assert_eq(t->allocations, allocs, "allocations %lu", (unsigned long)t->allocations);
	cr_assert_eq(t->frees, frees, "frees %lu", (unsigned long)t->frees);
}

/* The consumer's free is written before the producer's allocation (its
 * ring was drained first), at the same epoch. */
Test(merge, free_written_before_its_alloc_same_epoch)
{
	tb_t *tb = tb_new();
	tb_at(tb, 2, 5);
	tb_free_ev(tb, 0x1000);
	tb_at(tb, 1, 5);
	tb_alloc(tb, 1, 64, 0x1000);
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	assert_clean(&a, 1, 1);
	cr_assert_eq(totals(&a)->current_bytes, 0);
	cr_assert_eq(totals(&a)->forced, 0);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* The free is in an earlier block, and has a later epoch than the alloc. */
Test(merge, free_in_earlier_block_later_epoch)
{
	tb_t *tb = tb_new();
	tb_at(tb, 2, 7);
	tb_free_ev(tb, 0x1000);
	tb_flush(tb, LT_CODEC_ZSTD);
	tb_at(tb, 1, 6);
	tb_alloc(tb, 1, 64, 0x1000);
	tb_flush(tb, LT_CODEC_ZSTD);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	assert_clean(&a, 1, 1);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* Address A passes through three threads in one epoch: T1 allocates, T2
 * frees, T3 allocates and frees. The file has T3's events first. */
Test(merge, address_reuse_across_three_threads)
{
	tb_t *tb = tb_new();
	tb_at(tb, 3, 4);
	tb_alloc(tb, 3, 32, 0xa000);
	tb_free_ev(tb, 0xa000);
	tb_at(tb, 2, 4);
	tb_free_ev(tb, 0xa000);
	tb_at(tb, 1, 4);
	tb_alloc(tb, 1, 16, 0xa000);
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	assert_clean(&a, 2, 2);
	cr_assert_eq(totals(&a)->current_blocks, 0);
	cr_assert_eq(totals(&a)->bytes_allocated, 48);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* T1 reallocs A to B; T2 then gets A from the allocator. T2's stream comes
 * first in the file. */
Test(merge, realloc_moves_block_other_thread_reuses_old_address)
{
	tb_t *tb = tb_new();
	tb_at(tb, 2, 3);
	tb_alloc(tb, 2, 8, 0xa000);
	tb_at(tb, 1, 3);
	tb_alloc(tb, 1, 100, 0xa000);
	tb_realloc(tb, 1, 200, 0xb000, 0xa000);
	tb_free_ev(tb, 0xb000);
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	assert_clean(&a, 3, 2);
	cr_assert_eq(totals(&a)->current_bytes, 8);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* T2 frees a block (realloc'd by T1 in place) before T1's realloc is read. */
Test(merge, free_after_realloc_in_place_written_first)
{
	tb_t *tb = tb_new();
	tb_at(tb, 2, 9);
	tb_free_ev(tb, 0xa000);
	tb_at(tb, 1, 8);
	tb_alloc(tb, 1, 10, 0xa000);
	tb_realloc(tb, 1, 20, 0xa000, 0xa000);
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	assert_clean(&a, 2, 2);
	cr_assert_eq(totals(&a)->current_bytes, 0);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* fx_reuse's pattern: thread 1 allocates X, thread 2 frees it, thread 3
 * allocates X again and keeps it, all in one epoch, written newest thread
 * first. The AFTER record says thread 3's allocation follows thread 2's
 * free; the block left live must be thread 3's (stack 3). */
static void reuse_case(bool with_after, uint64_t first_epoch)
{
	tb_t *tb = tb_new();
	tb_at(tb, 3, 5);
	if (with_after)
		tb_after(tb, 2, 1);
	tb_alloc(tb, 3, 30, 0xa000);
	tb_at(tb, 2, 5);
	tb_free_ev(tb, 0xa000);
	tb_at(tb, 1, first_epoch);
	tb_alloc(tb, 1, 10, 0xa000);
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	assert_clean(&a, 2, 1);
	cr_assert_eq(totals(&a)->forced, 0);
	const lt__live_t *b = lt__replay_find(a.replay, 0xa000);
	cr_assert_not_null(b);
	cr_assert_eq(b->size, 30, "the survivor is thread 3's block");
	lt__analysis_close(&a);
	tb_free(tb);
}

Test(merge, reuse_through_three_threads_with_after)
{
	reuse_case(true, 5);
}

/* The first thread's allocation stamped a later epoch than the free that
 * follows it (a stale epoch): the window still orders them. */
Test(merge, reuse_with_allocation_stamped_late)
{
	reuse_case(true, 6);
}

/* A free of something never allocated cannot wait forever. */
Test(merge, genuine_unmatched_free_is_counted_not_fatal)
{
	tb_t *tb = tb_new();
	tb_at(tb, 1, 1);
	tb_free_ev(tb, 0xdead0);
	tb_alloc(tb, 1, 5, 0x1000);
	tb_at(tb, 2, 1);
	tb_alloc(tb, 2, 7, 0x2000);
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	cr_assert_eq(totals(&a)->unmatched_frees, 1);
	cr_assert_eq(totals(&a)->allocations, 2);
	cr_assert_eq(totals(&a)->current_bytes, 12);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* Two allocations at one address with no free between: the first block
 * is freed then, and its free, when it comes late, is absorbed. */
Test(merge, overlapping_alloc_frees_old_block_and_absorbs_its_late_free)
{
	tb_t *tb = tb_new();
	tb_at(tb, 1, 1);
	tb_alloc(tb, 1, 5, 0x1000);
	tb_alloc(tb, 1, 7, 0x1000);
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	cr_assert_eq(totals(&a)->overlapping_allocs, 1);
	cr_assert_eq(totals(&a)->current_bytes, 7);
	cr_assert_eq(totals(&a)->current_blocks, 1);
	cr_assert_eq(totals(&a)->frees, 1);
	lt__analysis_close(&a);
	tb_free(tb);

	tb = tb_new();
	tb_at(tb, 1, 1);
	tb_alloc(tb, 1, 5, 0x1000);
	tb_alloc(tb, 1, 7, 0x1000);
	tb_free_ev(tb, 0x1000);
	tb_free_ev(tb, 0x1000); /* the first block's late free */
	tb_flush(tb, LT_CODEC_RAW);
	run_tb(tb, &a, 0, 0);
	cr_assert_eq(totals(&a)->allocations, 2);
	cr_assert_eq(totals(&a)->frees, 2);
	cr_assert_eq(totals(&a)->unmatched_frees, 0);
	cr_assert_eq(totals(&a)->late_frees, 1);
	cr_assert_eq(totals(&a)->current_bytes, 0);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* Epoch order is kept across threads when nothing conflicts. */
Test(merge, events_come_out_in_epoch_order)
{
	tb_t *tb = tb_new();
	tb_at(tb, 1, 10);
	tb_marker(tb, "late");
	tb_at(tb, 2, 2);
	tb_marker(tb, "early");
	tb_at(tb, 2, 30);
	tb_marker(tb, "last");
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	lt__merge_opts_t o = {0};
	cr_assert_eq(lt__analysis_open(&a, "mem", tb_open(tb, SIZE_MAX), &o), 0);
	lt__merged_t it;
	const char *want[] = {"early", "late", "last"};
	int n = 0;
	while (lt__analysis_step(&a, &it) == 1)
		if (it.is_event && it.ev.type == LT_REC_MARKER)
			cr_assert_str_eq(it.ev.str, want[n++]);
	cr_assert_eq(n, 3);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* ---- simulation -------------------------------------------------------- */

/* The simulated program's own view: live bytes now and at their peak. */
static uint64_t sim_cur, sim_peak, sim_size[256];

static void sim_live(uint64_t addr, int64_t delta_or_set, bool set)
{
	uint64_t *z = &sim_size[(addr - 0x10000) / 0x40];
	if (set) {
		*z = (uint64_t)delta_or_set;
		sim_cur += *z;
		if (sim_cur > sim_peak)
			sim_peak = sim_cur;
	} else {
		sim_cur -= *z;
	}
}

struct sim_ev {
	int type;
	uint64_t epoch, addr, old, size;
};

struct sim_thread {
	struct sim_ev *evs;
	size_t n, cap, drained;
};

static void sim_push(struct sim_thread *t, struct sim_ev ev)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 1024;
		t->evs = realloc(t->evs, t->cap * sizeof *t->evs);
		cr_assert(t->evs);
	}
	t->evs[t->n++] = ev;
}

/* Runs a seeded program of nthreads threads over a small address pool
 * with an allocator like glibc's: each thread reuses its own last frees
 * first (a LIFO cache of 7, like tcache), else takes from a shared LIFO
 * pool, so addresses move between threads all the time. Even threads are
 * producers that hand blocks to a shared queue, odd threads consumers that
 * free them; everyone also allocates and frees locally, and reallocs.
 * Then the per-thread streams are written the way a writer thread
 * draining rings would: chunks of up to max_chunk events per thread,
 * round robin. Returns the number of allocations. */
static uint64_t simulate(tb_t *tb, unsigned seed, int nthreads, int steps,
			 int per_epoch, int max_chunk)
{
	enum { POOL = 256, CACHE = 7 };
	uint64_t pool[POOL], queue[POOL], local[8][POOL], cache[8][CACHE];
	int npool = POOL, nqueue = 0, nlocal[8] = {0}, ncache[8] = {0};
	for (int i = 0; i < POOL; i++)
		pool[i] = 0x10000 + (uint64_t)i * 0x40;
	struct sim_thread th[8] = {0};
	uint64_t allocs = 0;
	sim_cur = sim_peak = 0;
	srand(seed);
	for (int s = 0; s < steps; s++) {
		uint64_t epoch = (uint64_t)(s / per_epoch);
		int t = rand() % nthreads;
		int op = rand() % 10;
		bool producer = t % 2 == 0 || nthreads == 1;
		if (op < 4) { /* allocate: own cache first */
			uint64_t a;
			if (ncache[t])
				a = cache[t][--ncache[t]];
			else if (npool)
				a = pool[--npool];
			else
				continue;
			if (producer && op < 2 && nqueue < POOL)
				queue[nqueue++] = a;
			else
				local[t][nlocal[t]++] = a;
			uint64_t size = (uint64_t)(1 + rand() % 100);
			sim_live(a, (int64_t)size, true);
			sim_push(&th[t], (struct sim_ev){LT_REC_ALLOC, epoch, a, 0, size});
			allocs++;
			continue;
		}
		uint64_t a;
		if (op < 7 && !producer && nqueue) { /* consume a handed-over block */
			int k = rand() % nqueue;
			a = queue[k];
			queue[k] = queue[--nqueue];
		} else if (nlocal[t]) {
			int k = rand() % nlocal[t];
			a = local[t][k];
			if (op == 9 && (ncache[t] || npool)) { /* realloc, may move */
				uint64_t n = a;
				if (rand() % 2) {
					n = ncache[t] ? cache[t][--ncache[t]] : pool[--npool];
					if (ncache[t] < CACHE)
						cache[t][ncache[t]++] = a;
					else
						pool[npool++] = a;
				}
				local[t][k] = n;
				sim_live(a, 0, false);
				sim_live(n, 50, true);
				sim_push(&th[t], (struct sim_ev){LT_REC_REALLOC, epoch, n, a, 50});
				allocs++;
				continue;
			}
			local[t][k] = local[t][--nlocal[t]];
		} else {
			continue;
		}
		sim_live(a, 0, false);
		sim_push(&th[t], (struct sim_ev){LT_REC_FREE, epoch, a, 0, 0});
		if (ncache[t] < CACHE)
			cache[t][ncache[t]++] = a;
		else
			pool[npool++] = a;
	}
	uint64_t live[POOL * 9];
	int nlive = 0;
	for (int i = 0; i < nqueue; i++)
		live[nlive++] = queue[i];
	for (int t = 0; t < nthreads; t++)
		for (int i = 0; i < nlocal[t]; i++)
			live[nlive++] = local[t][i];
	/* Free what is left, from thread 0, at the end. */
	uint64_t last = (uint64_t)(steps / per_epoch) + 1;
	while (nlive > 0)
		sim_push(&th[0], (struct sim_ev){LT_REC_FREE, last, live[--nlive], 0, 0});

	/* The writer: round robin over threads, a random chunk from each. */
	size_t in_block = 0;
	for (bool more = true; more;) {
		more = false;
		for (int t = 0; t < nthreads; t++) {
			struct sim_thread *st = &th[t];
			size_t chunk = 1 + (size_t)(rand() % max_chunk);
			for (size_t i = 0; i < chunk && st->drained < st->n; i++) {
				struct sim_ev *e = &st->evs[st->drained++];
				tb_at(tb, (uint64_t)t, e->epoch);
				if (e->type == LT_REC_ALLOC)
					tb_alloc(tb, (uint64_t)t + 1, e->size, e->addr);
				else if (e->type == LT_REC_FREE)
					tb_free_ev(tb, e->addr);
				else
					tb_realloc(tb, 9, e->size, e->addr, e->old);
				if (++in_block == 500) {
					tb_flush(tb, LT_CODEC_ZSTD);
					in_block = 0;
				}
			}
			if (st->drained < st->n)
				more = true;
		}
	}
	tb_flush(tb, LT_CODEC_ZSTD);
	for (int t = 0; t < 8; t++)
		free(th[t].evs);
	return allocs;
}

static void check_simulation(unsigned seed, int nthreads, int steps, int per_epoch,
			     int max_chunk, uint64_t max_buffered)
{
	tb_t *tb = tb_new();
	uint64_t allocs = simulate(tb, seed, nthreads, steps, per_epoch, max_chunk);
	lt__analysis_t a;
	run_tb(tb, &a, 0, max_buffered);
	const lt__totals_t *t = totals(&a);
	cr_assert_eq(t->unmatched_frees, 0, "seed %u: %lu unmatched frees", seed,
		     (unsigned long)t->unmatched_frees);
	cr_assert_eq(t->allocations, allocs);
	cr_assert_eq(t->frees, allocs);
	cr_assert_eq(t->current_blocks, 0, "seed %u: false leaks", seed);
	lt__analysis_close(&a);
	tb_free(tb);
}

Test(merge, producer_consumer_small_skew)
{
	for (unsigned seed = 1; seed <= 20; seed++)
		check_simulation(seed, 4, 20000, 100, 20, 0);
}

Test(merge, producer_consumer_large_skew)
{
	/* Chunks of up to 400 events: streams skewed by several epochs. */
	for (unsigned seed = 100; seed <= 110; seed++)
		check_simulation(seed, 4, 20000, 50, 400, 0);
}

Test(merge, producer_consumer_many_threads_small_buffer)
{
	for (unsigned seed = 200; seed <= 205; seed++)
		check_simulation(seed, 8, 20000, 100, 30, 4096);
}

Test(merge, producer_consumer_million_events)
{
	check_simulation(7, 4, 1000000, 1000, 64, 0);
}

/* Many reuses of few addresses within each epoch: the order inside an
 * epoch is a guess, yet the repairs keep the replay's live bytes close to
 * the program's: the peak within 5%, on average over seeds. */
Test(merge, producer_consumer_peak_close_to_real)
{
	double ratio = 0;
	for (unsigned seed = 300; seed < 310; seed++) {
		tb_t *tb = tb_new();
		simulate(tb, seed, 4, 50000, 1000, 50);
		uint64_t real_peak = sim_peak;
		lt__analysis_t a;
		run_tb(tb, &a, 0, 0);
		const lt__totals_t *t = totals(&a);
		cr_assert_eq(t->unmatched_frees, 0);
		cr_assert_eq(t->current_blocks, 0);
		ratio += (double)t->peak_bytes / (double)real_peak;
		lt__analysis_close(&a);
		tb_free(tb);
	}
	ratio /= 10;
	cr_assert(ratio > 0.95 && ratio < 1.05, "replayed peak / real peak = %.3f", ratio);
}

/* ---- a thread alone ---------------------------------------------------- */

/* One thread alone for long stretches (with stacks, TIME records, markers
 * and epochs among its events), a second thread that shows up late in the
 * file with events of an earlier epoch, and the first alone again. */
static tb_t *mostly_lone_trace(void)
{
	tb_t *tb = tb_new();
	uint64_t frames[] = {0x1100, 0x1200};
	bool live[300] = {false};
	tb_at(tb, 1, 9);
	tb_marker(tb, "start"); /* thread 1 has events from the start */
	for (uint64_t i = 0; i < 60000; i++) {
		uint64_t epoch = 10 + i / 700;
		if (i % 700 == 0)
			tb_time(tb, epoch, epoch * 1000);
		if (i % 9000 == 0)
			tb_stack(tb, 1 + i / 9000, 2, frames);
		tb_at(tb, 1, epoch);
		if (i % 13000 == 0)
			tb_marker(tb, "m");
		/* Up to 300 blocks live, and a peak that moves. */
		uint64_t slot = (i * 7) % 300;
		if (live[slot])
			tb_free_ev(tb, 0x100000 + 16 * slot);
		tb_alloc(tb, 1 + i / 9000, 16 + (i * 13) % 500, 0x100000 + 16 * slot);
		live[slot] = true;
		if (i % 1000 == 999) {
			for (uint64_t k = 0; k < 300; k += 1 + (i / 1000) % 3) {
				if (live[k])
					tb_free_ev(tb, 0x100000 + 16 * k);
				live[k] = false;
			}
		}
		if (i == 30000) {
			/* Thread 2, drained late: its events are older. */
			tb_at(tb, 2, epoch - 1);
			for (uint64_t k = 0; k < 50; k++)
				tb_alloc(tb, 1, 4096, 0x900000 + 4096 * k);
			for (uint64_t k = 0; k < 50; k += 2)
				tb_free_ev(tb, 0x900000 + 4096 * k);
		}
		if (i % 20000 == 19999)
			tb_flush(tb, LT_CODEC_ZSTD);
	}
	/* The writer's pseudo-thread (a signal's marker), idle afterwards. */
	tb_at(tb, 0, 100);
	tb_marker(tb, "signal");
	tb_at(tb, 1, 100);
	for (uint64_t i = 0; i < 40000; i++) {
		tb_at(tb, 1, 100 + i / 700);
		tb_alloc(tb, 1, 32 + i % 64, 0x200000 + 64 * (i % 50));
		tb_free_ev(tb, 0x200000 + 64 * (i % 50));
	}
	tb_end(tb, LT_EXIT_NORMAL, 0);
	tb_flush(tb, LT_CODEC_ZSTD);
	return tb;
}

/* Replays tb twice, as the report does (read-ahead, a lone thread's
 * events straight from its batches) and item by item on a decoder without
 * read-ahead, and checks that both give the same totals and per-site
 * counters, clean (nothing forced, overlapping or unmatched), with allocs
 * allocations from threads threads. */
static void fast_equals_slow(const tb_t *tb, uint64_t allocs, size_t threads)
{
	lt__analysis_t fast;
	run_tb(tb, &fast, 0, 0);

	lt__analysis_t slow = {0};
	lt__decode_opts_t d = {.follow_parent = true};
	cr_assert_eq(lt__decoder_open_stream(&slow.dec, tb_open(tb, SIZE_MAX), "mem", ".", &d), 0);
	cr_assert_eq(lt__replay_new(&slow.replay), 0);
	cr_assert_eq(lt__merge_new(&slow.merge, slow.dec, lt__replay_is_live, slow.replay, NULL), 0);
	lt__merged_t it;
	int rc;
	while ((rc = lt__analysis_step(&slow, &it)) == 1)
		;
	cr_assert_eq(rc, 0);

	const lt__totals_t *f = totals(&fast), *s = totals(&slow);
	cr_assert_eq(f->allocations, allocs);
	cr_assert_eq(f->unmatched_frees + f->overlapping_allocs + f->forced, 0,
		     "fast: %lu unmatched, %lu overlapping, %lu forced",
		     (unsigned long)f->unmatched_frees, (unsigned long)f->overlapping_allocs,
		     (unsigned long)f->forced);
	cr_assert_eq(memcmp(f, s, sizeof *f), 0,
		     "fast: %lu allocs, peak %lu at %lu; slow: %lu allocs, peak %lu at %lu",
		     (unsigned long)f->allocations, (unsigned long)f->peak_bytes,
		     (unsigned long)f->peak_epoch, (unsigned long)s->allocations,
		     (unsigned long)s->peak_bytes, (unsigned long)s->peak_epoch);
	uint64_t fns = 0, sns = 0;
	cr_assert_eq(lt__replay_peak_ns(fast.replay, &fns), lt__replay_peak_ns(slow.replay, &sns));
	cr_assert_eq(fns, sns);
	cr_assert_eq(lt__replay_threads(fast.replay), threads);
	/* The per-site counters, peak included, agree too. */
	lt__agg_t *fa = lt__replay_agg(fast.replay), *sa = lt__replay_agg(slow.replay);
	cr_assert_eq(fa->nsites, sa->nsites);
	for (size_t i = 0; i < fa->nsites; i++) {
		uint64_t fb, fk, sb, sk;
		lt__agg_at_peak(fa, fa->sites[i], &fb, &fk);
		lt__agg_at_peak(sa, sa->sites[i], &sb, &sk);
		cr_assert_eq(fb, sb, "site %zu at peak", i);
		cr_assert_eq(fk, sk);
		cr_assert_eq(fa->sites[i]->allocations, sa->sites[i]->allocations);
		cr_assert_eq(fa->sites[i]->temporary, sa->sites[i]->temporary);
		cr_assert_eq(fa->sites[i]->live_bytes, sa->sites[i]->live_bytes);
	}
	lt__analysis_close(&fast);
	lt__analysis_close(&slow);
}

/* The report's run replays a mostly lone trace exactly as the general
 * path does. */
Test(merge, lone_thread_fast_path_replays_the_same)
{
	tb_t *tb = mostly_lone_trace();
	fast_equals_slow(tb, 100050, 2);
	tb_free(tb);
}

/* The lone path looks into the next read-ahead batch when the current one
 * ends within its lookahead. A second thread, idle in between, shows up
 * every 1999 iterations (somewhere in the first records of some batches)
 * with an older epoch, freeing a block the lone thread allocated long
 * ago and reallocates in the records just before: the free must go
 * first, so the lone thread's records before it must not have gone out
 * straight from the batch. */
Test(merge, lone_thread_fast_path_stops_before_a_late_thread_in_the_next_batch)
{
	tb_t *tb = tb_new();
	uint64_t frames[] = {0x1100};
	tb_stack(tb, 1, 1, frames);
	bool live[300] = {false};
	uint64_t allocs = 0;
	for (uint64_t i = 0; i < 200000; i++) {
		uint64_t epoch = 10 + i / 50; /* 40 epochs between visits: idle */
		tb_at(tb, 1, epoch);
		uint64_t slot = (i * 7) % 300;
		if (live[slot])
			tb_free_ev(tb, 0x100000 + 16 * slot);
		tb_alloc(tb, 1, 16 + i % 200, 0x100000 + 16 * slot);
		live[slot] = true;
		allocs++;
		uint64_t k = i / 1999;
		if (i % 1999 == 1000) {
			/* Live from now until the visit. */
			tb_alloc(tb, 1, 100, 0x800000 + 64 * k);
			allocs++;
		}
		if (i % 1999 == 1998) {
			tb_alloc(tb, 1, 200, 0x800000 + 64 * k);
			tb_at(tb, 2, epoch - 1);
			tb_free_ev(tb, 0x800000 + 64 * k);
			allocs++;
		}
		if (i % 30000 == 29999)
			tb_flush(tb, LT_CODEC_ZSTD);
	}
	tb_end(tb, LT_EXIT_NORMAL, 0);
	tb_flush(tb, LT_CODEC_ZSTD);
	fast_equals_slow(tb, allocs, 2);
	tb_free(tb);
}

/* Threads that never touch each other's addresses in an epoch are
 * interleaved by their place in it (the plan has nothing to say about
 * their order): two threads allocating four blocks each and then freeing
 * them peak at all eight live, even though the file has one thread's
 * events before the other's. */
Test(merge, separate_threads_interleave_by_place)
{
	tb_t *tb = tb_new();
	for (uint64_t th = 1; th <= 3; th++) {
		tb_at(tb, th, 5);
		for (uint64_t k = 0; k < 4; k++)
			tb_alloc(tb, 1, 100, 0x100000 * th + 0x100 * k);
		for (uint64_t k = 0; k < 4; k++)
			tb_free_ev(tb, 0x100000 * th + 0x100 * k);
	}
	for (uint64_t th = 1; th <= 3; th++) {
		tb_at(tb, th, 6);
		tb_alloc(tb, 1, 10, 0x100000 * th);
	}
	tb_flush(tb, LT_CODEC_RAW);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	assert_clean(&a, 15, 12);
	cr_assert_eq(totals(&a)->peak_bytes, 1200);
	cr_assert_eq(totals(&a)->peak_blocks, 12);
	cr_assert_eq(totals(&a)->current_bytes, 30);
	cr_assert_eq(totals(&a)->forced, 0);
	lt__analysis_close(&a);
	tb_free(tb);
}

/* A lone thread's frees and reallocs are counted as AFTER records number
 * them even when they go straight from the read-ahead: another thread's
 * allocation that names the lone thread's last free waits for exactly
 * that free, nothing is forced. */
Test(merge, lone_thread_fast_path_numbers_frees_for_after)
{
	tb_t *tb = tb_new();
	tb_at(tb, 1, 5);
	uint64_t last = 0;
	for (uint64_t i = 0; i < 3000; i++) {
		uint64_t a = 0x100000 + 64 * i, b = 0x900000 + 64 * i;
		tb_alloc(tb, 1, 24, a);
		tb_realloc(tb, 1, 48, b, a);
		tb_free_ev(tb, b);
		last = b;
	}
	tb_at(tb, 2, 6); /* an epoch later: no plan, the causal rule decides */
	tb_after(tb, 1, 2 * 3000); /* the realloc and the free of each round */
	tb_alloc(tb, 2, 32, last);
	tb_flush(tb, LT_CODEC_ZSTD);
	lt__analysis_t a;
	run_tb(tb, &a, 0, 0);
	assert_clean(&a, 6001, 6000);
	cr_assert_eq(totals(&a)->forced, 0);
	const lt__live_t *b = lt__replay_find(a.replay, last);
	cr_assert_not_null(b);
	cr_assert_eq(b->size, 32, "thread 2's block is the one left");
	lt__analysis_close(&a);
	tb_free(tb);
}
