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
import resource
import signal
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402  (the shared runner, decoder and base class)
from e2e import E2E, REPORT, fixture, report_json, run  # noqa: E402


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
        # Also when nothing is closed: the shim's descriptors, libunwind's
        # pipe among them, sit high and shift none of the program's.
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


# ---------------------------------------------------------------- address space


def get_uv(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7f) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def end_fields(path):
    """The uv fields of the END record of an uncompressed trace
    (LEAKTRACE_COMPRESS=0: stored columnar blocks), read straight from the
    file: `leaktrace-report --dump` shows only the fields it knows. END is
    the last record of the META column of the last block."""
    data = open(path, "rb").read()
    pos, last = 16, None
    while pos + 20 <= len(data):
        magic, stored, raw, codec = struct.unpack_from("<IIIB", data, pos)
        if magic != 0x4b42544c:
            raise AssertionError("bad block at %d" % pos)
        last = (codec, data[pos + 20:pos + 20 + stored])
        pos += 20 + stored
    codec, payload = last
    if codec != 3:
        raise AssertionError("block codec %d, expected stored columns" % codec)
    lens, i = [], 0
    for _ in range(6):
        n, i = get_uv(payload, i)
        lens.append(n)
    meta = payload[i + sum(lens[:5]):i + sum(lens)]
    for at in range(len(meta) - 5, -1, -1):
        if meta[at] != 0x2a:
            continue
        n, j = get_uv(meta, at + 1)
        if j == at + 5 and j + n == len(meta):
            fields, k = [], j
            while k < len(meta):
                v, k = get_uv(meta, k)
                fields.append(v)
            return fields
    raise AssertionError("no END record at the end of the last block")


