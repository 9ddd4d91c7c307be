/* SPDX-License-Identifier: MIT */
/* The subcommands of leaktrace-report besides the report: each parses its
 * own options (argv[0] is the subcommand's name) and returns the exit
 * status. */
#ifndef LT_ANALYZER_COMMANDS_H
#define LT_ANALYZER_COMMANDS_H

/* snapshot TRACE [--at POINT] [-o FILE]: writes a snapshot file. */
int lt__cmd_snapshot(int argc, char **argv);
/* stats SNAPSHOT|TRACE [--by ...] [--cumulative] [--top N]. */
int lt__cmd_stats(int argc, char **argv);
/* diff OLD NEW | diff TRACE --from A --to B, with CI thresholds: exit 0
 * within them, 1 over them, 2 on bad input. */
int lt__cmd_diff(int argc, char **argv);
/* growth TRACE [--windows N]: live bytes per call site over time with a
 * verdict (growing, plateau, transient, stable). */
int lt__cmd_growth(int argc, char **argv);

#endif
