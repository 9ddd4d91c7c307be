/* SPDX-License-Identifier: MIT */
/* `leaktrace-report --dump`: every record of a trace as one line of text,
 * in file order. End-to-end tests read this text, so its form is stable. */
#ifndef LT_ANALYZER_DUMP_H
#define LT_ANALYZER_DUMP_H

#include <stdio.h>

#include "decode.h"

/* Prints every record d yields to out, one per line (forms in dump.c).
 * Returns 0 when the trace was read to its end (complete or truncated) or
 * the decoder's negative errno; the caller prints the error message. */
int lt__dump_trace(lt__decoder_t *d, FILE *out);

#endif /* LT_ANALYZER_DUMP_H */
