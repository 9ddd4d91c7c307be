/* SPDX-License-Identifier: MIT */
/* The decode -> merge -> replay pipeline over one trace, steppable so that
 * a caller can stop at a marker, an epoch or the end and inspect the
 * replay (snapshots), or just run it to the end (reports). */
#ifndef LT_ANALYZER_ANALYSIS_H
#define LT_ANALYZER_ANALYSIS_H

#include <stdio.h>

#include "decode.h"
#include "merge.h"
#include "replay.h"

typedef struct lt__analysis_s {
	lt__decoder_t *dec;
	lt__merge_t *merge;
	lt__replay_t *replay;
} lt__analysis_t;

/* Opens path (or, when f is non-NULL, the stream f named path) and sets up
 * the pipeline. Returns 0 or a negative errno; on error the message is in
 * lt__decoder_error(a->dec) when a->dec is set. Close with
 * lt__analysis_close() in both cases. */
int lt__analysis_open(lt__analysis_t *a, const char *path, FILE *f,
		      const lt__merge_opts_t *mopts);

/* Applies the next item to the replay and returns it in *item (for the
 * caller to look at: a MARKER event, say). Returns 1, 0 at the end, or a
 * negative errno. */
int lt__analysis_step(lt__analysis_t *a, lt__merged_t *item);

/* Runs to the end. progress, when non-NULL, is called now and then with
 * the bytes read and the file size. Returns 0 or a negative errno. */
int lt__analysis_run(lt__analysis_t *a,
		     void (*progress)(void *ctx, uint64_t done, uint64_t total),
		     void *ctx);

/* Closes the decoder and the merge once the run is over, keeping the
 * replay (a->dec and a->merge become NULL): their memory is not needed to
 * report. Anything wanted from them (warnings, merge statistics) must be
 * copied first. */
void lt__analysis_drop_input(lt__analysis_t *a);

void lt__analysis_close(lt__analysis_t *a);

#endif
