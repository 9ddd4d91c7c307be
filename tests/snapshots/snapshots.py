#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of `leaktrace-report snapshot | stats | diff | growth`.

Each group runs fixture programs (tests/snapshots/fixtures, built without
the shim) or CPython scripts under LD_PRELOAD=libleaktrace.so in a child
process with its own temporary directory, then checks the subcommands'
output: exact block counts and byte sizes where the program fixes them,
growth verdicts, rates within 10% of the true rate, exit statuses, and the
README's CI recipe run exactly as written.

Usage: snapshots.py GROUP [unittest args]   (GROUP names a TestCase below;
the meson test snapshots_GROUP runs one). Environment: LT_SHIM, LT_REPORT,
LT_FIXTURES, LT_FIXTURE_SRC, LT_README. Exit 77 when every test of the
group was skipped.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

SHIM = os.environ.get("LT_SHIM", "")
REPORT = os.environ.get("LT_REPORT", "")
FIXTURES = os.environ.get("LT_FIXTURES", "")
FIXTURE_SRC = os.environ.get("LT_FIXTURE_SRC", "")
README = os.environ.get("LT_README", "")
PYTHON = "/usr/bin/python3"


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("LEAKTRACE_")}
    env.update(extra or {})
    return env


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lt-snap-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def trace(self, argv, env=None, name="t"):
        """Runs argv under the shim; returns the path of its trace."""
        e = clean_env(env)
        e["LD_PRELOAD"] = SHIM
        e["LEAKTRACE_OUTPUT"] = self.path(name + ".%p.bin")
        p = subprocess.run(argv, env=e, cwd=self.dir, timeout=60,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        traces = glob.glob(self.path(name + ".*.bin"))
        self.assertEqual(len(traces), 1, traces)
        return traces[0]

    def report(self, *args, status=0):
        p = subprocess.run([REPORT] + [str(a) for a in args], cwd=self.dir,
                           timeout=120, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, status,
                         "leaktrace-report %s: exit %d\n%s%s"
                         % (" ".join(map(str, args)), p.returncode,
                            p.stdout[-3000:], p.stderr))
        return p

    def json_of(self, *args, status=0):
        return json.loads(self.report(*args, status=status).stdout)

    def growth(self, trace, *args):
        doc = self.json_of("growth", trace, "--format=json", *args)
        self.assertEqual(set(s["verdict"] for s in doc["sites"])
                         - {"growing", "plateau", "transient", "stable"}, set())
        return doc

    @staticmethod
    def site(doc, function):
        """The growth (or diff, stats) entry whose first frame is function."""
        for s in doc.get("sites", doc.get("groups", doc.get("statistics"))):
            frames = s["frames"]
            if frames and frames[0]["function"] == function:
                return s
        raise AssertionError("no call site in %s" % function)

    def assertRate(self, measured, true, what):
        self.assertLess(abs(measured - true) / true, 0.10,
                        "%s: %.0f B/s, true rate %.0f B/s" % (what, measured, true))


def fixture(name):
    return os.path.join(FIXTURES, name)


# ------------------------------------------------------------ command line


class snapshot_cli(Base):
    """Snapshot files, stats, and clear errors (exit 2) on bad input."""

    def setUp(self):
        super().setUp()
        self.t = self.trace([fixture("sn_ci"), "64"])

    def test_snapshot_file_is_symbolic_and_versioned(self):
        self.report("snapshot", self.t, "-o", self.path("s.json"))
        with open(self.path("s.json")) as f:
            doc = json.load(f)
        self.assertEqual(doc["schema"], "leaktrace-snapshot")
        self.assertEqual(doc["version"], 1)
        self.assertNotIn("0x", json.dumps(doc["traces"]).replace("+0x", ""))
        remember = [t for t in doc["traces"]
                    if t["frames"][0]["function"] == "remember"]
        self.assertEqual(len(remember), 1)
        self.assertEqual(remember[0]["size"], 64 * 1024)
        self.assertEqual(remember[0]["count"], 64)
        f0 = remember[0]["frames"][0]
        self.assertEqual(f0["module"], "sn_ci")
        self.assertTrue(f0["file"].endswith("sn_ci.c"))
        self.assertEqual(f0["line"], 10)
        self.assertEqual(remember[0]["frames"][1]["function"], "main")
        # stats reads the file back; lineno groups by the first frame.
        st = self.json_of("stats", self.path("s.json"), "--format=json", "--by", "lineno")
        self.assertEqual(self.site(st, "remember")["size"], 65536)
        text = self.report("stats", self.path("s.json"), "--by", "function").stdout
        self.assertRegex(text, r"#1: remember \(sn_ci\): size=64.0 KiB, count=64")
        self.assertIn("Total allocated size", text)

    def test_stats_of_a_trace_and_by_traceback(self):
        text = self.report("stats", self.t, "--by", "traceback").stdout
        self.assertRegex(text, r"remember \(.*sn_ci.c:10\): size=64.0 KiB, count=64")
        self.assertRegex(text, r"by main \(.*sn_ci.c:\d+\)")
        text = self.report("stats", self.t, "--by", "filename").stdout
        self.assertRegex(text, r"sn_ci.c: size=64.0 KiB, count=64")

    def test_include_exclude_filters(self):
        st = self.json_of("stats", self.t, "--format=json", "--include", "*sn_ci.c")
        self.assertEqual(st["size"], 65536)
        st = self.json_of("stats", self.t, "--format=json", "--exclude", "sn_ci")
        self.assertNotIn("remember", json.dumps(st))

    def test_same_program_twice_diffs_to_zero(self):
        t2 = self.trace([fixture("sn_ci"), "64"], name="again")
        d = self.json_of("diff", self.t, t2, "--format=json", "--fail-on-growth", "1000")
        self.assertEqual(d["total"]["size_diff"], 0)
        self.assertFalse(d["failed"])

    def test_signal_markers(self):
        """Markers from LEAKTRACE_SNAPSHOT_SIGNAL, in a real program."""
        if not os.access(PYTHON, os.X_OK):
            self.skipTest("no " + PYTHON)
        # The writer places a signal's marker at its next pass, in the
        # epoch it is in; epochs only advance while there are events, so
        # the program churns (allocates and frees) around each signal to
        # keep the markers' epochs apart from the allocations'.
        script = ("import os, signal, time\n"
                  "def churn():\n"
                  "    end = time.monotonic() + 0.05\n"
                  "    while time.monotonic() < end:\n"
                  "        x = bytes(10)\n"
                  "a = [bytes(1000) for _ in range(10)]\n"
                  "churn(); os.kill(os.getpid(), signal.SIGUSR2); churn()\n"
                  "b = [bytes(5000) for _ in range(100)]\n"
                  "churn(); os.kill(os.getpid(), signal.SIGUSR2); churn()\n")
        t = self.trace([PYTHON, "-c", script], name="sig",
                       env={"PYTHONMALLOC": "malloc",
                            "LEAKTRACE_SNAPSHOT_SIGNAL": "USR2"})
        d = self.json_of("diff", t, "--from", "signal-1", "--to", "signal-2",
                         "--format=json")
        self.assertEqual(d["old"]["point"], "marker signal-1")
        # 100 bytes objects of 5000 bytes (plus their headers) were made.
        self.assertGreaterEqual(d["groups"][0]["size_diff"], 100 * 5000)
        self.assertLess(d["total"]["size_diff"], 100 * 5000 + 64 * 1024)

    def test_bad_input_is_one_line_and_exit_2(self):
        with open(self.path("garbage.json"), "w") as f:
            f.write("{not json")
        with open(self.path("other.json"), "w") as f:
            json.dump({"schema": "something-else"}, f)
        with open(self.path("future.json"), "w") as f:
            json.dump({"schema": "leaktrace-snapshot", "version": 99, "traces": []}, f)
        with open(self.path("badtrace.json"), "w") as f:
            json.dump({"schema": "leaktrace-snapshot", "version": 1,
                       "traces": [{"size": "big", "count": 1, "frames": []}]}, f)
        with open(self.path("future.bin"), "wb") as f:
            f.write(b"LTRACE\r\n" + (99).to_bytes(2, "little") + bytes(6))
        good = self.path("good.json")
        self.report("snapshot", self.t, "-o", good)
        cases = [
            (["stats", self.path("missing.json")], "missing.json"),
            (["stats", self.path("garbage.json")], "garbage.json"),
            (["stats", self.path("other.json")], "not a leaktrace snapshot"),
            (["stats", self.path("future.json")], "version 99"),
            (["stats", self.path("badtrace.json")], "size"),
            (["stats", self.path("future.bin")], "99"),
            (["stats", good, "--by", "nothing"], "--by"),
            (["stats", good, "--at", "peak"], "not one"),
            (["diff", good], "--from"),
            (["diff", good, good, "--fail-on-growth", "lots"], "lots"),
            (["diff", good, good, "--fail-on-growth-pct", "-3"], "-3"),
            (["diff", good, good, "--format", "html"], "html"),
            (["diff", good, "--from", "a", "--to", "b"], "trace file"),
            (["snapshot", self.t, "--at", "nosuchmarker"], "no marker 'nosuchmarker'"),
            (["snapshot", self.t, "--at", "999s"], "ends at"),
            (["snapshot", self.t, "--at", "1.5x"], "marker:1.5x"),
            (["growth", good], "not a leaktrace trace"),
            (["growth", self.t, "--windows", "1"], "--windows"),
        ]
        for args, needle in cases:
            p = self.report(*args, status=2)
            self.assertEqual(p.stdout, "", args)
            lines = p.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, (args, p.stderr))
            self.assertTrue(lines[0].startswith("leaktrace-report: "), lines)
            self.assertIn(needle, lines[0], args)


