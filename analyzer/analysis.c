/* SPDX-License-Identifier: MIT */
/* The decode -> merge -> replay pipeline (see analysis.h). */
#include "analysis.h"

#include <string.h>

int lt__analysis_open(lt__analysis_t *a, const char *path, FILE *f,
		      const lt__merge_opts_t *mopts)
{
	memset(a, 0, sizeof *a);
	lt__decode_opts_t dopts = {.follow_parent = true, .read_ahead = true};
	int rc = f ? lt__decoder_open_stream(&a->dec, f, path, NULL, &dopts)
		   : lt__decoder_open(&a->dec, path, &dopts);
	if (rc)
		return rc;
	rc = lt__replay_new(&a->replay);
	if (rc)
		return rc;
	rc = lt__merge_new(&a->merge, a->dec, lt__replay_is_live, a->replay, mopts);
	if (rc)
		return rc;
	lt__merge_set_prefetch(a->merge, lt__replay_prefetch);
	return 0;
}

int lt__analysis_step(lt__analysis_t *a, lt__merged_t *item)
{
	int rc = lt__merge_next(a->merge, item);
	if (rc != 1)
		return rc;
	rc = lt__replay_apply(a->replay, item);
	return rc ? rc : 1;
}

int lt__analysis_run(lt__analysis_t *a,
		     void (*progress)(void *ctx, uint64_t done, uint64_t total),
		     void *ctx)
{
	lt__merged_t item;
	int rc;
	uint64_t n = 0;
	uint64_t next_progress = 1u << 20;
	for (;;) {
		const lt__plain_t *ev;
		size_t k = lt__merge_plain_run(a->merge, &ev);
		if (k) {
			rc = lt__replay_plain(a->replay, ev, k);
			if (rc)
				return rc;
			lt__merge_plain_done(a->merge, ev, k);
			n += k;
		} else {
			rc = lt__analysis_step(a, &item);
			if (rc != 1)
				return rc;
			n++;
		}
		if (progress && n >= next_progress) {
			next_progress = n + (1u << 20);
			progress(ctx, lt__decoder_position(a->dec), lt__decoder_size(a->dec));
		}
	}
}

void lt__analysis_drop_input(lt__analysis_t *a)
{
	lt__merge_free(a->merge);
	a->merge = NULL;
	lt__decoder_close(a->dec);
	a->dec = NULL;
}

void lt__analysis_close(lt__analysis_t *a)
{
	lt__merge_free(a->merge);
	lt__replay_free(a->replay);
	lt__decoder_close(a->dec);
	memset(a, 0, sizeof *a);
}
