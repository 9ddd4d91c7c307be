/* SPDX-License-Identifier: MIT */
/* The module maps of a trace (MODULES records), kept by generation so that
 * each stack is symbolized against the map that was current when it was
 * recorded. */
#ifndef LT_ANALYZER_MODULES_H
#define LT_ANALYZER_MODULES_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"

typedef struct lt__module_s {
	char *path;
	uint64_t load_bias, lo, hi;
	uint8_t *build_id;
	size_t build_id_len;
} lt__module_t;

typedef struct lt__modmap_s {
	uint64_t generation;
	size_t count;
	lt__module_t *modules;
} lt__modmap_t;

typedef struct lt__modmaps_s {
	lt__modmap_t *maps; /* in file order; the last is current */
	size_t count, cap;
} lt__modmaps_t;

/* Copies a MODULES record. Returns the index of the new map or -ENOMEM. */
long lt__modmaps_add(lt__modmaps_t *mm, const lt__record_t *rec);

/* The index of the current map (the newest), or -1 when there is none. */
long lt__modmaps_current(const lt__modmaps_t *mm);

/* The module of map index `map` containing addr, or NULL. */
const lt__module_t *lt__modmap_find(const lt__modmaps_t *mm, long map, uint64_t addr);

void lt__modmaps_free(lt__modmaps_t *mm);

#endif