# ------------------------------------------------------------ acceptance


class caches(Base):
    """An unbounded cache and an LRU with the same allocation volume."""

    def test_unbounded_grows_lru_plateaus(self):
        t = self.trace([fixture("sn_caches")])
        # Exact figures at the marker put after the last entry.
        st = self.json_of("stats", t, "--at", "filled", "--format=json")
        self.assertEqual(self.site(st, "unbounded_put")["size"], 2000 * 4096)
        self.assertEqual(self.site(st, "unbounded_put")["count"], 2000)
        self.assertEqual(self.site(st, "lru_put")["size"], 200 * 4096)
        self.assertEqual(self.site(st, "lru_put")["count"], 200)
        # Same volume allocated by both.
        g = self.growth(t)
        unbounded, lru = self.site(g, "unbounded_put"), self.site(g, "lru_put")
        self.assertEqual(unbounded["allocations"], 2000)
        self.assertEqual(lru["allocations"], 2000)
        self.assertEqual(unbounded["verdict"], "growing", unbounded)
        self.assertEqual(lru["verdict"], "plateau", lru)
        # lru_put allocates the new value before it evicts the oldest.
        self.assertEqual(max(lru["samples"]), 201 * 4096)
        self.assertEqual(max(unbounded["samples"]), 2000 * 4096)
        # 4096 bytes per millisecond.
        self.assertRate(unbounded["slope_bytes_per_s"], 4096e3, "unbounded cache")
        self.assertGreater(unbounded["mann_kendall_z"], 5)
        self.assertGreater(unbounded["r2"], 0.95)
        self.assertEqual(g["sites"][0]["function"], "unbounded_put")
        # Frames as in the report's JSON (DESIGN.md's contract).
        self.assertLessEqual({"function", "file", "line", "module", "address"},
                             set(unbounded["frames"][0]))
        self.assertEqual(unbounded["frames"][1]["function"], "main")
        text = self.report("growth", t).stdout
        self.assertRegex(text, r"growing .*unbounded_put \(.*sn_caches.c:\d+\)")
        self.assertRegex(text, r"plateau .*lru_put \(.*sn_caches.c:\d+\)")
        self.assertRegex(text, "[▁▂▃▄▅▆▇█]{10}")
        # One trace, two points: a second into the run and the end.
        d = self.json_of("diff", t, "--from", "1s", "--to", "filled", "--format=json")
        self.assertEqual(self.site(d, "lru_put")["size_diff"], 0)
        self.assertEqual(d["groups"][0]["frames"][0]["function"], "unbounded_put")
        self.assertEqual(self.site(d, "unbounded_put")["size"], 2000 * 4096)
        # Markdown writes counts as the text report does.
        md = self.report("diff", t, "--from", "0", "--to", "filled",
                         "--format=markdown").stdout
        self.assertRegex(md, r"\| 7.8 MiB \| \+7.8 MiB \| 2,000 \| \+\d,\d{3} \| `unbounded_put ")


