#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Parity with valgrind memcheck: runs deterministic single-threaded programs
under valgrind (--run-libc-freeres=no --run-cxx-freeres=no) and under the
shim, and checks that leaktrace-report's summary equals memcheck's HEAP
SUMMARY exactly: allocations, frees, bytes allocated, and bytes and blocks
in use at exit. Exit 77 (skip) when valgrind is not installed.

usage: parity.py SHIM REPORT PROGRAM[|ARG...] ...
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

VG_USE = re.compile(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks")
VG_TOTAL = re.compile(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated")


def num(s):
    return int(s.replace(",", ""))


def valgrind_summary(argv):
    p = subprocess.run(["valgrind", "--run-libc-freeres=no", "--run-cxx-freeres=no"] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)
    use, total = VG_USE.search(p.stderr), VG_TOTAL.search(p.stderr)
    if not use or not total:
        raise RuntimeError("no HEAP SUMMARY from valgrind for %s:\n%s" % (argv, p.stderr[-2000:]))
    return {"allocations": num(total.group(1)), "frees": num(total.group(2)),
            "bytes_allocated": num(total.group(3)), "leaked_bytes": num(use.group(1)),
            "leaked_blocks": num(use.group(2))}


def leaktrace_summary(shim, report, argv, tmp):
    env = dict(os.environ, LD_PRELOAD=shim,
               LEAKTRACE_OUTPUT=os.path.join(tmp, "parity.%p.bin"))
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=300, check=False)
    traces = sorted(f for f in os.listdir(tmp) if f.startswith("parity."))
    if len(traces) != 1:
        raise RuntimeError("expected one trace for %s, found %s" % (argv, traces))
    path = os.path.join(tmp, traces[0])
    out = subprocess.run([report, "--format=json", path], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    os.unlink(path)
    s = json.loads(out)["summary"]
    return {k: s[k] for k in ("allocations", "frees", "bytes_allocated", "leaked_bytes",
                              "leaked_blocks")}


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    if not shutil.which("valgrind"):
        print("valgrind is not installed: skipped")
        return 77
    shim, report, programs = sys.argv[1], sys.argv[2], sys.argv[3:]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for spec in programs:
            argv = spec.split("|")
            if not os.path.exists(argv[0]):
                print("SKIP %s: not installed" % argv[0])
                continue
            vg = valgrind_summary(argv)
            lt = leaktrace_summary(shim, report, argv, tmp)
            same = vg == lt
            failed += not same
            print("%s %s\n  memcheck:  %s\n  leaktrace: %s" % ("OK  " if same else "FAIL",
                                                              " ".join(argv), vg, lt))
    print("%d passed, %d failed" % (len(programs) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
