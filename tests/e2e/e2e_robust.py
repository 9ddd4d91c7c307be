#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of the shim inside hostile programs: daemons that close
every descriptor, address-space limits, crashes by a fatal signal, and
libraries loaded by a relative path. Each test runs a fixture under
LD_PRELOAD in a child process and checks the program's own output and
files against a run without the shim, and the trace's exact counts.

Usage: e2e_robust.py GROUP [unittest args]; the environment is the one
e2e.py documents (meson test e2e_GROUP sets it). Exit 77 when every test of
the group was skipped.
"""
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402  (the shared runner, decoder and base class)
from e2e import E2E, fixture, run  # noqa: E402


def sizes(tr, kind):
    """{size: count} of the events of this kind in every thread."""
    out = {}
    for s in tr.threads.values():
        for i in range(len(s)):
            k, size, _, _, _ = s.event(i)
            if k == kind:
                out[size] = out.get(size, 0) + 1
    return out


# ---------------------------------------------------------------- descriptors


class daemon_fds(E2E):
    """fx_daemon closes descriptors it never opened, then writes its own
    files: they must hold exactly what the program wrote, with the same
    numbers as without the shim, and the trace must be complete."""

    def check(self, mode):
        native_dir = os.path.join(self.tmp, "native")
        traced_dir = os.path.join(self.tmp, "traced")
        os.mkdir(native_dir)
        os.mkdir(traced_dir)
        base = run([fixture("fx_daemon"), mode, native_dir], traced=False)
        self.assertEqual(base.returncode, 0, base.stderr)
        p = self.traced([fixture("fx_daemon"), mode, traced_dir])
        self.assertOk(p)
        self.assertEqual(p.stderr, "", "the shim said something")
        if mode != "none":
            self.assertEqual(p.stdout, base.stdout, "the program's descriptors differ")
        for k in range(8):
            with open(os.path.join(traced_dir, "f%d" % k), "rb") as f:
                self.assertEqual(f.read(), b"user data\n" * 10,
                                 "f%d holds more than the program wrote" % k)
        tr = self.only_trace()
        self.assertEqual(sizes(tr, "alloc").get(24), 1000)
        self.assertEqual(sizes(tr, "alloc").get(56), 20000)
        self.assertEqual(sum(sizes(tr, "free").values()), 20000)
        self.assertEndMatchesEvents(tr, "normal", 0)
        return tr

    def test_close_loop(self):
        self.check("loop")

    def test_closefrom(self):
        self.check("closefrom")

    def test_close_range(self):
        self.check("close_range")

    def test_raw_close_range_syscall(self):
        # No interposition sees this one: the shim notices before its next
        # write that the number is no longer its file and reopens the
        # trace by path.
        self.check("raw")

    def test_dup2_over_every_descriptor(self):
        self.check("dup2")

    def test_nothing_closed(self):
        self.check("none")


def main():
    group = sys.argv[1] if len(sys.argv) > 1 else ""
    cls = globals().get(group)
    if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)):
        print("unknown group %r" % group)
        return 2
    if not (e2e.SHIM and e2e.REPORT and e2e.FIXTURES):
        print("LT_SHIM, LT_REPORT and LT_FIXTURES must be set (meson test does)")
        return 2
    loader = unittest.defaultTestLoader
    names = sys.argv[2:]
    suite = (loader.loadTestsFromNames(["%s.%s" % (group, n) for n in names],
                                       sys.modules[__name__]) if names
             else loader.loadTestsFromTestCase(cls))
    res = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    if not res.wasSuccessful():
        return 1
    if res.testsRun and len(res.skipped) == res.testsRun:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