class periodic(Base):
    """A periodic job leaking 64 KiB every 20 ms: its rate within 10%."""

    TRUE_RATE = 65536 / 0.020

    def test_rate_and_marker_diffs(self):
        t = self.trace([fixture("sn_periodic")])
        g = self.growth(t)
        self.assertTrue(g["clean_end"])
        leak = self.site(g, "leak_tick")
        self.assertEqual(leak["verdict"], "growing", leak)
        self.assertRate(leak["slope_bytes_per_s"], self.TRUE_RATE, "leak_tick")
        self.assertEqual(leak["live_blocks"], 100)
        self.assertEqual(leak["live_bytes"], 100 * 65536)
        # Live bytes at the first and the last of the 100 markers.
        self.assertEqual(g["markers"], 100)
        self.assertEqual(leak["bytes_per_marker_interval"], 65536)
        # Born after the last marker: nothing at either marker.
        self.assertEqual(self.site(g, "farewell")["bytes_per_marker_interval"], 0)
        self.assertEqual(self.site(g, "farewell")["live_bytes"], 4096)
        self.assertNotEqual(self.site(g, "do_work")["verdict"], "growing")
        self.assertEqual(g["total"]["verdict"], "growing")
        # Sampling stopped at the 50th marker (a program's cleanup can be
        # left out so).
        g50 = self.growth(t, "--until", "tick#50")
        self.assertEqual(g50["until"], "tick#50")
        leak50 = self.site(g50, "leak_tick")
        self.assertEqual(leak50["max_bytes"], 50 * 65536)
        self.assertEqual(leak50["verdict"], "growing")
        self.assertRate(leak50["slope_bytes_per_s"], self.TRUE_RATE, "leak_tick until tick#50")
        self.report("growth", t, "--until", "tick#101", status=2)
        # Two markers of one trace: 50 ticks apart.
        args = ["diff", t, "--from", "tick#10", "--to", "tick#60"]
        d = self.json_of(*args, "--format=json")
        self.assertEqual(d["groups"][0]["frames"][0]["function"], "leak_tick")
        self.assertEqual(d["groups"][0]["size_diff"], 50 * 65536)
        self.assertEqual(d["groups"][0]["count_diff"], 50)
        self.assertEqual(d["groups"][0]["size"], 60 * 65536)
        self.assertEqual(d["total"]["size_diff"], 50 * 65536)
        # Thresholds: 3,276,800 bytes grew.
        self.report(*args, "--fail-on-growth", "4MiB")
        self.report(*args, "--fail-on-growth", "3276800")
        p = self.report(*args, "--fail-on-growth", "3276799", status=1)
        self.assertRegex(p.stdout, r"FAIL: .*\n  total grew by \+3.1 MiB\n"
                                   r"  leak_tick \(.*sn_periodic.c:\d+\) grew by \+3.1 MiB")
        self.report(*args, "--fail-on-growth", "1MiB", status=1)
        # Relative to the old total: 3.1 MiB on top of 640 KiB + change.
        self.report(*args, "--fail-on-growth-pct", "10", status=1)
        self.report(*args, "--fail-on-growth-pct", "1000")
        md = self.report(*args, "--fail-on-growth", "1MiB", "--format=markdown",
                         status=1).stdout
        self.assertIn("**FAIL**", md)
        self.assertRegex(md, r"\| 3.8 MiB \| \+3.1 MiB \| 60 \| \+50 \| `leak_tick "
                             r"\(.*sn_periodic.c:\d+\)` \*\*\(over threshold\)\*\* \|")
        # Counts are written as everywhere else; hidden groups are counted.
        md = self.report("diff", t, "--from", "tick#1", "--to", "end", "--top", "1",
                         "--format=markdown").stdout
        self.assertRegex(md, r"\| \d+ more call sites? \(`--top 0` shows all\) \|\n\| \*\*")
        md = self.report("diff", t, "--from", "end", "--to", "tick#1", "--top", "0",
                         "--format=markdown").stdout
        self.assertNotIn("more call site", md)
        xml = self.report(*args, "--fail-on-growth", "1MiB", "--format=junit",
                          status=1).stdout
        suite = ET.fromstring(xml).find("testsuite")
        self.assertEqual(suite.get("failures"), "2")
        failed = [c.get("name") for c in suite.iter("testcase")
                  if c.find("failure") is not None]
        self.assertEqual(failed[0], "total")
        self.assertTrue(failed[1].startswith("leak_tick ("), failed)
        ok = self.report(*args, "--fail-on-growth", "4MiB", "--format=junit").stdout
        self.assertEqual(ET.fromstring(ok).find("testsuite").get("failures"), "0")


