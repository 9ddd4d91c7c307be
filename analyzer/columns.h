/* SPDX-License-Identifier: MIT */
/* Reading of columnar blocks, op by op, with the heap model (columns.c). */
#ifndef LT_ANALYZER_COLUMNS_H
#define LT_ANALYZER_COLUMNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leaktrace/format.h"
#include "leaktrace/model.h"

/* The decoder's side of the heap model, and a cursor over the current
 * block's columns. One per decoder: the model spans every block of a
 * trace, in file order. */
typedef struct lt__columns_s {
	lt_model_t *model;
	const uint8_t *col[LT_COL_COUNT], *col_end[LT_COL_COUNT];
	bool active; /* a block's ops are being read */
	/* Frees by slot look their block up in the model's tables, which
	 * outgrow the caches: a second cursor reads the SLOT column
	 * LT__SLOT_AHEAD values ahead, to start loading what those frees
	 * will touch (columns.c, prefetch_slots). */
	const uint8_t *slot_ahead;
	uint32_t ahead_ring[16]; /* the slots read ahead, a ring */
	unsigned ahead_n; /* slots in it */
	unsigned ahead_head;
	/* Set when the blocks that built the model are missing (a fork
	 * child whose parent trace is gone): events the model cannot resolve
	 * are skipped and counted instead of being corruption. */
	bool lenient;
	uint64_t skipped;
} lt__columns_t;

/* One op of a columnar block, as lt__columns_next() yields it. */
typedef struct lt__column_op_s {
	int type; /* LT_REC_ALLOC, LT_REC_FREE, or LT_OP_RECORD */
	uint64_t stack_id, size, addr; /* ALLOC: all; FREE: addr */
	const uint8_t *record; /* RECORD: one canonical record (not ALLOC */
	size_t record_len; /* or FREE) of the META column */
} lt__column_op_t;

int lt__columns_init(lt__columns_t *c);
void lt__columns_destroy(lt__columns_t *c);

/* Starts reading the len bytes of a decompressed columnar payload (which
 * must stay in place while it is read). Returns 0, -ENOMEM, or -EBADMSG
 * with a message in err on corrupt input. Every columnar block must be
 * read to its end, in file order: the model follows the ops. */
int lt__columns_begin(lt__columns_t *c, const uint8_t *in, size_t len,
		      char *err, size_t err_len);

/* Reads the next op of the block into *op, updating the model (a REALLOC
 * in the META column included). prev is the canonical stream's previous
 * address (format.h), which addresses are relative to; it is updated for
 * ALLOC and FREE, and left to the caller for RECORD. Returns 1, 0 at the
 * end of the block (then c->active is false), or -EBADMSG with a message
 * in err. */
int lt__columns_next(lt__columns_t *c, uint64_t *prev, lt__column_op_t *op,
		     char *err, size_t err_len);

/* The first canonical record of the block just begun when its first op is
 * a RECORD (*len bytes at the returned pointer), else NULL. Reads nothing. */
const uint8_t *lt__columns_first_record(const lt__columns_t *c, size_t *len);

#endif /* LT_ANALYZER_COLUMNS_H */
