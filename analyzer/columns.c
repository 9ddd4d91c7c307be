/* SPDX-License-Identifier: MIT */
/* Reads a columnar block (format.h, "Columnar blocks") op by op, running
 * the same heap model (leaktrace/model.h) the shim's writer ran: the
 * decoder turns the ops into records without re-encoding them as the
 * canonical stream first. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "columns.h"
#include "leaktrace/codec.h"

static void *model_calloc(size_t bytes)
{
	return calloc(1, bytes);
}

static void model_free(void *p, size_t bytes)
{
	(void)bytes;
	free(p);
}

int lt__columns_init(lt__columns_t *c)
{
	/* The model (tens of MB of mostly untouched memory) is set up by the
	 * first columnar block: a decoder that only reads a trace's PROCESS
	 * record, or a trace without columnar blocks, never pays for it. */
	memset(c, 0, sizeof *c);
	return 0;
}

static int model_start(lt__columns_t *c)
{
	c->model = malloc(sizeof *c->model);
	if (!c->model)
		return -ENOMEM;
	if (lt_model_init(c->model, model_calloc, model_free)) {
		lt_model_destroy(c->model);
		free(c->model);
		c->model = NULL;
		return -ENOMEM;
	}
	return 0;
}

void lt__columns_destroy(lt__columns_t *c)
{
	if (c->model) {
		lt_model_destroy(c->model);
		free(c->model);
	}
	memset(c, 0, sizeof *c);
}

/* Length of the canonical record at p (which is not ALLOC/FREE), or 0 if
 * it runs past end or is not a record the META column may carry. */
static size_t record_length(const uint8_t *p, const uint8_t *end)
{
	const uint8_t *q = p + 1;
	uint64_t v;
	if (p >= end)
		return 0;
	uint8_t type = *p;
	if (type == LT_REC_THREAD || type == LT_REC_EPOCH) {
		if (lt_get_uv(&q, end, &v))
			return 0;
	} else if (type == LT_REC_AFTER) {
		if (lt_get_uv(&q, end, &v) || lt_get_uv(&q, end, &v))
			return 0;
	} else if (type == LT_REC_REALLOC) {
		for (int i = 0; i < 4; i++)
			if (lt_get_uv(&q, end, &v))
				return 0;
	} else if (type >= LT_REC_FIRST_META && type <= LT_REC_LAST_META) {
		if (lt_get_uv(&q, end, &v) || v > (uint64_t)(end - q))
			return 0;
		q += v;
	} else {
		return 0;
	}
	return (size_t)(q - p);
}

#define FAIL(...)                                          \
	do {                                               \
		snprintf(err, err_len, __VA_ARGS__);       \
		c->active = false;                         \
		return -EBADMSG;                           \
	} while (0)

#define LT__SLOT_AHEAD 16 /* frees by slot between reading a slot ahead and its use */

/* Called at each free by slot: reads the SLOT column one value further
 * ahead and prefetches that slot's address; takes the slot read half the
 * distance ago (its address should be in cache by now) and prefetches
 * its entry in the model's table. Only hints: a block freed or a slot
 * reused in between costs a wasted load, nothing else. */
static inline void prefetch_slots(lt__columns_t *c)
{
	const lt_model_t *m = c->model;
	uint64_t s;
	if (lt_get_uv(&c->slot_ahead, c->col_end[LT_COL_SLOT], &s))
		return; /* the column ends (or is corrupt: the reader says so) */
	if (s < LT_MODEL_MAX_LIVE)
		__builtin_prefetch(&m->slot_addr[s]);
	c->ahead_ring[(c->ahead_head + c->ahead_n) & 15] = (uint32_t)s;
	if (++c->ahead_n <= LT__SLOT_AHEAD / 2)
		return;
	uint32_t mid = c->ahead_ring[c->ahead_head];
	c->ahead_head = (c->ahead_head + 1) & 15;
	c->ahead_n--;
	if (mid >= LT_MODEL_MAX_LIVE)
		return;
	uint64_t addr = m->slot_addr[mid];
	if (addr)
		__builtin_prefetch(&m->table[lt_model_hash(addr, m->cap)]);
}

int lt__columns_begin(lt__columns_t *c, const uint8_t *in, size_t len,
		      char *err, size_t err_len)
{
	if (!c->model && model_start(c))
		return -ENOMEM;
	const uint8_t *p = in, *end = in + len;
	uint64_t sizes[LT_COL_COUNT], total = 0;
	c->active = false;
	for (int k = 0; k < LT_COL_COUNT; k++) {
		if (lt_get_uv(&p, end, &sizes[k]) || sizes[k] > len)
			FAIL("columnar block: bad column length");
		total += sizes[k];
	}
	if (total != (uint64_t)(end - p))
		FAIL("columnar block: columns add up to %llu bytes, block has %llu",
		     (unsigned long long)total, (unsigned long long)(end - p));
	for (int k = 0; k < LT_COL_COUNT; k++) {
		c->col[k] = p;
		p += sizes[k];
		c->col_end[k] = p;
	}
	c->active = true;
	c->slot_ahead = c->col[LT_COL_SLOT];
	c->ahead_n = c->ahead_head = 0;
	for (int i = 0; i < LT__SLOT_AHEAD; i++)
		prefetch_slots(c);
	return 0;
}