class killed(Base):
    """growth on the trace of a program killed with SIGKILL."""

    def test_killed_trace(self):
        e = clean_env({"LD_PRELOAD": SHIM,
                       "LEAKTRACE_OUTPUT": self.path("k.%p.bin")})
        p = subprocess.Popen([fixture("sn_periodic"), "forever"], env=e,
                             cwd=self.dir)
        time.sleep(1.6)
        p.send_signal(signal.SIGKILL)
        p.wait()
        t = glob.glob(self.path("k.*.bin"))[0]
        g = self.growth(t)
        leak = self.site(g, "leak_tick")
        self.assertEqual(leak["verdict"], "growing", leak)
        self.assertRate(leak["slope_bytes_per_s"], periodic.TRUE_RATE, "killed leak_tick")
        self.assertGreater(leak["live_blocks"], 30)
        self.assertFalse(g["clean_end"])
        # The text says the program did not end cleanly.
        self.assertRegex(self.report("growth", t).stdout.splitlines()[0],
                         r"\((trace incomplete|no end record)")
        self.report("snapshot", t, "-o", self.path("k.json"))


class peak(Base):
    """A big temporary peak that returns to baseline is not flagged."""

    def test_transient_peak(self):
        t = self.trace([fixture("sn_peak")])
        g = self.growth(t)
        big = self.site(g, "big_job")
        self.assertEqual(big["verdict"], "transient", big)
        self.assertEqual(big["max_bytes"], 32 << 20)
        self.assertEqual(big["live_bytes"], 0)
        self.assertEqual([s for s in g["sites"] if s["verdict"] == "growing"], [])
        self.assertEqual(g["total"]["verdict"], "transient")
        self.assertEqual(self.site(g, "setup")["verdict"], "stable")
        st = self.json_of("stats", t, "--at", "peak", "--format=json")
        self.assertEqual(self.site(st, "big_job")["size"], 32 << 20)
        self.assertEqual(self.site(st, "big_job")["count"], 32)
        self.assertEqual(self.site(st, "setup")["size"], 16 * 4096)


