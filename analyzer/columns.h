/* SPDX-License-Identifier: MIT */
/* Expansion of columnar blocks into canonical records (see columns.c). */
#ifndef LT_ANALYZER_COLUMNS_H
#define LT_ANALYZER_COLUMNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leaktrace/model.h"

/* The decoder's side of the heap model, plus the expansion buffer. One per
 * decoder: the model spans every block of a trace, in file order. */
typedef struct lt__columns_s {
	lt_model_t *model;
	uint8_t *out;
	size_t out_cap;
	/* Set when the blocks that built the model are missing (a fork
	 * child whose parent trace is gone): events the model cannot resolve
	 * are skipped and counted instead of being corruption. */
	bool lenient;
	uint64_t skipped;
} lt__columns_t;

int lt__columns_init(lt__columns_t *c);
void lt__columns_destroy(lt__columns_t *c);

/* Expands the len bytes of a decompressed columnar payload into canonical
 * records at *out (valid until the next call). Returns 0, -ENOMEM, or
 * -EBADMSG with a message in err on corrupt input. Must be called for
 * every columnar block in file order. */
int lt__columns_expand(lt__columns_t *c, const uint8_t *in, size_t len,
		       const uint8_t **out, size_t *out_len, char *err, size_t err_len);

#endif /* LT_ANALYZER_COLUMNS_H */
