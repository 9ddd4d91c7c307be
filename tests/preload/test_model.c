/* SPDX-License-Identifier: MIT */
/* The heap model of columnar blocks (include/leaktrace/model.h): it must
 * agree with a plain reference map through any mix of operations, and two
 * models fed the same events (the writer's and the decoder's) must make
 * the same predictions. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "leaktrace/model.h"

static void *zalloc(size_t n)
{
	return calloc(1, n);
}

static void zfree(void *p, size_t n)
{
	(void)n;
	free(p);
}

#define ADDRS 5000

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

Test(model, matches_a_reference_map_and_a_twin)
{
	static lt_model_t a, b;
	cr_assert_eq(lt_model_init(&a, zalloc, zfree), 0);
	cr_assert_eq(lt_model_init(&b, zalloc, zfree), 0);
	static uint64_t live_size[ADDRS]; /* 0 = not live */
	static uint32_t slot_of[ADDRS];
	uint32_t live = 0;
	for (int step = 0; step < 400000; step++) {
		uint64_t r = next_random();
		uint32_t i = (uint32_t)(r % ADDRS);
		uint64_t addr = 0x7f0000000000ull + (uint64_t)i * 48;
		if (live_size[i]) {
			uint32_t sa, sb;
			cr_assert_eq(lt_model_free(&a, addr, &sa), 1, "step %d: live block unknown", step);
			cr_assert_eq(lt_model_free(&b, addr, &sb), 1);
			cr_assert_eq(sa, slot_of[i]);
			cr_assert_eq(sa, sb);
			live_size[i] = 0;
			live--;
		} else {
			uint64_t size = 1 + (r >> 40) % 600;
			int ka = lt_model_alloc(&a, addr, size);
			/* The decoder's path: a hit is resolved from the model. */
			if (ka >= 0)
				cr_assert_eq(lt_model_predicted(&b, size, (unsigned)ka), addr);
			cr_assert_eq(lt_model_alloc(&b, addr, size), ka);
			live_size[i] = size;
			live++;
			struct lt_model_entry *e = lt_model_find(&a, addr);
			cr_assert_not_null(e);
			slot_of[i] = e->slot;
			cr_assert_eq(lt_model_slot_addr(&b, e->slot), addr);
		}
		cr_assert_eq(a.live, live);
	}
	/* Nothing else is in the table. */
	uint32_t seen = 0;
	for (uint32_t k = 0; k < a.cap; k++)
		seen += a.table[k].addr != 0;
	cr_assert_eq(seen, live);
	lt_model_destroy(&a);
	lt_model_destroy(&b);
}

Test(model, predicts_the_most_recent_free_of_a_class)
{
	static lt_model_t m;
	cr_assert_eq(lt_model_init(&m, zalloc, zfree), 0);
	uint32_t slot;
	cr_assert_eq(lt_model_alloc(&m, 0x1000, 40), -1);
	cr_assert_eq(lt_model_alloc(&m, 0x2000, 40), -1);
	cr_assert_eq(lt_model_free(&m, 0x1000, &slot), 1);
	cr_assert_eq(lt_model_free(&m, 0x2000, &slot), 1);
	/* Newest first; a size of the same class (glibc chunk) also hits. */
	cr_assert_eq(lt_model_alloc(&m, 0x2000, 36), 0);
	cr_assert_eq(lt_model_alloc(&m, 0x1000, 40), 0);
	cr_assert_eq(lt_model_alloc(&m, 0x3000, 40), -1);
	cr_assert_eq(lt_model_free(&m, 0x4000, &slot), 0, "unknown blocks are not live");
	/* Re-allocating a live address (its free not seen yet) replaces it. */
	cr_assert_eq(lt_model_alloc(&m, 0x3000, 100), -1);
	cr_assert_eq(m.live, 3);
	lt_model_destroy(&m);
}

/* The recently-freed lists are rings; what they say must be exactly what
 * plain arrays shifted on every change say (the format depends on it:
 * "hit k" in a trace names the k-th entry), also when one address sits in
 * several lists (allocated again under another size class). */
struct ref_lists {
	uint64_t e[LT_MODEL_BINS][LT_MODEL_MRU];
};

static void ref_push(struct ref_lists *r, uint32_t bin, uint64_t addr)
{
	memmove(&r->e[bin][1], &r->e[bin][0], sizeof(uint64_t) * (LT_MODEL_MRU - 1));
	r->e[bin][0] = addr;
}

static int ref_take(struct ref_lists *r, uint32_t bin, uint64_t addr)
{
	for (int k = 0; k < LT_MODEL_MRU; k++) {
		if (r->e[bin][k] == addr) {
			memmove(&r->e[bin][k], &r->e[bin][k + 1],
				sizeof(uint64_t) * (size_t)(LT_MODEL_MRU - 1 - k));
			r->e[bin][LT_MODEL_MRU - 1] = 0;
			return k;
		}
	}
	return -1;
}

Test(model, recent_lists_match_shifted_arrays)
{
	static lt_model_t m;
	static struct ref_lists ref;
	static uint64_t live_size[64]; /* few addresses: lists fill and wrap */
	cr_assert_eq(lt_model_init(&m, zalloc, zfree), 0);
	for (int step = 0; step < 200000; step++) {
		uint64_t r = next_random();
		uint32_t i = (uint32_t)(r % 64);
		uint64_t addr = 0x10000 + (uint64_t)i * 0x40;
		/* Three sizes in two classes: 24 and 20 share one. */
		static const uint64_t sizes[] = {24, 20, 40};
		uint64_t size = sizes[(r >> 20) % 3];
		uint32_t slot;
		if (live_size[i] && (r >> 40) % 8 != 0) {
			cr_assert_eq(lt_model_free(&m, addr, &slot), 1);
			ref_push(&ref, lt_model_bin(live_size[i]), addr);
			live_size[i] = 0;
		} else {
			/* Sometimes over a live block: the model looks the
			 * address up, then replaces the block (as a free). */
			int want = ref_take(&ref, lt_model_bin(size), addr);
			if (live_size[i])
				ref_push(&ref, lt_model_bin(live_size[i]), addr);
			cr_assert_eq(lt_model_alloc(&m, addr, size), want, "step %d", step);
			live_size[i] = size;
		}
		for (uint32_t b = lt_model_bin(20); b <= lt_model_bin(40); b++)
			for (unsigned k = 0; k < LT_MODEL_MRU; k++)
				cr_assert_eq(m.mru[b][(m.mru_head[b] + k) % LT_MODEL_MRU],
					     ref.e[b][k], "step %d bin %u k %u", step, b, k);
	}
	lt_model_destroy(&m);
}