class python(Base):
    """CPython (PYTHONMALLOC=malloc): a list growing forever vs a deque."""

    def run_script(self, name):
        if not os.access(PYTHON, os.X_OK):
            self.skipTest("no " + PYTHON)
        return self.trace([PYTHON, os.path.join(FIXTURE_SRC, name)],
                          env={"PYTHONMALLOC": "malloc"}, name=name)

    def test_list_grows_deque_does_not(self):
        g = self.growth(self.run_script("sn_list.py"))
        growing = [s for s in g["sites"] if s["verdict"] == "growing"]
        self.assertTrue(growing, [(s["function"], s["verdict"]) for s in g["sites"][:5]])
        # The bytes objects: 2000 of them, each a bit over 1 KiB.
        top = max(growing, key=lambda s: s["max_bytes"])
        self.assertGreaterEqual(top["max_bytes"], 2000 * 1024)
        self.assertLess(top["max_bytes"], 2000 * 1200)
        self.assertEqual(top["allocations"] >= 2000, True)
        self.assertRate(top["slope_bytes_per_s"], top["max_bytes"] / 2.0, "list")
        self.assertEqual(g["total"]["verdict"], "growing")

        g = self.growth(self.run_script("sn_deque.py"))
        self.assertEqual([(s["function"], s["samples"]) for s in g["sites"]
                          if s["verdict"] == "growing"], [])
        self.assertNotEqual(g["total"]["verdict"], "growing")
        plateau = [s for s in g["sites"] if s["verdict"] == "plateau"]
        self.assertTrue(any(100 * 1024 <= s["max_bytes"] < 100 * 1200
                            for s in plateau),
                        [(s["function"], s["max_bytes"]) for s in plateau])


