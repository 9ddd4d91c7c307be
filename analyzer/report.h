/* SPDX-License-Identifier: MIT */
/* What every report format gets: the replayed trace, its call sites and
 * the options that shape the output. One file per format implements it. */
#ifndef LT_ANALYZER_REPORT_H
#define LT_ANALYZER_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "callsites.h"
#include "merge.h"
#include "replay.h"

/* A trace file of a child process (fork) or of the exec'd image, found
 * next to the trace. */
typedef struct lt__child_trace_s {
	char *path;
	uint64_t pid;
	bool exec; /* the same pid after exec */
	char *exe;
} lt__child_trace_t;

typedef struct lt__report_s {
	const char *trace_path;
	lt__replay_t *replay;
	lt__callsites_t *sites;
	bool truncated;
	uint64_t truncated_at;
	const char *warnings; /* lines, or "" */
	lt__merge_stats_t merge;
	const lt__child_trace_t *children;
	size_t nchildren;
	size_t top; /* entries per section, 0 = all (leaks in JSON are all listed) */
	bool color;
	bool show_hidden; /* --show-hidden: runtime blocks listed as leaks too */
	bool full_names; /* --full-names: C++ template arguments in text */
	enum lt__metric metric; /* folded stacks' weight */
} lt__report_t;

/* Each returns 0 or a negative errno. They may sort r->sites. */
int lt__report_text(FILE *out, const lt__report_t *r);
int lt__report_json(FILE *out, const lt__report_t *r);
int lt__report_folded(FILE *out, const lt__report_t *r);

/* The frames of a stack as the JSON report shows them (DESIGN.md's frame
 * shape), for the other commands' JSON. */
struct json_t;
struct json_t *lt__frames_json(const lt__frame_t *const *frames, size_t n);

/* Looks in the directory of trace_path for traces whose process is a
 * child of (or the exec'd image of) process pid. Returns 0 or -ENOMEM;
 * free with lt__children_free(). */
int lt__children_find(const char *trace_path, uint64_t pid, uint64_t start_ns,
		      lt__child_trace_t **out, size_t *n);
void lt__children_free(lt__child_trace_t *c, size_t n);

#endif
