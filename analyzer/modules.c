/* SPDX-License-Identifier: MIT */
/* Owned copies of a trace's module maps, by generation (see modules.h). */
#define _GNU_SOURCE
#include "modules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

long lt__modmaps_add(lt__modmaps_t *mm, const lt__record_t *rec)
{
	if (mm->count == mm->cap) {
		size_t ncap = mm->cap ? mm->cap * 2 : 4;
		lt__modmap_t *m = realloc(mm->maps, ncap * sizeof *m);
		if (!m)
			return -ENOMEM;
		mm->maps = m;
		mm->cap = ncap;
	}
	lt__modmap_t *map = &mm->maps[mm->count];
	map->generation = rec->u.modules.generation;
	map->count = 0;
	map->modules = calloc(rec->u.modules.count ? rec->u.modules.count : 1,
			      sizeof *map->modules);
	if (!map->modules)
		return -ENOMEM;
	mm->count++;
	for (uint64_t i = 0; i < rec->u.modules.count; i++) {
		const lt__module_rec_t *src = &rec->u.modules.modules[i];
		lt__module_t *dst = &map->modules[map->count];
		dst->path = strndup(src->path.ptr ? src->path.ptr : "", src->path.len);
		dst->build_id = malloc(src->build_id_len ? src->build_id_len : 1);
		if (!dst->path || !dst->build_id) {
			free(dst->path);
			free(dst->build_id);
			return -ENOMEM;
		}
		if (src->build_id_len)
			memcpy(dst->build_id, src->build_id, src->build_id_len);
		dst->build_id_len = src->build_id_len;
		dst->load_bias = src->load_bias;
		dst->lo = src->lo;
		dst->hi = src->hi;
		map->count++;
	}
	return (long)mm->count - 1;
}

long lt__modmaps_current(const lt__modmaps_t *mm)
{
	return (long)mm->count - 1;
}

const lt__module_t *lt__modmap_find(const lt__modmaps_t *mm, long map, uint64_t addr)
{
	if (map < 0 || (size_t)map >= mm->count)
		return NULL;
	const lt__modmap_t *m = &mm->maps[map];
	for (size_t i = 0; i < m->count; i++)
		if (addr >= m->modules[i].lo && addr < m->modules[i].hi)
			return &m->modules[i];
	return NULL;
}

void lt__modmaps_free(lt__modmaps_t *mm)
{
	for (size_t i = 0; i < mm->count; i++) {
		for (size_t j = 0; j < mm->maps[i].count; j++) {
			free(mm->maps[i].modules[j].path);
			free(mm->maps[i].modules[j].build_id);
		}
		free(mm->maps[i].modules);
	}
	free(mm->maps);
	memset(mm, 0, sizeof *mm);
}