# ------------------------------------------------------------ README recipe


def readme_snippet():
    """The first ```sh block of the README's "Gating CI" section."""
    with open(README) as f:
        text = f.read()
    section = text.split("## Gating CI on memory growth", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


class ci_recipe(Base):
    """Runs the README's CI snippet exactly as written."""

    def run_snippet(self, base_cmd, head_cmd):
        tools = os.path.join(self.dir, "bin")
        os.makedirs(tools, exist_ok=True)
        os.symlink(REPORT, os.path.join(tools, "leaktrace-report"))
        env = clean_env({
            "PATH": tools + os.pathsep + os.environ.get("PATH", ""),
            "LEAKTRACE_LIB": SHIM,
            "BASE_CMD": base_cmd,
            "HEAD_CMD": head_cmd,
        })
        with open(self.path("snippet.sh"), "w") as f:
            f.write(readme_snippet())
        return subprocess.run(["bash", "-e", self.path("snippet.sh")], env=env,
                              cwd=self.dir, timeout=60, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def test_no_growth_passes(self):
        p = self.run_snippet(fixture("sn_ci") + " 8", fixture("sn_ci") + " 8")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(self.path("memory-diff.md")) as f:
            self.assertIn("**OK**", f.read())

    def test_growth_fails_the_build(self):
        p = self.run_snippet(fixture("sn_ci") + " 8", fixture("sn_ci") + " 2048")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        with open(self.path("memory-diff.md")) as f:
            md = f.read()
        self.assertIn("**FAIL**", md)
        self.assertRegex(md, r"\| 2.0 MiB \| \+2.0 MiB \| 2,048 \| \+2,040 \| `remember ")


def main():
    if not (SHIM and REPORT and FIXTURES):
        print("LT_SHIM, LT_REPORT and LT_FIXTURES must be set", file=sys.stderr)
        return 77
    group = sys.argv[1]
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(globals()[group])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.testsRun and len(result.skipped) == result.testsRun:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