const uint8_t *lt__columns_first_record(const lt__columns_t *c, size_t *len)
{
	if (!c->active || c->col[LT_COL_OPS] == c->col_end[LT_COL_OPS] ||
	    *c->col[LT_COL_OPS] != LT_OP_RECORD)
		return NULL;
	*len = record_length(c->col[LT_COL_META], c->col_end[LT_COL_META]);
	return *len ? c->col[LT_COL_META] : NULL;
}

int lt__columns_next(lt__columns_t *c, uint64_t *prev, lt__column_op_t *op,
		     char *err, size_t err_len)
{
	const uint8_t **col = c->col, *const *col_end = c->col_end;
	lt_model_t *m = c->model;
	while (c->active && col[LT_COL_OPS] < col_end[LT_COL_OPS]) {
		uint8_t code = *col[LT_COL_OPS]++;
		uint64_t stack = 0, size = 0, field = 0, slot = 0, addr = 0;
		if (code < LT_OP_ALLOC_HIT + LT_MODEL_MRU || code == LT_OP_ALLOC_MISS) {
			if (lt_get_uv(&col[LT_COL_STACK], col_end[LT_COL_STACK], &stack) ||
			    lt_get_uv(&col[LT_COL_SIZE], col_end[LT_COL_SIZE], &size))
				FAIL("columnar block: allocation column ends early");
			uint32_t bin = lt_model_bin(size);
			if (code == LT_OP_ALLOC_MISS) {
				if (lt_get_uv(&col[LT_COL_ADDR], col_end[LT_COL_ADDR], &field))
					FAIL("columnar block: address column ends early");
				addr = lt_addr_from_field(field, *prev);
			} else {
				unsigned k = code - LT_OP_ALLOC_HIT;
				addr = lt_model_predicted(m, size, k);
				if (!addr && c->lenient) {
					c->skipped++;
					continue;
				}
				if (!addr)
					FAIL("columnar block: allocation predicts an empty "
					     "model entry");
				/* The writer's lt_model_alloc() found addr k-th in
				 * the list (the op says so: no need to search it):
				 * the first time there, as the list is the same. A
				 * miss was in no place of it. */
				lt_model_mru_take(m, bin, k);
			}
			lt_model_insert(m, addr, bin);
			op->type = LT_REC_ALLOC;
			op->stack_id = stack;
			op->size = size;
			op->addr = *prev = addr;
			return 1;
		} else if (code == LT_OP_FREE_SLOT || code == LT_OP_FREE_ADDR) {
			if (code == LT_OP_FREE_SLOT) {
				if (lt_get_uv(&col[LT_COL_SLOT], col_end[LT_COL_SLOT], &slot))
					FAIL("columnar block: slot column ends early");
				prefetch_slots(c);
				addr = lt_model_slot_addr(m, slot);
				if (!addr && c->lenient) {
					c->skipped++;
					continue;
				}
				if (!addr)
					FAIL("columnar block: free of model slot %llu, which "
					     "is not live", (unsigned long long)slot);
			} else {
				if (lt_get_uv(&col[LT_COL_ADDR], col_end[LT_COL_ADDR], &field))
					FAIL("columnar block: address column ends early");
				addr = lt_addr_from_field(field, *prev);
			}
			uint32_t ignored;
			lt_model_free(m, addr, &ignored);
			op->type = LT_REC_FREE;
			op->addr = *prev = addr;
			return 1;
		} else if (code == LT_OP_RECORD) {
			const uint8_t *r = col[LT_COL_META];
			size_t n = record_length(r, col_end[LT_COL_META]);
			if (!n)
				FAIL("columnar block: bad record in the META column");
			if (*r == LT_REC_REALLOC) {
				const uint8_t *q = r + 1;
				uint64_t nf = 0, of = 0;
				lt_get_uv(&q, r + n, &stack);
				lt_get_uv(&q, r + n, &size);
				lt_get_uv(&q, r + n, &nf);
				lt_get_uv(&q, r + n, &of);
				addr = lt_addr_from_field(nf, *prev);
				uint64_t old = lt_addr_from_field(of, addr);
				uint32_t ignored;
				lt_model_free(m, old, &ignored);
				lt_model_alloc(m, addr, size);
			}
			col[LT_COL_META] += n;
			op->type = LT_OP_RECORD;
			op->record = r;
			op->record_len = n;
			return 1;
		} else {
			FAIL("columnar block: unknown op 0x%02x", code);
		}
	}
	if (!c->active)
		return 0;
	for (int k = 0; k < LT_COL_COUNT; k++)
		if (col[k] != col_end[k])
			FAIL("columnar block: column %d has %llu bytes left over", k,
			     (unsigned long long)(col_end[k] - col[k]));
	c->active = false;
	return 0;
}
