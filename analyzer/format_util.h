/* SPDX-License-Identifier: MIT */
/* Small text helpers shared by the report formats. */
#ifndef LT_ANALYZER_FORMAT_UTIL_H
#define LT_ANALYZER_FORMAT_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* "1.5 KiB" style size (B, KiB, MiB, GiB, TiB) into buf. */
const char *lt__human_size(uint64_t bytes, char *buf, size_t len);
/* "+1.5 MiB", "-512 B" or "0 B": a size difference, into buf. */
const char *lt__signed_size(int64_t v, char *buf, size_t len);
/* "1,234,567" into buf. */
const char *lt__thousands(uint64_t v, char *buf, size_t len);
const char *lt__exit_kind_name(uint64_t kind);
/* "SIGSEGV" for an exit status of 128 + SIGSEGV, "a signal" when there is
 * no such signal. */
const char *lt__signal_name(uint64_t exit_status);

/* A C++ name with every template argument list emptied, as heaptrack
 * shows them: "std::vector<int, std::allocator<int> >::push_back(int
 * const&)" becomes "std::vector<>::push_back(int const&)". operator<,
 * operator<<, operator<= and operator<=> stay. Returns name itself when
 * there is nothing to shorten (or the brackets do not balance), else buf
 * (cut with "..." when len is too small). */
const char *lt__short_name(const char *name, char *buf, size_t len);

/* Parses a non-negative decimal count (a --top argument), saturating at
 * SIZE_MAX. Returns 0, or -1 when arg is not such a number. */
int lt__parse_count(const char *arg, size_t *out);

#endif
