/* SPDX-License-Identifier: MIT */
/* Small text helpers shared by the report formats. */
#include <errno.h>
#include <stdlib.h>
#include "format_util.h"

#include <inttypes.h>
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
	default:
		return "unknown";
	}
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
