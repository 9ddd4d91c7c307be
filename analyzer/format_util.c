/* SPDX-License-Identifier: MIT */
/* Small text helpers shared by the report formats. */
#define _GNU_SOURCE /* sigabbrev_np */
#include <errno.h>
#include <stdlib.h>
#include "format_util.h"

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "leaktrace/format.h"

const char *lt__human_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

const char *lt__signed_size(int64_t v, char *buf, size_t len)
{
	char h[48];
	/* -(v + 1) + 1 keeps INT64_MIN defined. */
	lt__human_size(v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v, h, sizeof h);
	snprintf(buf, len, "%s%s", v > 0 ? "+" : v < 0 ? "-" : "", h);
	return buf;
}

const char *lt__thousands(uint64_t v, char *buf, size_t len)
{
	char digits[32];
	int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
	size_t o = 0;
	for (int i = 0; i < n && o + 2 < len; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

const char *lt__short_name(const char *name, char *buf, size_t len)
{
	if (!name || !strchr(name, '<') || len < 4)
		return name;
	size_t n = 0;
	int depth = 0;
	bool cut = false;
	for (const char *p = name; *p; p++) {
		bool keep = depth == 0;
		if (*p == '<' && p - name >= 8 && strncmp(p - 8, "operator", 8) == 0) {
			/* The operator's own brackets: copy them whole. */
			while (*p == '<' || *p == '=' || *p == '>') {
				if (keep && n + 1 < len)
					buf[n++] = *p;
				p++;
			}
			p--;
			continue;
		}
		if (*p == '<') {
			keep = depth++ == 0;
		} else if (*p == '>' && depth > 0) {
			keep = --depth == 0;
		}
		if (!keep)
			continue;
		if (n + 4 >= len) {
			cut = true;
			break;
		}
		buf[n++] = *p;
	}
	if (depth != 0)
		return name; /* unbalanced: not a template list after all */
	if (cut) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = 0;
	return buf;
}

const char *lt__exit_kind_name(uint64_t kind)
{
	switch (kind) {
	case LT_EXIT_NORMAL:
		return "exit";
	case LT_EXIT_UNDERSCORE:
		return "_exit";
	case LT_EXIT_ABORT:
		return "abort";
	case LT_EXIT_EXEC:
		return "exec";
	case LT_EXIT_SIGNAL:
		return "signal";
	default:
		return "unknown";
	}
}

const char *lt__signal_name(uint64_t exit_status)
{
	static __thread char buf[16];
	const char *abbrev = exit_status > 128 && exit_status < 128 + 65
				 ? sigabbrev_np((int)(exit_status - 128))
				 : NULL;
	if (!abbrev)
		return "a signal";
	snprintf(buf, sizeof buf, "SIG%s", abbrev);
	return buf;
}

int lt__parse_count(const char *arg, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(arg, &end, 10);
	if (errno || *end || end == arg || arg[0] == '-')
		return -1;
	*out = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
	return 0;
}