class address_space_limit(E2E):
    """The shim must fit under RLIMIT_AS (it reserved 2 GiB of address
    space for its stack table and silently recorded nothing under a
    smaller limit), and events it cannot record for want of memory are
    counted in the trace and said on stderr."""

    def run_limited(self, argv, limit):
        env = e2e.clean_env({"LEAKTRACE_OUTPUT": self.out_pattern(),
                             "LD_PRELOAD": e2e.SHIM})

        def lower():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        return subprocess.run(argv, env=env, preexec_fn=lower, timeout=60,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def check_daemon_under(self, limit):
        d = os.path.join(self.tmp, "files")
        os.mkdir(d)
        p = self.run_limited([fixture("fx_daemon"), "none", d], limit)
        self.assertOk(p)
        self.assertEqual(p.stderr, "")
        tr = self.only_trace()
        self.assertEqual(sizes(tr, "alloc").get(24), 1000)
        self.assertEqual(sizes(tr, "alloc").get(56), 20000)
        self.assertEndMatchesEvents(tr, "normal", 0)
        self.assertTrue(any(tr.stacks.values()), "no stacks recorded")

    def test_ulimit_v_1gib(self):
        self.check_daemon_under(1 << 30)

    def test_ulimit_v_2gib(self):
        self.check_daemon_under(2 << 30)

    def test_ulimit_v_256mib(self):
        self.check_daemon_under(256 << 20)

    def test_limit_lowered_mid_run_counts_lost_events(self):
        p = self.traced([fixture("fx_aslimit")], env={"LEAKTRACE_COMPRESS": "0"})
        self.assertOk(p)
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("events lost", lines[0])
        tr = self.only_trace()
        self.assertEqual(sizes(tr, "alloc").get(24), 100)
        self.assertEqual(sizes(tr, "alloc").get(72), 10)
        self.assertNotIn(40, sizes(tr, "alloc"))
        self.assertEndMatchesEvents(tr, "normal", 0)
        fields = end_fields(tr.path)
        self.assertEqual(len(fields), 10, "END has no lost_events field: %s" % fields)
        self.assertEqual(fields[9], 100, "lost_events")
        # The report says so, in text and JSON.
        rep = subprocess.run([REPORT, tr.path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(rep.returncode, 0, rep.stderr)
        self.assertIn("warning: 100 events were lost", rep.stdout)
        self.assertEqual(report_json(tr.path)["summary"]["lost_events"], 100)

    def test_no_events_lost_normally(self):
        d = os.path.join(self.tmp, "files")
        os.mkdir(d)
        p = self.traced([fixture("fx_daemon"), "none", d], env={"LEAKTRACE_COMPRESS": "0"})
        self.assertOk(p)
        self.assertEqual(end_fields(self.only_trace().path)[9:], [0])


class file_size_limit(E2E):
    """Under `ulimit -f` (RLIMIT_FSIZE) a write past the limit raises
    SIGXFSZ, which kills the writing thread's process: the shim's own
    writes (the header at start-up, the flush at exit) used to kill the
    program. Now tracing stops with one line and the program runs on."""

    def run_limited(self, limit):
        env = e2e.clean_env({"LEAKTRACE_OUTPUT": self.out_pattern(),
                             "LEAKTRACE_COMPRESS": "0", "LD_PRELOAD": e2e.SHIM})

        def lower():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        return subprocess.run([fixture("fx_single")], env=env, preexec_fn=lower,
                              timeout=60, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)

    def check_runs_on(self, p):
        self.assertOk(p)
        self.assertEqual(len(p.stdout.splitlines()), 500, "the program's output")
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("EFBIG (the file size limit, ulimit -f, is reached)", lines[0])

    def test_no_room_for_the_header(self):
        self.check_runs_on(self.run_limited(0))

    def test_room_for_part_of_the_trace(self):
        self.check_runs_on(self.run_limited(4096))
        files = self.trace_files()
        self.assertEqual(len(files), 1)
        self.assertLessEqual(os.path.getsize(files[0]), 4096)
        rep = subprocess.run([REPORT, files[0]], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(rep.returncode, 0, rep.stderr)
        self.assertIn("trace is incomplete", rep.stderr)

    def test_a_sigxfsz_of_the_program_is_kept(self):
        """The shim takes back only the SIGXFSZ its own write raised."""
        env = e2e.clean_env({"LEAKTRACE_OUTPUT": self.out_pattern(),
                             "LD_PRELOAD": e2e.SHIM})
        out = os.path.join(self.tmp, "big")

        def lower():
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        # dd's own write past the limit must still kill dd.
        p = subprocess.run(["dd", "if=/dev/zero", "of=" + out, "bs=8192", "count=1"],
                           env=env, preexec_fn=lower, timeout=60,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, -signal.SIGXFSZ, p.stderr)


class clone_children(E2E):
    """Children made without fork(): _Fork() runs no atfork handlers, and
    clone() or the raw system call copy the shim's rings without a writer
    to drain them. A _Fork child is traced like a fork child; a clone
    child goes untraced with one line, where it used to hang as soon as
    its ring filled."""

    def test_fork_without_atfork_handlers(self):
        p = self.traced([fixture("fx_clone"), "_Fork", "20000"], timeout=30)
        self.assertOk(p)
        self.assertEqual((p.stdout, p.stderr), ("child 3\n", ""))
        files = self.trace_files()
        self.assertEqual(len(files), 2, files)
        child = [self.decode(f) for f in files
                 if self.decode(f, events=False).processes[-1]["flags"] & 1]
        self.assertEqual(len(child), 1)
        self.assertEqual(sizes(child[0], "alloc").get(100), 20000)
        self.assertEqual([(e["kind"], e["status"]) for e in child[0].ends], [("_exit", 3)])

    def check_clone(self, how):
        p = self.traced([fixture("fx_clone"), how, "100000"], timeout=30)
        self.assertOk(p)
        self.assertEqual(p.stdout, "child 3\n")
        self.assertEqual(p.stderr, "leaktrace: a process made by clone(), not fork(), "
                                   "is not traced\n")
        tr = self.only_trace()
        self.assertEqual(sizes(tr, "alloc").get(50), 1)
        self.assertEndMatchesEvents(tr, "normal", 0)

    def test_clone(self):
        self.check_clone("clone")

    def test_raw_clone_system_call(self):
        self.check_clone("syscall")


# ---------------------------------------------------------------- crashes


class fatal_signals(E2E):
    """A program that crashes right after allocating (long before the
    shim's periodic flush): the trace holds every allocation, and the
    process dies exactly as it does without the shim. Programs with
    handlers of their own still get them, and sigaction() reports what it
    would without the shim."""

    # Dispositions inherited from whoever started the tests (nohup ignores
    # SIGHUP, a background job SIGINT and SIGQUIT) would pass to the
    # fixture through exec: the tests want every signal at its default.
    RESET = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)

    def setUp(self):
        super().setUp()
        self.saved = {s: signal.signal(s, signal.SIG_DFL) for s in self.RESET}

    def tearDown(self):
        for s, h in self.saved.items():
            signal.signal(s, h)
        super().tearDown()

    def check(self, how, rc, n=5000, ends=(), extra=()):
        env = {"LD_LIBRARY_PATH": None}
        base = run([fixture("fx_crash"), how, str(n)] + list(extra), traced=False)
        self.assertEqual(base.returncode, rc, "native run: %s" % base.stderr)
        p = self.traced([fixture("fx_crash"), how, str(n)] + list(extra), env=env)
        self.assertEqual(p.returncode, rc, p.stderr)
        self.assertEqual(p.stdout, base.stdout)
        self.assertEqual(p.stdout.splitlines()[0].split(), ["dfl"] * 10)
        self.assertNotIn("leaktrace", p.stderr)
        tr = self.only_trace()
        self.assertEqual(sizes(tr, "alloc").get(40), n,
                         "allocations recorded before the crash")
        self.assertEqual([(e["kind"], e["status"]) for e in tr.ends], list(ends))
        return p

    def test_null_dereference(self):
        self.check("segv", -signal.SIGSEGV, ends=[("signal", 128 + signal.SIGSEGV)])

    def test_null_dereference_many(self):
        self.check("segv", -signal.SIGSEGV, n=100000,
                   ends=[("signal", 128 + signal.SIGSEGV)])

    def test_division_by_zero(self):
        self.check("fpe", -signal.SIGFPE, ends=[("signal", 128 + signal.SIGFPE)])

    def test_illegal_instruction(self):
        self.check("ill", -signal.SIGILL, ends=[("signal", 128 + signal.SIGILL)])

    def test_raised_signal(self):
        self.check("raise-segv", -signal.SIGSEGV, ends=[("signal", 128 + signal.SIGSEGV)])

    def test_failed_assert(self):
        self.check("assert", -signal.SIGABRT, ends=[("abort", 134)])

    def test_program_handler_via_sigaction(self):
        p = self.check("handler", 9, ends=[("_exit", 9)])
        self.assertIn("handled", p.stdout)

    def test_program_handler_via_signal(self):
        p = self.check("signal-handler", 9, ends=[("_exit", 9)])
        self.assertIn("handled", p.stdout)

    def test_default_restored_with_signal(self):
        self.check("reset", -signal.SIGSEGV, ends=[("signal", 128 + signal.SIGSEGV)])

    # Signals that end a program from outside: the same.
    def test_sigterm(self):
        self.check("term", -signal.SIGTERM, ends=[("signal", 128 + signal.SIGTERM)])

    def test_sigint(self):
        self.check("int", -signal.SIGINT, ends=[("signal", 128 + signal.SIGINT)])

    def test_sighup(self):
        self.check("hup", -signal.SIGHUP, ends=[("signal", 128 + signal.SIGHUP)])

    def test_sigpipe_as_in_a_pipe_to_head(self):
        self.check("pipe", -signal.SIGPIPE, ends=[("signal", 128 + signal.SIGPIPE)])

    # Every other signal whose default action ends the program.
    def test_alarm(self):
        self.check("alarm", -signal.SIGALRM, ends=[("signal", 128 + signal.SIGALRM)])

    def test_sigusr1(self):
        self.check("usr1", -signal.SIGUSR1, ends=[("signal", 128 + signal.SIGUSR1)])

    def test_realtime_signal(self):
        sig = signal.SIGRTMIN + 2
        self.check("rt", -sig, ends=[("signal", 128 + sig)])

    def test_file_size_limit_of_the_program(self):
        out = os.path.join(self.tmp, "out")
        self.check("xfsz", -signal.SIGXFSZ, ends=[("signal", 128 + signal.SIGXFSZ)],
                   extra=[out])

    def test_the_report_names_the_signal(self):
        self.check("segv", -signal.SIGSEGV, ends=[("signal", 128 + signal.SIGSEGV)])
        path = self.trace_files()[0]
        rep = subprocess.run([REPORT, path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(rep.returncode, 0, rep.stderr)
        self.assertRegex(rep.stdout, r"\n[^\n]*, killed by SIGSEGV \(status 139\)\n")
        s = report_json(path)["summary"]
        self.assertEqual((s["exit_kind"], s["exit_status"], s["clean_end"]),
                         ("signal", 139, False))


# ---------------------------------------------------------------- modules


class relative_dlopen(E2E):
    """A library dlopen()ed by a relative path must be recorded under an
    absolute one: the analyzer runs later, elsewhere, and can only open
    absolute paths."""

    def check(self, name, cwd, libdir):
        p = self.traced([fixture("fx_dlopen"), name], cwd=cwd,
                        env={"LD_LIBRARY_PATH": libdir} if libdir else None)
        self.assertOk(p)
        tr = self.only_trace()
        lib = os.path.realpath(e2e.ALLOCLIB)
        paths = {m["path"] for _, mods, _ in tr.modules for m in mods}
        self.assertIn(lib, paths)
        rel = sorted(x for x in paths if "alloclib" in x and not x.startswith("/"))
        self.assertEqual(rel, [], "relative module paths in the trace")
        self.assertEndMatchesEvents(tr, "normal", 0)

    def test_dot_slash(self):
        self.check("./" + os.path.basename(e2e.ALLOCLIB), os.path.dirname(e2e.ALLOCLIB), None)

    def test_parent_relative(self):
        sub = os.path.join(self.tmp, "sub")
        os.mkdir(sub)
        self.check(os.path.relpath(e2e.ALLOCLIB, sub), sub, None)

    def test_ld_library_path_dot(self):
        self.check(os.path.basename(e2e.ALLOCLIB), os.path.dirname(e2e.ALLOCLIB), ".")


# ---------------------------------------------------------------- settings


class snapshot_signal_taken(E2E):
    """LEAKTRACE_SNAPSHOT_SIGNAL names a signal the program then handles
    itself: its handler wins (the program behaves as without the shim),
    and the shim says once that snapshot markers by signal stop."""

    def test_program_handler_wins_and_the_shim_says_so(self):
        base = run([fixture("fx_own_usr2")], traced=False)
        p = self.traced([fixture("fx_own_usr2")], env={"LEAKTRACE_SNAPSHOT_SIGNAL": "USR2"})
        self.assertOk(p)
        self.assertEqual(p.stdout, base.stdout)
        self.assertEqual(p.stdout, "handled 1\n")
        self.assertEqual(p.stderr,
                         "leaktrace: the program sets its own handler for "
                         "LEAKTRACE_SNAPSHOT_SIGNAL's signal; snapshot markers by signal "
                         "stop here (choose another signal)\n")

    def test_not_into_a_file_that_took_descriptor_2(self):
        # The program closes stderr and opens a data file as descriptor 2:
        # the message is dropped rather than written into the data.
        data = os.path.join(self.tmp, "data")
        p = self.traced([fixture("fx_own_usr2"), data],
                        env={"LEAKTRACE_SNAPSHOT_SIGNAL": "USR2"})
        self.assertOk(p)
        self.assertEqual(p.stdout, "handled 1\n")
        with open(data) as f:
            self.assertEqual(f.read(), "data\n")
        self.assertEqual(len(self.trace_files()), 1)

    def test_no_word_without_the_setting(self):
        p = self.traced([fixture("fx_own_usr2")])
        self.assertOk(p)
        self.assertEqual(p.stdout, "handled 1\n")
        self.assertEqual(p.stderr, "")


class bad_settings(E2E):
    """A setting the shim cannot use is named in one line on stderr and
    replaced by its default; the trace is still written."""

    def check(self, var, value, expect):
        d = os.path.join(self.tmp, "files")
        os.mkdir(d)
        p = self.traced([fixture("fx_daemon"), "none", d], env={var: value})
        self.assertOk(p)
        self.assertEqual(p.stderr, "leaktrace: %s=%s %s\n" % (var, value, expect))
        tr = self.only_trace()
        self.assertEqual(sizes(tr, "alloc").get(24), 1000)
        return tr

    def test_depth_not_a_number(self):
        tr = self.check("LEAKTRACE_DEPTH", "abc", "is not a number from 0 to 256; using 64")
        self.assertTrue(any(tr.stacks.values()))

    def test_depth_trailing_junk(self):
        self.check("LEAKTRACE_DEPTH", "8x", "is not a number from 0 to 256; using 64")

    def test_depth_too_large(self):
        self.check("LEAKTRACE_DEPTH", "1000", "is more than 256; using 256")

    def test_unwinder_unknown(self):
        self.check("LEAKTRACE_UNWIND", "bogus",
                   "is not one of fast, fp, libunwind, check; using fast")

    def test_good_values_say_nothing(self):
        d = os.path.join(self.tmp, "files")
        os.mkdir(d)
        p = self.traced([fixture("fx_daemon"), "none", d],
                        env={"LEAKTRACE_DEPTH": "16", "LEAKTRACE_UNWIND": "fast",
                             "LEAKTRACE_COMPRESS": "3"})
        self.assertOk(p)
        self.assertEqual(p.stderr, "")


def main():
    return e2e.run_group(sys.modules[__name__], sys.argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
