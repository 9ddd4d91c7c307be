/* SPDX-License-Identifier: MIT */
/* Expands a columnar block (format.h, "Columnar blocks") back into the
 * canonical record stream that the rest of the decoder reads, running the
 * same heap model (leaktrace/model.h) the shim's writer ran. */
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
	free(c->out);
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
		return -EBADMSG;                           \
	} while (0)

int lt__columns_expand(lt__columns_t *c, const uint8_t *in, size_t len,
		       const uint8_t **out, size_t *out_len, char *err, size_t err_len)
{
	if (!c->model && model_start(c))
		return -ENOMEM;
	const uint8_t *p = in, *end = in + len;
	const uint8_t *col[LT_COL_COUNT], *col_end[LT_COL_COUNT];
	uint64_t sizes[LT_COL_COUNT], total = 0;
	for (int k = 0; k < LT_COL_COUNT; k++) {
		if (lt_get_uv(&p, end, &sizes[k]) || sizes[k] > len)
			FAIL("columnar block: bad column length");
		total += sizes[k];
	}
	if (total != (uint64_t)(end - p))
		FAIL("columnar block: columns add up to %llu bytes, block has %llu",
		     (unsigned long long)total, (unsigned long long)(end - p));
	for (int k = 0; k < LT_COL_COUNT; k++) {
		col[k] = p;
		p += sizes[k];
		col_end[k] = p;
	}
	/* Each op expands to at most 1 + 3 varints; RECORD ops copy META. */
	size_t need = sizes[LT_COL_OPS] * (1 + 3 * LT_UV_MAX) + sizes[LT_COL_META] + 1;
	if (need > c->out_cap) {
		uint8_t *n = realloc(c->out, need);
		if (!n)
			return -ENOMEM;
		c->out = n;
		c->out_cap = need;
	}
	uint8_t *o = c->out;
	uint64_t prev = 0; /* the canonical stream's previous address */
	lt_model_t *m = c->model;
	const uint8_t **ops = &col[LT_COL_OPS];
	while (*ops < col_end[LT_COL_OPS]) {
		uint8_t op = *(*ops)++;
		uint64_t stack = 0, size = 0, field = 0, slot = 0, addr = 0;
		if (op < LT_OP_ALLOC_HIT + LT_MODEL_MRU || op == LT_OP_ALLOC_MISS) {
			if (lt_get_uv(&col[LT_COL_STACK], col_end[LT_COL_STACK], &stack) ||
			    lt_get_uv(&col[LT_COL_SIZE], col_end[LT_COL_SIZE], &size))
				FAIL("columnar block: allocation column ends early");
			if (op == LT_OP_ALLOC_MISS) {
				if (lt_get_uv(&col[LT_COL_ADDR], col_end[LT_COL_ADDR], &field))
					FAIL("columnar block: address column ends early");
				addr = lt_addr_from_field(field, prev);
			} else {
				addr = lt_model_predicted(m, size, op - LT_OP_ALLOC_HIT);
				if (!addr && c->lenient) {
					c->skipped++;
					continue;
				}
				if (!addr)
					FAIL("columnar block: allocation predicts an empty "
					     "model entry");
			}
			lt_model_alloc(m, addr, size);
			if (stack < LT_REC_ALLOC_SMALL_COUNT) {
				*o++ = (uint8_t)(LT_REC_ALLOC_SMALL + stack);
			} else {
				*o++ = LT_REC_ALLOC;
				o = lt_put_uv(o, stack);
			}
			o = lt_put_uv(o, size);
			o = lt_put_uv(o, lt_addr_field(addr, prev));
			prev = addr;
		} else if (op == LT_OP_FREE_SLOT || op == LT_OP_FREE_ADDR) {
			if (op == LT_OP_FREE_SLOT) {
				if (lt_get_uv(&col[LT_COL_SLOT], col_end[LT_COL_SLOT], &slot))
					FAIL("columnar block: slot column ends early");
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
				addr = lt_addr_from_field(field, prev);
			}
			uint32_t ignored;
			lt_model_free(m, addr, &ignored);
			*o++ = LT_REC_FREE;
			o = lt_put_uv(o, lt_addr_field(addr, prev));
			prev = addr;
		} else if (op == LT_OP_RECORD) {
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
				addr = lt_addr_from_field(nf, prev);
				uint64_t old = lt_addr_from_field(of, addr);
				uint32_t ignored;
				lt_model_free(m, old, &ignored);
				lt_model_alloc(m, addr, size);
				prev = addr;
			}
			memcpy(o, r, n);
			o += n;
			col[LT_COL_META] += n;
		} else {
			FAIL("columnar block: unknown op 0x%02x", op);
		}
	}
	for (int k = 0; k < LT_COL_COUNT; k++)
		if (col[k] != col_end[k])
			FAIL("columnar block: column %d has %llu bytes left over", k,
			     (unsigned long long)(col_end[k] - col[k]));
	*out = c->out;
	*out_len = (size_t)(o - c->out);
	return 0;
}
