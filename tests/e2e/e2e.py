#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of the preload shim.

Each test runs a fixture program (tests/fixtures, built without the shim)
or a real program under LD_PRELOAD=libleaktrace.so in a child process with
its own temporary directory, decodes the trace with `leaktrace-report
--dump`, and checks it exactly against what the program is known to do.
The trace is replayed here (per-address state machine, threads merged by
epoch plus the causal rule of include/leaktrace/format.h) so that pairing
of frees with allocations does not depend on the analyzer's report mode;
where `leaktrace-report --format=json` exists its summary is cross-checked.

Usage: e2e.py GROUP [unittest args]   (GROUP names a TestCase below; the
meson test e2e_GROUP runs one). Environment: LT_SHIM, LT_REPORT,
LT_FIXTURES (build dir of the fixtures), LT_ALLOCLIB. Exit 77 when every
test of the group was skipped.
"""
import array
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

SHIM = os.environ.get("LT_SHIM", "")
REPORT = os.environ.get("LT_REPORT", "")
FIXTURES = os.environ.get("LT_FIXTURES", "")
ALLOCLIB = os.environ.get("LT_ALLOCLIB", "")

ALLOC, FREE, REALLOC = 1, 2, 3
KIND_NAMES = {ALLOC: "alloc", FREE: "free", REALLOC: "realloc"}

LT_PROC_FORK_CHILD = 1
LT_PROC_FP_UNWIND = 2
LT_PROC_NO_STACKS = 4

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"


def fixture(name):
    return os.path.join(FIXTURES, name)


# ---------------------------------------------------------------- running


def clean_env(extra=None):
    """The parent's environment without any preload or leaktrace setting,
    plus `extra` (values None remove a variable)."""
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("LEAKTRACE_")}
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def run(argv, *, traced=True, env=None, cwd=None, timeout=60, preload_after=(),
        stdin=None, text=True):
    """Runs argv in a child process, with the shim preloaded when traced
    (followed by the libraries in preload_after). Returns CompletedProcess."""
    e = clean_env(env)
    libs = ([SHIM] if traced else []) + list(preload_after)
    if libs:
        e["LD_PRELOAD"] = " ".join(libs)
    return subprocess.run(argv, env=e, cwd=cwd, timeout=timeout, input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=text)


# ---------------------------------------------------------------- decoding


class Stream:
    """One thread's events in program order, in compact arrays."""

    __slots__ = ("kind", "epoch", "addr", "size", "old", "stack", "seg")

    def __init__(self):
        self.kind = bytearray()
        self.epoch = array.array("Q")
        self.addr = array.array("Q")
        self.size = array.array("Q")
        self.old = array.array("Q")
        self.stack = array.array("Q")
        self.seg = bytearray()

    def __len__(self):
        return len(self.kind)

    def event(self, i):
        """(kind name, size, addr, old, stack_id) of event i."""
        k = self.kind[i]
        return (KIND_NAMES[k], self.size[i], self.addr[i], self.old[i],
                self.stack[i])


class Trace:
    """A decoded trace: `leaktrace-report --dump` parsed into streams per
    thread and lists of the metadata records."""

    def __init__(self, path, events=True):
        self.path = path
        self.keep_events = events   # False: only count events (faster)
        self.event_count = 0
        proc = subprocess.run([REPORT, "--dump", path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=600)
        self.rc = proc.returncode
        self.stderr = proc.stderr
        self.threads = {}
        self.processes = []     # dicts, file order (a fork child has 2+)
        self.modules = []       # (generation, [module dicts], index in record_order)
        self.stacks = {}        # stack_id -> [frames]
        self.stack_pos = {}     # stack_id -> index in record_order
        self.ends = []          # dicts
        self.thread_starts = []  # (thread, tid)
        self.thread_ends = []   # thread
        self.markers = []       # (thread, name, index in that thread's stream)
        self.forks = []         # (thread, child_pid, seq)
        self.execs = []         # (thread, path)
        self.segments = []      # (path, is_parent, prefix)
        # AFTER records: (thread, index of its next alloc/realloc) ->
        # (other thread, that thread's free number, counted from 1 over its
        # FREE and REALLOC records, modulo 2^24)
        self.after = {}
        self.record_order = []  # kinds of metadata records, in file order
        self._parse(proc.stdout)

    def stream(self, t):
        s = self.threads.get(t)
        if s is None:
            s = self.threads[t] = Stream()
        return s

    def _parse(self, text):
        seg = 0
        for line in text.splitlines():
            sp = line.split(" ")
            k = sp[0]
            if k == "alloc" or k == "realloc" or k == "free":
                self.event_count += 1
                if not self.keep_events:
                    continue
                s = self.stream(int(sp[1]))
                s.epoch.append(int(sp[2]))
                s.seg.append(seg)
                if k == "free":
                    s.kind.append(FREE)
                    s.addr.append(int(sp[3][7:], 16))
                    s.size.append(0)
                    s.old.append(0)
                    s.stack.append(0)
                    continue
                s.stack.append(int(sp[3][6:]))
                s.size.append(int(sp[4][5:]))
                s.addr.append(int(sp[5][7:], 16))
                if k == "alloc":
                    s.kind.append(ALLOC)
                    s.old.append(0)
                else:
                    s.kind.append(REALLOC)
                    s.old.append(int(sp[6][6:], 16))
                continue
            self.record_order.append(k)
            if k == "after":
                t = int(sp[1])
                self.after[(t, len(self.stream(t)))] = (int(sp[3][7:]), int(sp[4][5:]))
                continue
            if k == "marker":
                t = int(sp[1])
                self.markers.append((t, " ".join(sp[2:]), len(self.stream(t))))
            elif k == "stack":
                depth = int(sp[2][6:])
                self.stacks[int(sp[1])] = [int(x, 16) for x in sp[3:3 + depth]]
                self.stack_pos[int(sp[1])] = len(self.record_order) - 1
            elif k == "process":
                d = dict(x.split("=", 1) for x in sp[1:])
                for f in ("pid", "ppid", "argc", "flags", "prefix", "fork_seq"):
                    d[f] = int(d[f])
                d["args"] = []
                self.processes.append(d)
            elif k == "arg":
                self.processes[-1]["args"].append(" ".join(sp[2:]))
            elif k == "modules":
                self.modules.append((int(sp[1][4:]), [], len(self.record_order) - 1))
            elif k == "module":
                d = dict(x.split("=", 1) for x in sp[-4:])
                self.modules[-1][1].append({
                    "path": " ".join(sp[1:-4]), "bias": int(d["bias"], 16),
                    "lo": int(d["lo"], 16), "hi": int(d["hi"], 16),
                    "build_id": d["build_id"]})
            elif k == "end":
                d = dict(x.split("=", 1) for x in sp[1:])
                for f in d:
                    if f != "kind":
                        d[f] = int(d[f])
                self.ends.append(d)
            elif k == "thread_start":
                t = int(sp[1])
                self.stream(t)
                self.thread_starts.append((t, int(sp[2][4:])))
            elif k == "thread_end":
                self.thread_ends.append(int(sp[1]))
            elif k == "fork":
                self.forks.append((int(sp[1]), int(sp[2][6:]), int(sp[3][4:])))
            elif k == "exec":
                self.execs.append((int(sp[1]), " ".join(sp[2:])))
            elif k == "file":
                parent = len(sp) >= 4 and sp[2] == "parent"
                seg = len(self.segments)
                self.segments.append((sp[1], parent,
                                      int(sp[3][7:]) if parent else 0))

    # -- queries

    def marker(self, name):
        found = [m for m in self.markers if m[1] == name]
        if len(found) != 1:
            raise AssertionError("marker %r found %d times in %s (markers: %s)" % (
                name, len(found), self.path, [m[1] for m in self.markers][:20]))
        return found[0]

    def window(self, begin, end=None):
        """Events of the thread that put marker `begin`, from there up to
        marker `end` (same thread) or to the end of its stream."""
        t, _, i = self.marker(begin)
        s = self.threads[t]
        j = len(s)
        if end is not None:
            t2, _, j = self.marker(end)
            if t2 != t:
                raise AssertionError("markers %s and %s in different threads" % (begin, end))
        return [s.event(x) for x in range(i, j)]

    def counts(self, threads=None):
        """{'alloc': n, 'free': n, 'realloc': n} over the given threads."""
        c = {"alloc": 0, "free": 0, "realloc": 0}
        for t, s in self.threads.items():
            if threads is not None and t not in threads:
                continue
            c["alloc"] += s.kind.count(ALLOC)
            c["free"] += s.kind.count(FREE)
            c["realloc"] += s.kind.count(REALLOC)
        return c

    def all_events(self):
        for t, s in self.threads.items():
            for i in range(len(s)):
                yield (t,) + s.event(i)

    def after_constraints(self):
        """{(thread, index): (other thread, index)}: the event at (thread,
        index) happened after the free at (other thread, index), as AFTER
        records say."""
        after = getattr(self, "after", {})
        if not after:
            return {}
        numbers = {}
        for t in {x for x, _ in after.values()}:
            s = self.threads.get(t)
            m = numbers[t] = {}
            n = 0
            if s is None:
                continue
            for i in range(len(s)):
                if s.kind[i] != ALLOC:
                    n += 1
                    m[n % (1 << 24)] = i
        out = {}
        for (t, i), (x, n) in after.items():
            j = numbers.get(x, {}).get(n % (1 << 24))
            out[(t, i)] = (x, j if j is not None else -1)
        return out

    def main_thread(self):
        """The thread index of the process's initial thread (tid == pid)."""
        pid = self.processes[-1]["pid"]
        found = [t for t, tid in self.thread_starts if tid == pid]
        if len(found) != 1:
            raise AssertionError("main thread: %s" % self.thread_starts[:5])
        return found[0]

    def module_named(self, suffix, modules=None):
        for m in (modules if modules is not None else self.modules[0][1]):
            if os.path.basename(m["path"]) == suffix or m["path"].endswith("/" + suffix):
                return m
        return None


class Replay:
    """Pairs every free with an allocation, one address at a time: a
    per-address state machine (free -> live -> free ...) over the events of
    all threads touching that address, in epoch order, and within one epoch
    in any order that keeps each thread's program order (the causal rule of
    include/leaktrace/format.h: an address is allocated only when it is not
    live, freed only when it is). A realloc is a free of the old address and
    an allocation of the new one. `anomalies` lists the (address, epoch)
    groups no order can explain (unmatched frees, allocations of live
    addresses); `live` maps address -> (size, thread, index) at the end."""

    FREE_PART, ALLOC_PART, BOTH = 0, 1, 2

    def __init__(self, trace, max_anomalies=20):
        self.live = {}
        self.anomalies = []
        self.n_anomalies = 0
        self.first_anomaly = None   # its address
        self.trace = trace
        # One sortable int per address event:
        # addr | epoch | thread | index | part (free or alloc half).
        keys = []
        add = keys.append
        for t, s in trace.threads.items():
            kind, ep, addr, old = s.kind, s.epoch, s.addr, s.old
            for i in range(len(s)):
                k = kind[i]
                base = ((ep[i] << 20 | t) << 32 | i) << 2
                if k == ALLOC:
                    add(addr[i] << 84 | base | 1)
                elif k == FREE:
                    add(addr[i] << 84 | base)
                elif addr[i] == old[i]:
                    add(addr[i] << 84 | base | 2)
                else:
                    add(old[i] << 84 | base)
                    add(addr[i] << 84 | base | 1)
        keys.sort()
        self.after = trace.after_constraints() if hasattr(trace, "after_constraints") else {}
        mask32 = (1 << 32) - 1
        mask20 = (1 << 20) - 1
        live = self.live
        n = len(keys)
        j = 0
        while j < n:
            a = keys[j] >> 84
            is_live = False
            last_alloc = None
            while j < n and keys[j] >> 84 == a:
                epoch = (keys[j] >> 54) & ((1 << 30) - 1)
                group = []
                while j < n and keys[j] >> 54 == keys[group[0] if group else j] >> 54:
                    group.append(j)
                    j += 1
                evs = []
                for g in group:
                    k = keys[g]
                    evs.append(((k >> 34) & mask20, (k >> 2) & mask32, k & 3))
                ok, is_live, la = self._group(evs, is_live, self.after)
                if la is not None:
                    last_alloc = la
                if not ok:
                    if self.first_anomaly is None:
                        self.first_anomaly = a
                    self.n_anomalies += 1
                    if len(self.anomalies) < max_anomalies:
                        self.anomalies.append("address %#x epoch %d: %s" % (
                            a, epoch, [(t, i, ("free", "alloc", "realloc")[p])
                                       for t, i, p in evs]))
            if is_live and last_alloc is not None:
                t, i = last_alloc
                live[a] = (trace.threads[t].size[i], t, i)

    @staticmethod
    def _group(evs, is_live, after=None):
        """Orders one address's events of one epoch. Returns (possible,
        live afterwards, (thread, index) of the last allocation)."""
        threads = {}
        for t, i, p in evs:
            threads.setdefault(t, []).append((i, p))
        queues = list(threads.items())
        # AFTER constraints between events of this group
        need = {}
        if after:
            where = {(t, i): (qi, k) for qi, (t, q) in enumerate(queues)
                     for k, (i, p) in enumerate(q) if p == 0}
            for qi, (t, q) in enumerate(queues):
                for k, (i, p) in enumerate(q):
                    if p != 0 and (t, i) in after and after[(t, i)] in where:
                        need[(qi, k)] = where[after[(t, i)]]
        if len(queues) == 1 and not need:
            order = [(queues[0][0], e) for e in queues[0][1]]
            ok, end, la = Replay._simulate(order, is_live)
            if ok:
                return True, end, la
        else:
            found = Replay._search(queues, is_live, need=need)
            if found is not None:
                return Replay._simulate([(t, e) for t, e, _ in found], is_live)
        # No order works: report, and carry on with the counts.
        allocs = sum(1 for _, _, p in evs if p == 1)
        frees = sum(1 for _, _, p in evs if p == 0)
        end = (1 if is_live else 0) + allocs - frees > 0
        la = next(((t, i) for t, i, p in reversed(evs) if p != 0), None)
        return False, end, la

    @staticmethod
    def _simulate(order, is_live):
        la = None
        for t, (i, p) in order:
            if p == 0:
                if not is_live:
                    return False, is_live, la
                is_live = False
            elif p == 1:
                if is_live:
                    return False, is_live, la
                is_live = True
                la = (t, i)
            else:
                if not is_live:
                    return False, is_live, la
                la = (t, i)
        return True, is_live, la

    @staticmethod
    def _search(queues, is_live, max_states=2000000, need=None):
        """Depth-first search (iterative, memoized on queue positions and
        state) for an interleaving of the per-thread queues that the state
        machine accepts; None if there is none (or the search is too big,
        which the caller then reports as unpairable)."""
        total = sum(len(q) for _, q in queues)
        nq = len(queues)
        seen = set()
        pos = [0] * nq
        order = []
        # stack of (queue index to try next, live before this step)
        stack = [(0, is_live)]
        while stack:
            if len(order) == total:
                return list(order)
            qi, live = stack[-1]
            if qi == 0:
                key = (tuple(pos), live)
                if key in seen or len(seen) > max_states:
                    qi = nq  # already known to fail (or give up)
                else:
                    seen.add(key)
            advanced = False
            while qi < nq:
                t, q = queues[qi]
                if pos[qi] < len(q):
                    i, p = q[pos[qi]]
                    dep = need.get((qi, pos[qi])) if need else None
                    if dep is not None and pos[dep[0]] <= dep[1]:
                        pass  # AFTER: that free has not happened yet
                    elif not ((p == 0 and not live) or (p == 1 and live) or
                              (p == 2 and not live)):
                        stack[-1] = (qi + 1, live)
                        pos[qi] += 1
                        order.append((t, (i, p), qi))
                        stack.append((0, p != 0))
                        advanced = True
                        break
                qi += 1
            if advanced:
                continue
            # every choice failed here: undo the step that led here
            stack.pop()
            if order:
                _, _, back = order.pop()
                pos[back] -= 1
        return None


def possible_owners(trace, address):
    """Every allocation that some order allowed by the format (epochs, then
    the causal rule within an epoch, program order per thread) leaves live
    at `address` at the end: a set of (thread, index), with None for "not
    live". A trace that fully determines the replay gives one element."""
    evs = []
    for t, s in trace.threads.items():
        for i in range(len(s)):
            k = s.kind[i]
            if k == REALLOC and s.addr[i] != s.old[i]:
                if s.old[i] == address:
                    evs.append((s.epoch[i], t, i, 0))
                if s.addr[i] == address:
                    evs.append((s.epoch[i], t, i, 1))
            elif s.addr[i] == address:
                evs.append((s.epoch[i], t, i, {ALLOC: 1, FREE: 0, REALLOC: 2}[k]))
    evs.sort()
    after = trace.after_constraints() if hasattr(trace, "after_constraints") else {}
    states = {None}   # owner of the live block, None = not live
    j = 0
    while j < len(evs):
        e = evs[j][0]
        group = []
        while j < len(evs) and evs[j][0] == e:
            group.append(evs[j])
            j += 1
        queues = {}
        for _, t, i, p in group:
            queues.setdefault(t, []).append((i, p))
        qs = list(queues.items())
        out = set()
        where = {(t, i): (q, k) for q, (t, lst) in enumerate(qs)
                 for k, (i, p) in enumerate(lst) if p == 0}
        need = {}
        for q, (t, lst) in enumerate(qs):
            for k, (i, p) in enumerate(lst):
                if p != 0 and after.get((t, i)) in where:
                    need[(q, k)] = where[after[(t, i)]]

        def walk(pos, owner):
            if all(pos[q] == len(qs[q][1]) for q in range(len(qs))):
                out.add(owner)
                return
            for q, (t, lst) in enumerate(qs):
                if pos[q] == len(lst):
                    continue
                i, p = lst[pos[q]]
                dep = need.get((q, pos[q]))
                if dep is not None and pos[dep[0]] <= dep[1]:
                    continue
                if p == 0 and owner is not None:
                    nxt = None
                elif p == 1 and owner is None:
                    nxt = (t, i)
                elif p == 2 and owner is not None:
                    nxt = (t, i)
                else:
                    continue
                pos[q] += 1
                walk(pos, nxt)
                pos[q] -= 1

        for st in states:
            walk([0] * len(qs), st)
        states = out
    return states


def report_json(path):
    """The analyzer's JSON report, or None when it has no such mode yet."""
    p = subprocess.run([REPORT, "--format=json", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=600)
    if p.returncode != 0:
        if "usage" in p.stderr or "unrecognized" in p.stderr or "unknown" in p.stderr:
            return None
        raise AssertionError("leaktrace-report --format=json failed (%d): %s" % (
            p.returncode, p.stderr.strip()))
    return json.loads(p.stdout)


# ---------------------------------------------------------------- base


class E2E(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lt-e2e-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def out_pattern(self):
        return os.path.join(self.tmp, "leaktrace.%e.%p.bin")

    def traced(self, argv, env=None, **kw):
        e = {"LEAKTRACE_OUTPUT": self.out_pattern()}
        e.update(env or {})
        return run(argv, env=e, **kw)

    def trace_files(self, d=None):
        d = d or self.tmp
        return sorted(os.path.join(d, f) for f in os.listdir(d)
                      if f.startswith("leaktrace."))

    def only_trace(self):
        files = self.trace_files()
        self.assertEqual(len(files), 1, "expected exactly one trace, got %s" % files)
        return self.decode(files[0])

    def decode(self, path, events=True):
        t = Trace(path, events)
        self.assertEqual(t.rc, 0, "dump of %s failed: %s" % (path, t.stderr))
        return t

    def assertOk(self, proc, rc=0):
        self.assertEqual(proc.returncode, rc, "exit status %d, stderr:\n%s" % (
            proc.returncode, proc.stderr[-3000:] if isinstance(proc.stderr, str) else proc.stderr))

    def assertEndMatchesEvents(self, tr, kind="normal", status=None):
        """Exactly one END record of this kind whose totals equal the events
        in the trace (a realloc counts one alloc and one free)."""
        self.assertEqual(len(tr.ends), 1, "END records: %s" % tr.ends)
        end = tr.ends[0]
        self.assertEqual(end["kind"], kind, end)
        if status is not None:
            self.assertEqual(end["status"], status, "END status %s" % end)
        c = tr.counts()
        self.assertEqual(end["allocs"], c["alloc"] + c["realloc"],
                         "END allocs vs records %s %s" % (end, c))
        self.assertEqual(end["frees"], c["free"] + c["realloc"],
                         "END frees vs records %s %s" % (end, c))

    def assertJsonAgrees(self, tr, rp):
        """When leaktrace-report has its JSON report, its summary must
        agree with the events in the dump and with this file's replay."""
        js = report_json(tr.path)
        if js is None:
            return
        sm = js["summary"]
        c = tr.counts()
        got = {k: sm.get(k) for k in ("allocations", "frees", "leaked_blocks", "leaked_bytes",
                                      "unmatched_frees", "overlapping_allocs")}
        want = {"allocations": c["alloc"] + c["realloc"], "frees": c["free"] + c["realloc"],
                "leaked_blocks": len(rp.live),
                "leaked_bytes": sum(v[0] for v in rp.live.values()),
                "unmatched_frees": 0 if "unmatched_frees" in sm else None,
                "overlapping_allocs": 0 if "overlapping_allocs" in sm else None}
        if got != want:
            # Rare disagreements depend on timing: keep the trace.
            keep = os.path.join(tempfile.gettempdir(), "leaktrace-e2e-failed")
            os.makedirs(keep, exist_ok=True)
            shutil.copy(tr.path, keep)
        self.assertEqual(got, want, "leaktrace-report --format=json summary vs the dump "
                         "(trace kept in %s/)" % os.path.join(tempfile.gettempdir(),
                                                              "leaktrace-e2e-failed"))

    def assertNoAnomalies(self, rp):
        history = ""
        if rp.n_anomalies and rp.first_anomaly is not None:
            a = rp.first_anomaly
            evs = sorted((s.epoch[i], t, i, s.event(i)[0], "new" if s.addr[i] == a else "old",
                          rp.trace.after.get((t, i)) if hasattr(rp.trace, "after") else None)
                         for t, s in rp.trace.threads.items() for i in range(len(s))
                         if s.addr[i] == a or (s.kind[i] == REALLOC and s.old[i] == a))
            history = "\nhistory of %#x (epoch, thread, index, kind, half, after): %s" % (
                a, evs[:40])
        self.assertEqual(rp.n_anomalies, 0,
                         "%d (address, epoch) groups could not be paired, first: %s%s" % (
                             rp.n_anomalies, rp.anomalies[:10], history))


def parse_live_lines(stdout):
    live = {}
    for line in stdout.splitlines():
        sp = line.split()
        if sp and sp[0] == "live":
            live[int(sp[1], 16)] = int(sp[2])
    return live


# ---------------------------------------------------------------- single thread


def single_expected():
    """The event sequence fx_single makes between its markers."""
    n = 1000
    ev = [("alloc", 16 + i) for i in range(n)]
    ev += [("free", 0) for _ in range(0, n, 2)]
    ev += [("realloc", 2000 + i) for i in range(1, n, 4)]
    for i in range(10):
        ev += [("alloc", (i + 1) * 8), ("free", 0)]
    return ev


class single_thread(E2E):
    def run_single(self, preload_after=()):
        p = self.traced([fixture("fx_single")], preload_after=preload_after)
        self.assertOk(p)
        return p, self.only_trace()

    def check_single(self, p, tr):
        win = tr.window("begin", "end")
        self.assertEqual([(k, s) for k, s, _, _, _ in win], single_expected())
        # The live blocks the program printed are exactly the blocks made
        # in the window that the replay finds live at the end.
        printed = parse_live_lines(p.stdout)
        self.assertEqual(len(printed), 500)
        t, _, i0 = tr.marker("begin")
        _, _, i1 = tr.marker("end")
        rp = Replay(tr)
        self.assertNoAnomalies(rp)
        from_window = {a: v[0] for a, v in rp.live.items()
                       if v[1] == t and i0 <= v[2] < i1}
        self.assertEqual(from_window, printed)
        self.assertJsonAgrees(tr, rp)

    def test_window_counts_and_leaks(self):
        p, tr = self.run_single()
        self.check_single(p, tr)

    def test_end_record_totals(self):
        p, tr = self.run_single()
        self.assertEndMatchesEvents(tr, "normal", 0)

    def test_nothing_but_the_program_recorded(self):
        # Outside the window the program makes exactly one allocation,
        # stdout's buffer (4096 bytes on a pipe), and never frees it;
        # nothing the shim does for itself (writer thread, dlsym,
        # libunwind, dl_iterate_phdr) may show up.
        p, tr = self.run_single()
        main = tr.main_thread()
        self.assertEqual(set(tr.threads), {main})
        s = tr.threads[main]
        _, _, i0 = tr.marker("begin")
        _, _, i1 = tr.marker("end")
        outside = [s.event(i)[:2] for i in list(range(i0)) + list(range(i1, len(s)))]
        self.assertEqual(outside, [("alloc", 4096)])

    def test_process_record(self):
        p, tr = self.run_single()
        self.assertEqual(len(tr.processes), 1)
        pr = tr.processes[0]
        self.assertEqual(os.path.basename(tr.path), "leaktrace.fx_single.%d.bin" % pr["pid"])
        self.assertEqual(pr["ppid"], os.getpid())
        self.assertEqual(pr["exe"], os.path.realpath(fixture("fx_single")))
        self.assertEqual(pr["argc"], 1)
        self.assertEqual(pr["args"], [fixture("fx_single")])
        self.assertEqual(pr["flags"], 0)
        self.assertEqual((pr["parent"], pr["prefix"], pr["fork_seq"]), ("", 0, 0))
        self.assertEqual(tr.record_order[0], "block")
        self.assertEqual(tr.record_order[1], "process")
        self.assertEqual(stat.S_IMODE(os.stat(tr.path).st_mode), 0o600)

    def test_module_map_and_no_libstdcxx(self):
        p, tr = self.run_single()
        self.assertGreaterEqual(len(tr.modules), 1)
        mods = tr.modules[0][1]
        exe = tr.module_named("fx_single", mods)
        self.assertIsNotNone(exe, [m["path"] for m in mods])
        self.assertIsNotNone(tr.module_named("libc.so.6", mods))
        self.assertTrue(all(m["lo"] < m["hi"] for m in mods))
        self.assertTrue(exe["build_id"], "fixture has a build-id")
        self.assertLess(tr.modules[0][2], min(tr.stack_pos.values()),
                        "the first module map must precede the first stack")
        self.assertFalse([m for m in mods if "libstdc++" in m["path"]],
                         "the shim pulled libstdc++ into a C program")
        # The stacks of the window's allocations start in main, which is
        # in the fixture.
        win = tr.window("begin", "end")
        frames = tr.stacks[win[0][4]]
        self.assertTrue(exe["lo"] <= frames[0] < exe["hi"], frames)


def fake_trace(events_by_thread):
    """A Trace built from {thread: [(kind, epoch, addr, size, old)]}, to
    check that the replay itself can fail."""
    tr = Trace.__new__(Trace)
    tr.threads = {}
    for t, evs in events_by_thread.items():
        s = tr.threads[t] = Stream()
        for k, e, a, size, old in evs:
            s.kind.append({"alloc": ALLOC, "free": FREE, "realloc": REALLOC}[k])
            s.epoch.append(e)
            s.addr.append(a)
            s.size.append(size)
            s.old.append(old)
            s.stack.append(0)
            s.seg.append(0)
    return tr


class replay_selftest(unittest.TestCase):
    """The checker must be able to say no (runs no program)."""

    def test_cross_thread_order_within_epoch(self):
        # thread 2 frees 0x10 in epoch 1, thread 1 reallocates it in
        # epoch 1 and frees it in epoch 2: fine in the order 1,2,1,1.
        tr = fake_trace({1: [("alloc", 0, 0x10, 8, 0), ("alloc", 1, 0x10, 9, 0),
                             ("realloc", 2, 0x20, 20, 0x10)],
                         2: [("free", 1, 0x10, 0, 0)]})
        rp = Replay(tr)
        self.assertEqual(rp.n_anomalies, 0, rp.anomalies)
        self.assertEqual(rp.live, {0x20: (20, 1, 2)})

    def test_needs_backtracking(self):
        # entering live: t1 frees then allocates, t2 allocates then frees;
        # trying t2's allocation first is a dead end, the only order is
        # t1 free, t2 alloc, t2 free, t1 alloc.
        tr = fake_trace({1: [("alloc", 0, 0x10, 8, 0), ("free", 1, 0x10, 0, 0),
                             ("alloc", 1, 0x10, 9, 0)],
                         2: [("alloc", 1, 0x10, 7, 0), ("free", 1, 0x10, 0, 0)]})
        rp = Replay(tr)
        self.assertEqual(rp.n_anomalies, 0, rp.anomalies)
        self.assertEqual(rp.live, {0x10: (9, 1, 2)})
        self.assertEqual(possible_owners(tr, 0x10), {(1, 2)})

    def test_ambiguous_owner(self):
        tr = fake_trace({1: [("alloc", 0, 0x10, 8, 0)], 2: [("free", 0, 0x10, 0, 0)],
                         3: [("alloc", 0, 0x10, 8, 0)]})
        self.assertEqual(possible_owners(tr, 0x10), {(1, 0), (3, 0)})

    def test_after_record_resolves_ambiguity(self):
        tr = fake_trace({1: [("alloc", 0, 0x10, 8, 0)], 2: [("free", 0, 0x10, 0, 0)],
                         3: [("alloc", 0, 0x10, 8, 0)]})
        tr.after = {(3, 0): (2, 1)}  # thread 3's alloc follows thread 2's 1st free
        self.assertEqual(possible_owners(tr, 0x10), {(3, 0)})
        rp = Replay(tr)
        self.assertEqual(rp.n_anomalies, 0, rp.anomalies)
        self.assertEqual(rp.live, {0x10: (8, 3, 0)})
        tr.after = {(1, 0): (2, 1)}  # the other way round
        self.assertEqual(possible_owners(tr, 0x10), {(1, 0)})
        self.assertEqual(Replay(tr).live, {0x10: (8, 1, 0)})

    def test_unmatched_free(self):
        rp = Replay(fake_trace({1: [("alloc", 0, 0x10, 8, 0), ("free", 0, 0x30, 0, 0)]}))
        self.assertEqual(rp.n_anomalies, 1)

    def test_double_alloc(self):
        rp = Replay(fake_trace({1: [("alloc", 0, 0x10, 8, 0)], 2: [("alloc", 0, 0x10, 8, 0)]}))
        self.assertEqual(rp.n_anomalies, 1)

    def test_free_epoch_after_reuse(self):
        # the free of the first block is stamped with a later epoch than
        # the reuse of its address: no valid order
        rp = Replay(fake_trace({1: [("alloc", 0, 0x10, 8, 0), ("alloc", 1, 0x10, 8, 0)],
                                2: [("free", 2, 0x10, 0, 0)]}))
        self.assertEqual(rp.n_anomalies, 1)


# ---------------------------------------------------------------- 16 threads


class Shared(E2E):
    """A group whose tests share one traced run (made once, in the first
    test that needs it): `self.shared()` returns (proc, trace, replay)."""
    _cache = None
    _dir = None

    @classmethod
    def tearDownClass(cls):
        if cls._dir:
            shutil.rmtree(cls._dir, True)
        cls._cache = cls._dir = None

    def shared(self):
        cls = type(self)
        if cls._cache is None:
            cls._dir = d = tempfile.mkdtemp(prefix="lt-e2e-shared-")
            p = run(self.ARGV(), timeout=240,
                    env={"LEAKTRACE_OUTPUT": os.path.join(d, "leaktrace.%e.%p.bin")})
            files = self.trace_files(d)
            tr = Trace(files[0]) if len(files) == 1 else None
            rp = Replay(tr) if tr is not None and tr.rc == 0 else None
            cls._cache = (p, tr, rp, files)
        p, tr, rp, files = cls._cache
        self.assertOk(p)
        self.assertEqual(len(files), 1, files)
        self.assertEqual(tr.rc, 0, tr.stderr)
        return p, tr, rp


class threads16(Shared):
    ARGV = staticmethod(lambda: [fixture("fx_threads")])

    def test_per_thread_counts(self):
        p, tr, rp = self.shared()
        self.assertEqual(p.stdout, "threads done\n")
        seen = set()
        for k in range(16):
            win = tr.window("t%d-begin" % k, "t%d-end" % k)
            t = tr.marker("t%d-begin" % k)[0]
            seen.add(t)
            allocs = [e for e in win if e[0] == "alloc"]
            frees = [e for e in win if e[0] == "free"]
            self.assertEqual(len(allocs), 5000, "thread %d" % k)
            self.assertEqual({e[1] for e in allocs}, {32 + k})
            self.assertEqual(len(frees), 5000 - (k + 1), "thread %d" % k)
            self.assertEqual(len(win), len(allocs) + len(frees))
        self.assertEqual(len(seen), 16, "16 distinct thread indexes")
        self.assertEqual(len(tr.thread_starts), 17, tr.thread_starts)
        self.assertEqual(len({tid for _, tid in tr.thread_starts}), 17)
        self.assertEqual(sorted(set(tr.thread_ends)), sorted(seen))
        self.assertEndMatchesEvents(tr, "normal", 0)

    def test_replay_pairs_and_leaks(self):
        p, tr, rp = self.shared()
        self.assertNoAnomalies(rp)
        workers = {tr.marker("t%d-begin" % k)[0]: k for k in range(16)}
        for k in range(16):
            leaked = [v for v in rp.live.values() if v[1] in workers and workers[v[1]] == k]
            self.assertEqual(len(leaked), k + 1, "thread %d leaks" % k)
            self.assertEqual({v[0] for v in leaked}, {32 + k})

    def test_analyzer_json_agrees(self):
        p, tr, rp = self.shared()
        self.assertJsonAgrees(tr, rp)


# ---------------------------------------------------------------- cross-thread free


class cross_thread_free(Shared):
    N = 2000000
    ARGV = staticmethod(lambda: [fixture("fx_xfree"), str(cross_thread_free.N)])

    def test_producer_consumer_pairs(self):
        p, tr, rp = self.shared()
        m = re.match(r"passed (\d+) batches (\d+) bad 0$", p.stdout.strip())
        self.assertTrue(m, p.stdout)
        self.assertEqual(int(m.group(1)), self.N)
        batches = int(m.group(2))
        main = tr.main_thread()
        workers = {t for t, _ in tr.thread_starts if t != main}
        self.assertEqual(len(workers), 4)
        c = tr.counts(workers)
        self.assertEqual(c, {"alloc": self.N + batches, "free": self.N + batches,
                             "realloc": 0})
        self.assertNoAnomalies(rp)
        leaked = [a for a, v in rp.live.items() if v[1] in workers]
        self.assertEqual(leaked, [], "false leaks from worker threads")
        self.assertEndMatchesEvents(tr, "normal", 0)

    def test_addresses_do_cross_threads(self):
        # The test only means something if addresses did move between
        # threads: count allocations of an address last freed by another
        # thread.
        p, tr, rp = self.shared()
        main = tr.main_thread()
        workers = {t for t, _ in tr.thread_starts if t != main}
        last_free = {}
        for t in workers:
            s = tr.threads[t]
            for i in range(len(s)):
                if s.kind[i] == FREE:
                    last_free[s.addr[i]] = t
        reused = 0
        for t in workers:
            s = tr.threads[t]
            for i in range(len(s)):
                if s.kind[i] == ALLOC and last_free.get(s.addr[i], t) != t:
                    reused += 1
        self.assertGreater(reused, 10000, "too little cross-thread reuse to test")

    def test_analyzer_json_agrees(self):
        p, tr, rp = self.shared()
        self.assertJsonAgrees(tr, rp)


class swap_slots(Shared):
    """Eight threads swapping blocks through a shared array (fx_swap): an
    address passes through several threads within an epoch, more threads
    than cores starve the writer, and the merge has to reorder (and
    sometimes repair) a lot. Whatever it repairs, no block may be lost or
    freed twice: the blocks swap_worker left live are exactly the ones the
    program says it left live."""
    N = 100000
    ARGV = staticmethod(lambda: [fixture("fx_swap"), str(swap_slots.N)])

    def test_live_blocks_match_the_program(self):
        p, tr, rp = self.shared()
        m = re.match(r"allocs (\d+) frees (\d+) live (\d+)$", p.stdout.strip())
        self.assertTrue(m, p.stdout)
        allocs, frees, live = (int(g) for g in m.groups())
        js = report_json(tr.path)
        self.assertIsNotNone(js)
        c = tr.counts()
        self.assertEqual(js["summary"]["allocations"], c["alloc"] + c["realloc"])
        self.assertEqual(js["summary"]["frees"], c["free"] + c["realloc"])

        def ours(entry):
            return any(f.get("function") == "swap_worker" for f in entry["frames"])
        leaked = [e for e in js["leaks"] if ours(e)]
        self.assertEqual(sum(e["blocks"] for e in leaked), live,
                         "live blocks from swap_worker (%d allocated, %d freed)" % (allocs, frees))


class cross_thread_realloc(Shared):
    """As cross_thread_free, with the consumers reallocating each block
    (which moves it) before freeing it: the realloc's free half must be
    ordered before the producers' reuse of the old address."""
    N = 400000
    ARGV = staticmethod(lambda: [fixture("fx_xfree"), str(cross_thread_realloc.N), "realloc"])

    def test_producer_consumer_realloc_pairs(self):
        p, tr, rp = self.shared()
        m = re.match(r"passed (\d+) batches (\d+) bad 0$", p.stdout.strip())
        self.assertTrue(m, p.stdout)
        batches = int(m.group(2))
        main = tr.main_thread()
        workers = {t for t, _ in tr.thread_starts if t != main}
        c = tr.counts(workers)
        # A realloc during which the epoch advanced is written as a FREE
        # and an ALLOC (one record cannot carry both epochs), so count a
        # realloc as one of each, as the counting conventions do.
        self.assertEqual({"alloc": c["alloc"] + c["realloc"], "free": c["free"] + c["realloc"]},
                         {"alloc": 2 * self.N + batches, "free": 2 * self.N + batches})
        self.assertGreater(c["realloc"], self.N * 9 // 10, "most reallocs are REALLOC records")
        self.assertNoAnomalies(rp)
        self.assertEqual([a for a, v in rp.live.items() if v[1] in workers], [],
                         "false leaks from worker threads")
        self.assertEndMatchesEvents(tr, "normal", 0)
        moved = sum(1 for t in workers for i in range(len(tr.threads[t]))
                    if tr.threads[t].kind[i] == REALLOC
                    and tr.threads[t].addr[i] != tr.threads[t].old[i])
        self.assertGreater(moved, self.N // 2, "reallocs rarely moved the block")

    def test_realloc_ordering_repeated(self):
        # The race this looks for is timing-dependent (a realloc whose new
        # address was freed by another thread just after the epoch
        # advanced), so try two more runs.
        bad = []
        for run_no in range(2):
            d = os.path.join(self.tmp, str(run_no))
            os.mkdir(d)
            p = run([fixture("fx_xfree"), "300000", "realloc"], timeout=120,
                    env={"LEAKTRACE_OUTPUT": os.path.join(d, "leaktrace.%e.%p.bin")})
            self.assertOk(p)
            files = self.trace_files(d)
            self.assertEqual(len(files), 1)
            rp = Replay(self.decode(files[0]))
            if rp.n_anomalies:
                bad.append("run %d: %d groups, first %s" % (run_no, rp.n_anomalies,
                                                            rp.anomalies[0][:300]))
        self.assertEqual(bad, [], "unpairable events (see test_producer_consumer_realloc_pairs)")


class same_epoch_reuse(E2E):
    """Issue point 4 says the trace carries what it takes to replay a free
    in one thread and a reuse of the address by another thread in the
    right order, always. fx_reuse: thread A mallocs X, thread B frees X,
    thread C mallocs X and keeps it, strictly in that order (joins),
    usually within one epoch. The trace must leave C's block, not A's, as
    the one live at the end, whatever order a replay picks among those
    the format allows."""

    def test_epochs_respect_join_order(self):
        # fx_reuse's threads run one at a time, each created after the
        # previous one was joined: every event of a thread happens after
        # every event of the threads before it, so its epochs must not be
        # lower (format.h: a happens-before b => epoch(a) <= epoch(b)).
        p = self.traced([fixture("fx_reuse")])
        self.assertOk(p)
        tr = self.only_trace()
        order = sorted(t for t, _ in tr.thread_starts if t != tr.main_thread())
        self.assertEqual(len(order), 120)
        bad = []
        prev_max, prev_t = 0, None
        for t in order:
            s = tr.threads[t]
            if not len(s):
                continue
            if min(s.epoch) < prev_max:
                bad.append("thread %d: first epoch %d < %d of thread %d before it" % (
                    t, min(s.epoch), prev_max, prev_t))
            prev_max, prev_t = max(prev_max, max(s.epoch)), t
        self.assertEqual(bad, [], "%d threads are stamped earlier than their predecessors" %
                         len(bad))

    def test_report_blames_the_right_call_site(self):
        # The visible consequence: leaktrace-report's leaks by call site.
        p = self.traced([fixture("fx_reuse")])
        self.assertOk(p)
        js = report_json(self.only_trace().path)
        if js is None:
            self.skipTest("leaktrace-report has no JSON report")
        sites = {}
        for leak in js["leaks"]:
            fn = [f["function"] for f in leak["frames"]]
            for name in ("keep_thread", "alloc_thread"):
                if name in fn:
                    sites[name] = sites.get(name, 0) + leak["blocks"]
        self.assertEqual(sites, {"keep_thread": 40},
                         "leaked blocks by call site (all 40 are keep_thread's)")

    def test_trace_determines_the_surviving_block(self):
        p = self.traced([fixture("fx_reuse")])
        self.assertOk(p)
        rounds = []
        for line in p.stdout.splitlines():
            sp = line.split()
            rounds.append((int(sp[1]), int(sp[3], 16), int(sp[5], 16)))
        reused = [(r, a) for r, a, c in rounds if a == c]
        self.assertGreaterEqual(len(reused), 10,
                                "precondition: the fixture rarely got the address back")
        tr = self.only_trace()
        # C's thread in round r: the shim numbers threads in the order
        # of their first event: main, A0, B0, C0, A1, ...
        order = sorted(t for t, _ in tr.thread_starts if t != tr.main_thread())
        self.assertEqual(len(order), 3 * len(rounds))
        wrong = []
        for r, a in reused:
            c_thread = order[3 * r + 2]
            owners = possible_owners(tr, a)
            if owners != {o for o in owners if o is not None and o[0] == c_thread} \
                    or len(owners) != 1:
                evs = [(t, s.epoch[i], s.event(i)[0]) for t, s in tr.threads.items()
                       for i in range(len(s)) if s.addr[i] == a]
                wrong.append("round %d address %#x: C is thread %d, possible survivors "
                             "(thread, index) %s; events (thread, epoch, kind) %s" % (
                                 r, a, c_thread, sorted(owners, key=str), evs))
        self.assertEqual(wrong, [], "%d of %d reuses are ambiguous in the trace:\n%s" % (
            len(wrong), len(reused), "\n".join(wrong[:3])))


# ---------------------------------------------------------------- fork


class fork(E2E):
    def test_fork_child_trace(self):
        p = self.traced([fixture("fx_fork")])
        self.assertOk(p)
        addrs = {}
        child_pid = parent_pid = None
        for line in p.stdout.splitlines():
            sp = line.split()
            if sp[0].startswith("a"):
                addrs[sp[0]] = int(sp[1], 16)
            elif sp[0] == "child":
                child_pid = int(sp[1])
                addrs["c1"], addrs["c2"] = int(sp[3], 16), int(sp[5], 16)
            elif sp[0] == "parent":
                parent_pid = int(sp[1])
                self.assertEqual(int(sp[3]), child_pid)
                self.assertEqual(sp[5], "5", "child exit status")
        ppath = os.path.join(self.tmp, "leaktrace.fx_fork.%d.bin" % parent_pid)
        cpath = os.path.join(self.tmp, "leaktrace.fx_fork.%d.bin" % child_pid)
        self.assertEqual(self.trace_files(), sorted([ppath, cpath]))

        par = self.decode(ppath)
        self.assertEqual([(f[1], f[2]) for f in par.forks], [(child_pid, 1)])
        self.assertEqual(par.forks[0][0], par.marker("parent-before")[0])
        self.assertEndMatchesEvents(par, "normal", 0)
        rp = Replay(par)
        self.assertNoAnomalies(rp)
        mine = set(addrs.values())
        self.assertEqual({a for a in rp.live if a in mine} - {addrs["c1"], addrs["c2"]},
                         {addrs["a0"]})
        self.assertEqual([e[1] for e in par.window("parent-after") if e[0] == "alloc"], [300])

        ch = self.decode(cpath)
        pr = ch.processes[-1]
        self.assertEqual(pr["pid"], child_pid)
        self.assertEqual(pr["ppid"], parent_pid)
        self.assertTrue(pr["flags"] & LT_PROC_FORK_CHILD, pr)
        self.assertEqual(pr["parent"], ppath)
        self.assertGreater(pr["prefix"], 16)
        self.assertLessEqual(pr["prefix"], os.path.getsize(ppath))
        self.assertEqual(pr["fork_seq"], 1)
        # The child's own events: exactly what it did after the fork.
        cw = ch.window("child")
        c3 = cw[3][2] if len(cw) > 3 else None
        self.assertEqual([(k, s, a) for k, s, a, _, _ in cw],
                         [("free", 0, addrs["a0"]), ("alloc", 201, addrs["c1"]),
                          ("alloc", 202, addrs["c2"]), ("alloc", 203, c3), ("free", 0, c3)])
        self.assertFalse([e for e in ch.all_events() if e[1] != "free" and e[2] == 300],
                         "the parent's post-fork allocation is in the child's trace")
        self.assertEqual([(e["kind"], e["status"]) for e in ch.ends], [("normal", 5)])
        # Inherited state: what was live at the fork plus the child's own.
        rc = Replay(ch)
        self.assertNoAnomalies(rc)
        self.assertEqual({a for a in rc.live if a in mine},
                         {addrs["a1"], addrs["a2"], addrs["a3"], addrs["c1"], addrs["c2"]})
        self.assertJsonAgrees(par, rp)
        self.assertJsonAgrees(ch, rc)


    def test_fork_while_threads_allocate(self):
        try:
            p = self.traced([fixture("fx_fork_mt")], timeout=60)
        except subprocess.TimeoutExpired:
            self.fail("fork with allocating threads hung (killed after 60 s)")
        self.assertOk(p)
        self.assertEqual(p.stdout, "forks 20 ok 20\n")
        files = self.trace_files()
        self.assertEqual(len(files), 21, files)
        kinds = []
        for f in files:
            tr = self.decode(f, events=False)
            pr = tr.processes[-1]
            if pr["flags"] & LT_PROC_FORK_CHILD:
                self.assertIn(pr["parent"], files)
                self.assertNotEqual(pr["parent"], f)
                kinds.append(tuple(e["kind"] for e in tr.ends))
            else:
                self.assertEqual([e["kind"] for e in tr.ends], ["normal"])
                self.assertEqual(sorted(seq for _, _, seq in tr.forks), list(range(1, 21)))
        self.assertEqual(sorted(kinds), sorted([("normal",)] * 10 + [("_exit",)] * 10))


    def test_fork_right_after_a_burst(self):
        # The writer compresses blocks a slice at a time; a fork that comes
        # while one is pending must still hand the child a complete prefix.
        p = self.traced([fixture("fx_fork_busy")], timeout=120)
        self.assertOk(p)
        files = self.trace_files()
        self.assertEqual(len(files), 2, files)
        want = {"parent": (1501000, 1501000, 0, 0), "child": (1501000, 1500500, 500, 38500)}
        for f in files:
            s = report_json(f)["summary"]
            tr = self.decode(f, events=False)
            who = "child" if tr.processes[-1]["flags"] & LT_PROC_FORK_CHILD else "parent"
            self.assertEqual((s["allocations"], s["frees"], s["leaked_blocks"],
                              s["leaked_bytes"]), want.pop(who), f)
            self.assertEqual(s["unmatched_frees"], 0)
            self.assertTrue(s["clean_end"])
        self.assertEqual(want, {})


# ---------------------------------------------------------------- exec


class exec(E2E):
    def test_exec_other_program(self):
        execd = fixture("fx_execd")
        p = self.traced([fixture("fx_exec"), execd, "fx_execd"])
        self.assertOk(p)
        self.assertEqual(p.stdout, "execd\n")
        files = self.trace_files()
        self.assertEqual(len(files), 2, files)
        old = [f for f in files if "fx_exec." in os.path.basename(f)]
        new = [f for f in files if "fx_execd." in os.path.basename(f)]
        self.assertEqual((len(old), len(new)), (1, 1), files)
        o, n = self.decode(old[0]), self.decode(new[0])
        self.assertEqual(o.processes[0]["pid"], n.processes[0]["pid"])
        self.assertEqual([path for _, path in o.execs], [execd])
        self.assertEqual([(e["kind"]) for e in o.ends], ["exec"])
        oc = [e for e in o.all_events() if e[2] in (111, 222)]
        self.assertEqual(sorted(e[2] for e in oc if e[1] == "alloc"), [111] * 3)
        self.assertEqual(len(n.processes), 1)
        self.assertEqual(n.processes[0]["exe"], os.path.realpath(execd))
        self.assertEqual(n.processes[0]["args"], ["fx_execd"])
        self.assertEqual(n.processes[0]["flags"] & LT_PROC_FORK_CHILD, 0)
        nsizes = [e[2] for e in n.all_events() if e[1] == "alloc"]
        self.assertEqual(nsizes.count(222), 4)
        self.assertEqual(nsizes.count(111), 0, "the new image's trace holds the old one's events")
        self.assertEqual([e["kind"] for e in n.ends], ["normal"])
        rp = Replay(n)
        self.assertNoAnomalies(rp)
        self.assertEqual(sorted(v[0] for v in rp.live.values() if v[0] == 222), [222] * 3)

    def test_exec_self_numbered_file(self):
        me = fixture("fx_exec")
        p = self.traced([me, me, "fx_exec", "final"])
        self.assertOk(p)
        self.assertEqual(p.stdout, "final\n")
        files = self.trace_files()
        self.assertEqual(len(files), 2, files)
        first, second = sorted(files, key=len)
        self.assertEqual(second, first + ".1")
        a, b = self.decode(first), self.decode(second)
        self.assertEqual([e["kind"] for e in a.ends], ["exec"])
        self.assertEqual(b.processes[0]["args"], ["fx_exec", "final"])
        self.assertEqual([e[2] for e in a.all_events() if e[1] == "alloc" and e[2] in (111, 112)],
                         [111] * 3)
        self.assertEqual([e[2] for e in b.all_events() if e[1] == "alloc" and e[2] in (111, 112)],
                         [112])
        self.assertEqual([e["kind"] for e in b.ends], ["normal"])


    def test_system_posix_spawn_popen(self):
        base = run([fixture("fx_spawn")], traced=False)
        p = self.traced([fixture("fx_spawn")])
        self.assertOk(p)
        self.assertEqual(p.stdout, base.stdout)
        self.assertEqual(p.stdout, "system 3\nposix_spawn 4\npopen from-popen\npclose 0\n")
        files = self.trace_files()
        mine = [f for f in files if "fx_spawn" in os.path.basename(f)]
        self.assertEqual(len(mine), 1, files)
        self.assertGreaterEqual(len(files), 4, "the shells are traced too: %s" % files)
        for f in files:
            tr = self.decode(f, events=False)
            self.assertEqual(len(tr.ends), 1, "%s: %s" % (f, tr.ends))
            self.assertEqual(tr.processes[0]["flags"] & LT_PROC_FORK_CHILD, 0, f)


# ---------------------------------------------------------------- dlopen


class dlopen(E2E):
    def test_module_map_follows_dlopen(self):
        lib = os.path.realpath(ALLOCLIB)
        p = self.traced([fixture("fx_dlopen"), lib])
        self.assertOk(p)
        self.assertEqual(p.stdout, "dlopen done\n")
        tr = self.only_trace()
        has_lib = [any(m["path"] == lib for m in mods) for _, mods, _ in tr.modules]
        gens = [g for g, _, _ in tr.modules]
        self.assertEqual(gens, sorted(set(gens)), "generations increase")
        self.assertFalse(has_lib[0], "library in the map before dlopen")
        self.assertIn(True, has_lib, "no module map with the library after dlopen "
                      "(module maps written: generations %s)" % gens)
        self.assertFalse(has_lib[-1], "library still in the last map after dlclose")
        first = has_lib.index(True)
        libmod = next(m for m in tr.modules[first][1] if m["path"] == lib)
        # Allocations made inside the library: 5 pointers' array + 5 blocks.
        # then dlclose frees what the loader allocated in dlopen
        win = tr.window("loaded", "after-dlclose")
        self.assertEqual([(k, s) for k, s, _, _, _ in win[:13]],
                         [("alloc", 40)] + [("alloc", 4242 + i) for i in range(5)]
                         + [("free", 0)] * 6 + [("alloc", 4343)])
        self.assertEqual({k for k, _, _, _, _ in win[13:]}, {"free"})
        for k, s, a, _, st in win:
            if k == "alloc":
                frames = tr.stacks[st]
                # symbolized against the newest map written before the
                # stack that holds the frame (format.h, STACK)
                before = [mods for _, mods, at in tr.modules if at < tr.stack_pos[st]]
                self.assertTrue(any(any(m["path"] == lib for m in mods) for mods in before),
                                "stack %d is written before any map holding %s" % (st, lib))
                self.assertTrue(libmod["lo"] <= frames[0] < libmod["hi"],
                                "size %d: innermost frame %#x outside %s [%#x,%#x)" % (
                                    s, frames[0], lib, libmod["lo"], libmod["hi"]))
        self.assertEqual(len(libmod["build_id"]), 40)
        self.assertEndMatchesEvents(tr, "normal", 0)

    def test_report_symbolizes_unloaded_library(self):
        # The 4343-byte block from the library is still live after
        # dlclose; the report must name the library function that
        # allocated it.
        lib = os.path.realpath(ALLOCLIB)
        p = self.traced([fixture("fx_dlopen"), lib])
        self.assertOk(p)
        js = report_json(self.only_trace().path)
        if js is None:
            self.skipTest("leaktrace-report has no JSON report")
        leak = [l for l in js["leaks"] if l["bytes"] == 4343]
        self.assertEqual(len(leak), 1, [l["bytes"] for l in js["leaks"]])
        frames = [(f["function"], os.path.basename(f["module"] or "")) for f in leak[0]["frames"]]
        self.assertIn(("lib_block", "libfx_alloclib.so"), frames[:3], frames)


# ---------------------------------------------------------------- C++


class cxx(E2E):
    def setUp(self):
        super().setUp()
        if not os.path.exists(fixture("fx_cxx")):
            self.skipTest("no C++ compiler: fx_cxx not built")

    def test_new_delete(self):
        base = run([fixture("fx_cxx")], traced=False)
        p = self.traced([fixture("fx_cxx")])
        self.assertOk(p)
        self.assertEqual(p.stdout, base.stdout)
        self.assertEqual(p.stdout, "nothrow null sizeof_vector 24\n")
        tr = self.only_trace()
        win = tr.window("begin", "end")
        # The failing nothrow new throws and catches std::bad_alloc inside
        # libstdc++: one exception object (136 bytes) allocated and freed.
        self.assertEqual([(k, s) for k, s, _, _, _ in win],
                         [("alloc", 4), ("alloc", 100), ("alloc", 68), ("alloc", 24),
                          ("alloc", 4000), ("alloc", 136)] + [("free", 0)] * 6)
        by_addr = {a: s for k, s, a, _, _ in win if k == "alloc"}
        self.assertEqual([by_addr[a] for k, _, a, _, _ in win if k == "free"],
                         [136, 4000, 24, 68, 100, 4])
        self.assertEndMatchesEvents(tr, "normal", 0)

    def test_libstdcxx_emergency_pool_recorded(self):
        p = self.traced([fixture("fx_cxx")])
        self.assertOk(p)
        tr = self.only_trace()
        t, _, i = tr.marker("begin")
        stdcxx = tr.module_named("libstdc++.so.6")
        self.assertIsNotNone(stdcxx)
        early = [tr.threads[t].event(x) for x in range(i)]
        pool = [e for e in early if e[0] == "alloc" and e[4] in tr.stacks and
                any(stdcxx["lo"] <= f < stdcxx["hi"] for f in tr.stacks[e[4]])]
        self.assertTrue(pool, "no allocation from libstdc++ before main: %s" % early[:5])
        self.assertGreaterEqual(max(e[1] for e in pool), 1024)

    def test_runtime_pool_is_not_listed_as_a_leak(self):
        # fx_cxx frees everything it allocates: the one block live at exit
        # is libstdc++'s pool (glibc's stdout buffer aside). The text report
        # lists it apart, JSON marks it, --show-hidden lists it.
        p = self.traced([fixture("fx_cxx")])
        self.assertOk(p)
        tr = self.only_trace()
        js = report_json(tr.path)
        runtime = [e for e in js["leaks"] if e.get("runtime")]
        self.assertEqual(len(runtime), 1, js["leaks"])
        self.assertGreaterEqual(runtime[0]["bytes"], 1024)
        text = subprocess.run([REPORT, "--no-color", tr.path], stdout=subprocess.PIPE,
                              text=True, timeout=60).stdout
        leaks = text.split("LEAKS", 1)[1].split("\nPEAK", 1)[0]
        self.assertIn("not listed: %s bytes in 1 block that the C++ runtime" %
                      format(runtime[0]["bytes"], ","), leaks)
        self.assertNotIn("(%s bytes in 1 block, 1 allocation here)" %
                         format(runtime[0]["bytes"], ","), leaks)
        shown = subprocess.run([REPORT, "--no-color", "--show-hidden", tr.path],
                               stdout=subprocess.PIPE, text=True, timeout=60).stdout
        self.assertIn("(%s bytes in 1 block, 1 allocation here)" %
                      format(runtime[0]["bytes"], ","), shown)


# ---------------------------------------------------------------- entry points


class entry_points(E2E):
    def expected(self, stderr):
        """The records fx_entry's calls must produce, from its "ev" lines."""
        ev = []
        for line in stderr.splitlines():
            sp = line.split()
            if not sp or sp[0] != "ev":
                continue
            name = sp[1]
            a = int(sp[2], 16) if sp[2] != "(nil)" else 0
            o = int(sp[3], 16) if sp[3] != "(nil)" else 0
            size = {"malloc": None, "realloc-grow": 5000, "realloc-shrink": 20,
                    "realloc-null": 30, "calloc": 21, "reallocarray": 32,
                    "posix_memalign": 100, "aligned_alloc": 512, "memalign": 50,
                    "valloc": 100, "pvalloc": 4096, "malloc-big": 16 << 20,
                    "realloc-big": 32 << 20}.get(name)
            if name == "free":
                ev.append(("free", 0, o, 0))
            elif name == "realloc-zero":
                self.assertEqual(a, 0, "glibc realloc(p, 0) returns NULL")
                ev.append(("free", 0, o, 0))
            elif name in ("realloc-grow", "realloc-shrink", "realloc-big"):
                ev.append(("realloc", size, a, o))
            elif name == "malloc":
                ev.append(("alloc", None, a, 0))
            else:
                ev.append(("alloc", size, a, 0))
        # the two plain mallocs are 10 and 40 bytes
        sizes = iter([10, 40])
        return [(k, next(sizes) if s is None else s, a, o) for k, s, a, o in ev]

    def test_every_entry_point_recorded_exactly(self):
        p = self.traced([fixture("fx_entry")])
        self.assertOk(p)
        tr = self.only_trace()
        win = tr.window("begin", "end")
        got = [(k, s, a, o) for k, s, a, o, _ in win]
        self.assertEqual(got, self.expected(p.stderr))
        self.assertEndMatchesEvents(tr, "normal", 0)

    def test_behaviour_unchanged(self):
        base = run([fixture("fx_entry")], traced=False)
        p = self.traced([fixture("fx_entry")])
        self.assertOk(base)
        self.assertOk(p)
        self.assertEqual(p.stdout, base.stdout)
        # spot checks of what glibc itself does, so a wrong expectation
        # cannot hide in both runs
        for line in ("realloc-huge ok=0 errno=ENOMEM", "calloc-overflow ok=0 errno=ENOMEM",
                     "reallocarray-overflow ok=0 errno=ENOMEM",
                     "posix_memalign-einval ok=0 errno=EINVAL",
                     "posix_memalign-huge ok=0 errno=ENOMEM", "malloc-huge ok=0 errno=ENOMEM",
                     "aligned_alloc-huge ok=0 errno=ENOMEM", "memalign-huge ok=0 errno=ENOMEM",
                     "valloc-huge ok=0 errno=ENOMEM", "errno-kept ok=1 errno=EILSEQ",
                     "realloc-zero ok=0 errno=0", "usable 24"):
            self.assertIn(line + "\n", p.stdout)


# ---------------------------------------------------------------- abrupt ends


class abrupt_exits(E2E):
    def check(self, how, rc, end, ms="300"):
        base = run([fixture("fx_die"), how, ms], traced=False)
        self.assertEqual(base.returncode, rc, "native run")
        p = self.traced([fixture("fx_die"), how, ms])
        self.assertEqual(p.returncode, rc, p.stderr)
        tr = self.only_trace()
        t, _, i = tr.marker("allocated")
        before = [tr.threads[t].event(x) for x in range(i)]
        self.assertEqual(len([e for e in before if e[0] == "alloc" and e[1] == 48]), 1000,
                         "allocations made 300 ms before the end are missing")
        self.assertEqual([(e["kind"], e["status"]) for e in tr.ends], end)
        return tr

    def test_abort(self):
        self.check("abort", -signal.SIGABRT, [("abort", 134)])

    def test_underscore_exit(self):
        self.check("_exit", 3, [("_exit", 3)])

    def test_exit(self):
        self.check("exit", 4, [("normal", 4)])

    def test_quick_exit_right_away(self):
        # No flush has happened yet: the shim's at_quick_exit handler,
        # the last to run, writes everything, the program's own handler's
        # free included.
        tr = self.check("quick_exit", 5, [("normal", 5)], ms="0")
        t = tr.main_thread()
        self.assertEqual(tr.counts([t])["free"], 1)

    def test_return_from_main_status(self):
        self.check("return", 6, [("normal", 6)])

    def test_sigsegv_program_handler_still_runs(self):
        p = self.check("segv-handler", 9, [("_exit", 9)])

    def test_sigsegv(self):
        self.check("segv", -signal.SIGSEGV, [("signal", 128 + signal.SIGSEGV)])

    def test_sigkill(self):
        tr = self.check("kill", -signal.SIGKILL, [])
        self.assertEqual(tr.ends, [])

    def test_sigkill_150ms_after(self):
        # the last flush is at most 100 ms old
        self.check("kill", -signal.SIGKILL, [], ms="150")

    def test_sigkill_from_outside_while_busy(self):
        e = clean_env({"LEAKTRACE_OUTPUT": self.out_pattern(), "LD_PRELOAD": SHIM})
        proc = subprocess.Popen([fixture("fx_xfree"), "100000000"], env=e,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        proc.kill()
        self.assertEqual(proc.wait(timeout=10), -signal.SIGKILL)
        files = self.trace_files()
        self.assertEqual(len(files), 1)
        tr = self.decode(files[0], events=False)
        self.assertEqual(tr.ends, [])
        self.assertGreater(tr.event_count, 10000, "little of 0.2 s of work is in the trace")


# ---------------------------------------------------------------- constructors


class ctor_dtor(E2E):
    def test_early_and_late_allocations(self):
        p = self.traced([fixture("fx_ctor")])
        self.assertOk(p)
        self.assertEqual(p.stdout, "ctor block set\n")
        tr = self.only_trace()
        t, _, i = tr.marker("main")
        s = tr.threads[t]
        before = [s.event(x) for x in range(i)]
        after = [s.event(x) for x in range(i, len(s))]
        self.assertEqual([e[1] for e in before if e[0] == "alloc" and e[1] == 777], [777],
                         "the library constructor's allocation is not before main")
        for size in (555, 333):
            al = [e for e in after if e[0] == "alloc" and e[1] == size]
            self.assertEqual(len(al), 1, "late allocation of %d bytes" % size)
            self.assertIn(("free", 0, al[0][2], 0), [e[:4] for e in after],
                          "late free of the %d-byte block" % size)
        self.assertEqual(len(tr.ends), 1)
        rp = Replay(tr)
        self.assertNoAnomalies(rp)
        self.assertEqual(sorted(v[0] for v in rp.live.values() if v[0] in (777, 555, 333)),
                         [777])


# ---------------------------------------------------------------- exit from a thread


class exit_from_thread(E2E):
    def test_exit_while_others_allocate(self):
        for attempt in range(5):
            d = os.path.join(self.tmp, str(attempt))
            os.mkdir(d)
            try:
                p = run([fixture("fx_exit_thread")], timeout=30,
                        env={"LEAKTRACE_OUTPUT": os.path.join(d, "leaktrace.%e.%p.bin")})
            except subprocess.TimeoutExpired:
                self.fail("attempt %d hung (killed after 30 s)" % attempt)
            self.assertEqual(p.returncode, 7, "attempt %d: %s" % (attempt, p.stderr))
            files = self.trace_files(d)
            self.assertEqual(len(files), 1)
            tr = self.decode(files[0], events=False)
            self.assertEqual(tr.stderr, "", "attempt %d" % attempt)
            self.assertEqual([(e["kind"], e["status"]) for e in tr.ends], [("normal", 7)])
            self.assertGreater(tr.event_count, 1000)


# ---------------------------------------------------------------- many threads


class many_threads(E2E):
    N = 100000

    def test_thread_state_reclaimed(self):
        base = run([fixture("fx_many_threads"), str(self.N)], traced=False, timeout=120)
        self.assertOk(base)
        p = self.traced([fixture("fx_many_threads"), str(self.N)], timeout=240)
        self.assertOk(p)
        hwm = lambda out: int(out.split()[3])
        native, traced = hwm(base.stdout), hwm(p.stdout)
        self.assertLess(traced - native, 64 * 1024,
                        "peak RSS %d kB traced vs %d kB native" % (traced, native))
        tr = self.only_trace()
        self.assertEqual(len(tr.thread_starts), self.N + 1)
        self.assertEqual(len(set(tr.thread_ends)), self.N)
        sizes64 = sum(1 for s in tr.threads.values()
                      for i in range(len(s)) if s.kind[i] == ALLOC and s.size[i] == 64)
        self.assertEqual(sizes64, self.N)
        self.assertEndMatchesEvents(tr, "normal", 0)


# ---------------------------------------------------------------- output path


class output_path(E2E):
    def test_pattern_pid_and_exe(self):
        p = run([fixture("fx_marker")],
                env={"LEAKTRACE_OUTPUT": os.path.join(self.tmp, "out-%e-%p-%%.bin")})
        self.assertOk(p)
        files = os.listdir(self.tmp)
        self.assertEqual(len(files), 1, files)
        tr = self.decode(os.path.join(self.tmp, files[0]))
        self.assertEqual(files[0], "out-fx_marker-%d-%%.bin" % tr.processes[0]["pid"])

    def test_relative_pattern_and_umask(self):
        # relative to the working directory; mode 0600 whatever the umask
        e = clean_env({"LEAKTRACE_OUTPUT": "rel-%e.bin", "LD_PRELOAD": SHIM})
        p = subprocess.run([fixture("fx_marker")], env=e, cwd=self.tmp, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           preexec_fn=lambda: os.umask(0), timeout=60)
        self.assertOk(p)
        self.assertEqual(os.listdir(self.tmp), ["rel-fx_marker.bin"])
        path = os.path.join(self.tmp, "rel-fx_marker.bin")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.decode(path).marker("alpha")

    def test_default_name_in_cwd(self):
        p = run([fixture("fx_marker")], cwd=self.tmp)
        self.assertOk(p)
        files = os.listdir(self.tmp)
        self.assertEqual(len(files), 1, files)
        tr = self.decode(os.path.join(self.tmp, files[0]))
        self.assertEqual(files[0], "leaktrace.fx_marker.%d.bin" % tr.processes[0]["pid"])
        self.assertEqual(stat.S_IMODE(os.stat(tr.path).st_mode), 0o600)

    def test_existing_file_not_truncated(self):
        fixed = os.path.join(self.tmp, "fixed.bin")
        with open(fixed, "wb") as f:
            f.write(b"precious")
        p = run([fixture("fx_marker")], env={"LEAKTRACE_OUTPUT": fixed})
        self.assertOk(p)
        with open(fixed, "rb") as f:
            self.assertEqual(f.read(), b"precious")
        others = sorted(set(os.listdir(self.tmp)) - {"fixed.bin"})
        if others:
            # the shim picked a numbered variant
            self.assertEqual(others, ["fixed.bin.1"])
            self.assertEqual(p.stdout, "snapshot=0\n")
            self.decode(fixed + ".1").marker("alpha")
        else:
            # or it refused, with one line on stderr, and ran untraced
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)

    def test_symlink_not_followed(self):
        victim = os.path.join(self.tmp, "victim")
        with open(victim, "wb") as f:
            f.write(b"victim")
        os.symlink(victim, os.path.join(self.tmp, "link.bin"))
        os.symlink(os.path.join(self.tmp, "dangling-target"),
                   os.path.join(self.tmp, "dangling.bin"))
        for name in ("link.bin", "dangling.bin"):
            p = run([fixture("fx_marker")],
                    env={"LEAKTRACE_OUTPUT": os.path.join(self.tmp, name)})
            self.assertOk(p)
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), b"victim")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "dangling-target")),
                         "the shim created a file through a dangling symlink")

    def test_unwritable_directory(self):
        notdir = os.path.join(self.tmp, "plainfile")
        with open(notdir, "w") as f:
            f.write("x")
        for target in (os.path.join(self.tmp, "missing", "t.bin"),
                       os.path.join(notdir, "t.bin")):
            p = run([fixture("fx_single")], env={"LEAKTRACE_OUTPUT": target})
            self.assertOk(p)
            self.assertEqual(len(p.stdout.splitlines()), 500)
            lines = p.stderr.splitlines()
            self.assertEqual(len(lines), 1, "stderr should be one line, got:\n" + p.stderr)
            self.assertTrue(lines[0].startswith("leaktrace:"), lines[0])
            self.assertIn(target, lines[0])
        self.assertEqual(sorted(os.listdir(self.tmp)), ["plainfile"])


# ---------------------------------------------------------------- markers


class markers(E2E):
    def test_without_shim_returns_minus_one(self):
        # linked without the shim: no DT_NEEDED on it
        ldd = subprocess.run(["ldd", fixture("fx_marker")], stdout=subprocess.PIPE,
                             text=True)
        self.assertNotIn("leaktrace", ldd.stdout)
        p = run([fixture("fx_marker")], traced=False)
        self.assertOk(p)
        self.assertEqual(p.stdout, "snapshot=-1\n")

    def test_marker_record(self):
        p = self.traced([fixture("fx_marker")])
        self.assertOk(p)
        self.assertEqual(p.stdout, "snapshot=0\n")
        tr = self.only_trace()
        t, name, _ = tr.marker("alpha")
        self.assertEqual(t, tr.main_thread())
        self.assertEqual(len(tr.markers), 1)

    def test_snapshot_signal(self):
        p = self.traced([fixture("fx_marker"), "signal"],
                        env={"LEAKTRACE_SNAPSHOT_SIGNAL": "SIGUSR2"})
        self.assertOk(p)
        self.assertEqual(p.stdout, "snapshot=0\nafter signal\n")
        tr = self.only_trace()
        self.assertEqual(len(tr.markers), 2, tr.markers)
        self.assertEqual(tr.markers[0][1], "alpha")

    def test_snapshot_signal_from_outside(self):
        e = clean_env({"LEAKTRACE_SNAPSHOT_SIGNAL": "USR2",
                       "LEAKTRACE_OUTPUT": self.out_pattern(), "LD_PRELOAD": SHIM})
        proc = subprocess.Popen(["sleep", "1"], env=e)
        time.sleep(0.3)
        proc.send_signal(signal.SIGUSR2)
        self.assertEqual(proc.wait(timeout=10), 0, "sleep killed by SIGUSR2")
        tr = self.only_trace()
        self.assertEqual(len(tr.markers), 1, tr.markers)
        # The marker comes from the writer's pseudo-thread 0, which is not
        # one of the program's threads.
        self.assertEqual(report_json(self.trace_files()[0])["summary"]["threads"], 1)


# ---------------------------------------------------------------- stacks


class stacks(E2E):
    def deep(self, env, levels=20):
        p = self.traced([fixture("fx_deep"), str(levels)], env=env)
        self.assertOk(p)
        tr = self.only_trace()
        win = tr.window("begin", "end")
        self.assertEqual([(k, s) for k, s, _, _, _ in win], [("alloc", 999)])
        exe = tr.module_named("fx_deep")
        frames = tr.stacks.get(win[0][4], [])
        return tr, exe, frames

    def test_walkers_survive_code_without_frame_pointers(self):
        # Regression: Debian's python3 keeps data in rbp; the frame-pointer
        # walker followed it to 0xfff...ff0, where "f + 16 > top" wrapped
        # to a pass and the read crashed the program. Every walker must
        # give a short stack there, never a crash.
        if not os.path.exists("/usr/bin/python3"):
            self.skipTest("no /usr/bin/python3")
        for mode in ("fp", "fast", "libunwind"):
            p = self.traced(["/usr/bin/python3", "-c", "print(sum(range(1000)))"],
                            env={"LEAKTRACE_UNWIND": mode, "PYTHONMALLOC": "malloc"})
            self.assertEqual((p.returncode, p.stdout), (0, "499500\n"), mode + ": " + p.stderr)

    def test_default_libunwind(self):
        tr, exe, frames = self.deep({})
        self.assertEqual(tr.processes[0]["flags"], 0)
        self.assertGreaterEqual(len(frames), 22)
        self.assertTrue(all(exe["lo"] <= f < exe["hi"] for f in frames[:22]), frames)
        self.assertEqual(len(set(frames[1:21])), 1, "the 20 recursive return addresses")

    def test_default_depth_limit_64(self):
        tr, exe, frames = self.deep({}, levels=100)
        self.assertEqual(len(frames), 64)
        self.assertTrue(all(exe["lo"] <= f < exe["hi"] for f in frames), frames)

    def test_deepest_setting_on_a_deep_stack(self):
        # Regression: at LEAKTRACE_DEPTH above 72 the fast walker wrote
        # past the end of its memo's slot buffer and the program died of
        # SIGSEGV on a deep stack.
        for mode in ("fast", "check"):
            for f in self.trace_files():
                os.unlink(f)
            tr, exe, frames = self.deep({"LEAKTRACE_DEPTH": "256", "LEAKTRACE_UNWIND": mode},
                                        levels=300)
            self.assertEqual(len(frames), 256, mode)
            self.assertTrue(all(exe["lo"] <= f < exe["hi"] for f in frames), mode)

    def test_depth_4(self):
        tr, exe, frames = self.deep({"LEAKTRACE_DEPTH": "4"})
        self.assertEqual(len(frames), 4)
        self.assertTrue(all(exe["lo"] <= f < exe["hi"] for f in frames), frames)
        self.assertLessEqual(max(len(f) for f in tr.stacks.values()), 4)

    def test_depth_0(self):
        tr, exe, frames = self.deep({"LEAKTRACE_DEPTH": "0"})
        self.assertTrue(tr.processes[0]["flags"] & LT_PROC_NO_STACKS)
        self.assertEqual(frames, [])
        self.assertEqual({e[5] for e in tr.all_events() if e[1] != "free"}, {0})
        self.assertEqual([s for s, f in tr.stacks.items() if f], [])

    def test_frame_pointer_unwind_matches_libunwind(self):
        tr, exe, lu = self.deep({})
        lu_off = [f - exe["bias"] for f in lu[:22]]
        os.unlink(tr.path)
        tr2, exe2, fp = self.deep({"LEAKTRACE_UNWIND": "fp"})
        self.assertTrue(tr2.processes[0]["flags"] & LT_PROC_FP_UNWIND)
        self.assertEqual([f - exe2["bias"] for f in fp[:22]], lu_off)


# ---------------------------------------------------------------- other allocators


class other_allocators(E2E):
    def check_allocator(self, lib):
        if not os.path.exists(lib):
            self.skipTest("%s not installed" % lib)
        p = self.traced([fixture("fx_single")], preload_after=[lib])
        self.assertOk(p)
        tr = self.only_trace()
        self.assertIsNotNone(tr.module_named(os.path.basename(lib)))
        single_thread.check_single(self, p, tr)
        self.assertEndMatchesEvents(tr, "normal", 0)
        for f in self.trace_files():
            os.unlink(f)
        p = self.traced([fixture("fx_threads")], preload_after=[lib])
        self.assertOk(p)
        tr = self.only_trace()
        for k in range(16):
            win = tr.window("t%d-begin" % k, "t%d-end" % k)
            self.assertEqual(len([e for e in win if e[0] == "alloc" and e[1] == 32 + k]), 5000)
            self.assertEqual(len([e for e in win if e[0] == "free"]), 5000 - (k + 1))
        self.assertNoAnomalies(Replay(tr))

    def check_allocator_more(self, lib):
        if not os.path.exists(lib):
            self.skipTest("%s not installed" % lib)
        # behaviour: the same stdout under lib alone and under shim + lib
        base = run([fixture("fx_entry"), "portable"], traced=False, preload_after=[lib])
        p = self.traced([fixture("fx_entry"), "portable"], preload_after=[lib])
        self.assertOk(base)
        self.assertOk(p)
        self.assertEqual(p.stdout, base.stdout)
        for f in self.trace_files():
            os.unlink(f)
        # cross-thread frees pair under this allocator too
        p = self.traced([fixture("fx_xfree"), "200000"], preload_after=[lib], timeout=120)
        self.assertOk(p)
        tr = self.only_trace()
        rp = Replay(tr)
        self.assertNoAnomalies(rp)
        main = tr.main_thread()
        workers = {t for t, _ in tr.thread_starts if t != main}
        c = tr.counts(workers)
        self.assertEqual(c["alloc"], c["free"])
        # (Which thread's block survives is not checked here: with a
        # shared heap the main thread may get a worker's address back in
        # the same epoch; see the same_epoch_reuse group.)
        total = tr.counts()
        self.assertEqual(len(rp.live), total["alloc"] - total["free"])
        self.assertEndMatchesEvents(tr, "normal", 0)

    def test_jemalloc(self):
        self.check_allocator(JEMALLOC)

    def test_jemalloc_entry_points_and_cross_thread(self):
        self.check_allocator_more(JEMALLOC)

    def test_tcmalloc_minimal_entry_points_and_cross_thread(self):
        self.check_allocator_more(TCMALLOC)

    def test_tcmalloc_minimal(self):
        self.check_allocator(TCMALLOC)


# ---------------------------------------------------------------- real programs


class python_frames(E2E):
    """CPython 3.11 under the shim (PYTHONMALLOC=malloc): allocations are
    reported at the Python line that made them, with the Python callers,
    as tracemalloc would; the interpreter's own frames are hidden."""

    PY = "/usr/bin/python3"

    def run_script(self, src, env=None):
        if not os.path.exists(self.PY):
            self.skipTest("no " + self.PY)
        ver = run([self.PY, "-c", "import sys; print(sys.version_info[:2])"], traced=False)
        if ver.stdout.strip() != "(3, 11)":
            self.skipTest("Python frames are recorded for CPython 3.11 only")
        path = os.path.join(self.tmp, "script.py")
        with open(path, "w") as f:
            f.write(src)
        e = {"PYTHONMALLOC": "malloc"}
        e.update(env or {})
        p = self.traced([self.PY, path], env=e)
        self.assertOk(p)
        return path, p, report_json(self.trace_files()[0])

    def at(self, rep, function, path, line):
        """Leaks whose first frame is function (path:line)."""
        return [l for l in rep["leaks"] if l["frames"] and
                (l["frames"][0]["function"], l["frames"][0]["file"],
                 l["frames"][0]["line"]) == (function, path, line)]

    # The kept strings are made at line 5, in handle(), called from
    # main() at line 9, called at line 11; os._exit keeps them live.
    LEAKY = ("import os, sys\n"
             "kept = []\n"
             "def handle(i):\n"
             "    part = 'x' * 1000\n"
             "    s = part + str(i)\n"
             "    kept.append(s)\n"
             "def main():\n"
             "    for i in range(2000):\n"
             "        handle(i)\n"
             "    print(sum(sys.getsizeof(s) for s in kept))\n"
             "main()\n"
             "sys.stdout.flush()\n"
             "os._exit(0)\n")

    def test_leak_at_its_python_line(self):
        path, p, rep = self.run_script(self.LEAKY)
        leaks = self.at(rep, "handle", path, 5)
        self.assertEqual(sum(l["blocks"] for l in leaks), 2000, rep["leaks"][:3])
        self.assertEqual(sum(l["bytes"] for l in leaks), int(p.stdout))
        frames = leaks[0]["frames"]
        self.assertEqual([(f["function"], f["line"]) for f in frames[:3]],
                         [("handle", 5), ("main", 9), ("<module>", 11)])
        # No interpreter frame is shown above the Python ones, and the C
        # library's start-up code below main is left out: <module> ends it.
        self.assertEqual(frames[0]["module"], "python")
        self.assertEqual(frames[-1]["function"], "<module>", frames)
        text = subprocess.run([REPORT, self.trace_files()[0]], stdout=subprocess.PIPE,
                              text=True, timeout=120).stdout
        self.assertIn("       at handle (%s:5)\n       by main (%s:9)\n" % (path, path), text)

    def test_off_when_asked(self):
        path, p, rep = self.run_script(self.LEAKY, env={"LEAKTRACE_PYTHON": "0"})
        self.assertEqual(self.at(rep, "handle", path, 5), [])
        self.assertFalse(any(f.get("module") == "python"
                             for l in rep["leaks"] for f in l["frames"]))

    def test_threads(self):
        # Two threads leak in two functions; the GIL passes between them.
        # The list's own array grows at those lines too: one more block,
        # in whichever thread grew it last.
        src = ("import os, sys, threading\n"
               "kept = []\n"
               "def a():\n"
               "    for i in range(3000):\n"
               "        kept.append(bytes(700 + i % 3))\n"
               "def b():\n"
               "    for i in range(3000):\n"
               "        kept.append(bytes(900 + i % 3))\n"
               "ts = [threading.Thread(target=a), threading.Thread(target=b)]\n"
               "[t.start() for t in ts]\n"
               "[t.join() for t in ts]\n"
               "print(sys.getsizeof(kept) - sys.getsizeof([]))\n"
               "sys.stdout.flush()\n"
               "os._exit(0)\n")
        path, p, rep = self.run_script(src)
        blocks = nbytes = 0
        for fn, line in (("a", 5), ("b", 8)):
            leaks = self.at(rep, fn, path, line)
            self.assertGreaterEqual(sum(l["blocks"] for l in leaks), 3000, fn)
            self.assertEqual([f["function"] for f in leaks[0]["frames"][:2]],
                             [fn, "Thread.run"])
            blocks += sum(l["blocks"] for l in leaks)
            nbytes += sum(l["bytes"] for l in leaks)
        self.assertEqual(blocks, 6001)
        # bytes objects: 33 bytes of header, the data and a NUL.
        self.assertEqual(nbytes, sum(33 + s + i % 3 for s in (700, 900) for i in range(3000)) +
                         int(p.stdout))

    def test_code_objects_freed_and_reused(self):
        # Each exec() compiles fresh code objects and frees the previous
        # ones, whose addresses come back: every leak must still name the
        # function that made it, never an earlier one at that address.
        src = ("import os, sys\n"
               "kept = []\n"
               "for k in range(60):\n"
               "    exec('def f%d():\\n    return bytes(%d)\\nkept.append(f%d())' "
               "% (k, 1000 + k, k))\n"
               "sys.stdout.flush()\n"
               "os._exit(0)\n")
        path, p, rep = self.run_script(src)
        seen = 0
        for l in rep["leaks"]:
            f = l["frames"][0] if l["frames"] else {}
            if f.get("file") == "<string>" and f.get("function", "").startswith("f"):
                k = int(f["function"][1:])
                self.assertEqual(l["bytes"], 33 + 1000 + k, f)
                seen += 1
        self.assertEqual(seen, 60)


class real_programs(E2E):
    def compare(self, argv, stdin=None, env=None, text=True, timeout=120, cwd=None):
        """Runs argv natively and traced; asserts identical stdout and exit
        status; returns the decoded traces."""
        base = run(argv, traced=False, stdin=stdin, env=env, text=text, timeout=timeout,
                   cwd=cwd)
        e = {"LEAKTRACE_OUTPUT": os.path.join(self.tmp, "traces", "leaktrace.%e.%p.bin")}
        e.update(env or {})
        os.makedirs(os.path.join(self.tmp, "traces"), exist_ok=True)
        p = run(argv, stdin=stdin, env=e, text=text, timeout=timeout, cwd=cwd)
        self.assertEqual(p.returncode, base.returncode, p.stderr)
        self.assertEqual(base.returncode, 0, base.stderr)
        self.assertTrue(p.stdout == base.stdout, "stdout differs under the shim")
        files = self.trace_files(os.path.join(self.tmp, "traces"))
        self.assertGreaterEqual(len(files), 1)
        traces = [self.decode(f) for f in files]
        for tr in traces:
            self.assertEqual(len(tr.ends), 1, "%s: END records %s" % (tr.path, tr.ends))
            self.assertEqual(tr.ends[0]["kind"], "normal")
            rp = Replay(tr)
            self.assertNoAnomalies(rp)
            self.assertJsonAgrees(tr, rp)
            c = tr.counts()
            self.assertGreater(c["alloc"], 0)
            self.assertLessEqual(c["free"], c["alloc"])
            end = tr.ends[0]
            self.assertEqual(end["allocs"], c["alloc"] + c["realloc"])
            self.assertEqual(end["frees"], c["free"] + c["realloc"])
        shutil.rmtree(os.path.join(self.tmp, "traces"))
        return base, traces

    def test_python3(self):
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        script = (
            "import collections, json\n"
            "d = {}\n"
            "for i in range(50000):\n"
            "    d['k%d' % i] = [i, str(i) * 3, {'x': i}]\n"
            "c = collections.Counter(len(v[1]) for v in d.values())\n"
            "s = json.dumps(sorted(c.items()))\n"
            "print(len(d), s, sum(len(json.dumps(v)) for v in list(d.values())[:1000]))\n")
        base, traces = self.compare([py, "-c", script], env={"PYTHONMALLOC": "malloc"})
        self.assertIn("50000", base.stdout)
        self.assertEqual(len(traces), 1)
        self.assertGreater(traces[0].counts()["alloc"], 100000)

    def test_sqlite3(self):
        if not shutil.which("sqlite3"):
            self.skipTest("sqlite3 not installed")
        sql = ("create table t(a integer primary key, b text);\n"
               "with recursive n(i) as (select 1 union all select i+1 from n where i < 20000)\n"
               "insert into t select i, printf('row-%08d', i * 7919 % 20000) from n;\n"
               "create index tb on t(b);\n"
               "select count(*), sum(a), min(b), max(b) from t;\n"
               "select b from t where a % 4000 = 0 order by b;\n")
        base, traces = self.compare(["sqlite3", ":memory:"], stdin=sql)
        self.assertTrue(base.stdout.startswith("20000|200010000|"), base.stdout)

    def test_git(self):
        if not shutil.which("git"):
            self.skipTest("git not installed")
        repo = os.path.join(self.tmp, "repo")
        env = {"HOME": self.tmp, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z",
               "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z"}
        for argv in (["git", "init", "-q", repo],):
            self.assertOk(run(argv, traced=False, env=env))
        with open(os.path.join(repo, "f.txt"), "w") as f:
            f.write("".join("line %d\n" % i for i in range(2000)))
        ident = ["-c", "user.name=e2e", "-c", "user.email=e2e@example.org"]
        self.assertOk(run(["git", "-C", repo, "add", "f.txt"], traced=False, env=env))
        self.assertOk(run(["git", "-C", repo] + ident + ["commit", "-q", "-m", "one"],
                          traced=False, env=env))
        base, traces = self.compare(["git", "-C", repo, "log", "--stat", "--format=%H %s"],
                                    env=env)
        self.assertIn(" one\n", base.stdout)

    def test_xz_two_threads(self):
        if not shutil.which("xz"):
            self.skipTest("xz not installed")
        rnd = random.Random(42)
        words = ["leak", "trace", "malloc", "free", "thread", "ring", "epoch", "stack"]
        data = "".join("%s %d %s\n" % (rnd.choice(words), rnd.randrange(10 ** 6),
                                       rnd.choice(words)) for _ in range(250000)).encode()
        self.assertGreater(len(data), 3 * 1024 * 1024)
        base, traces = self.compare(["xz", "-T2", "--block-size=1MiB", "-c", "-6"],
                                    stdin=data, text=False)
        self.assertEqual(len(traces), 1)
        self.assertGreaterEqual(len(traces[0].thread_starts), 3, "xz ran single-threaded")


def run_group(module, argv, doc):
    """Runs the unittest class argv[1] of module (its tests argv[2:], or
    all): 0 passed, 1 failed, 2 bad usage, 77 every test skipped."""
    if len(argv) < 2:
        print(doc)
        return 2
    if not (SHIM and REPORT and FIXTURES):
        print("LT_SHIM, LT_REPORT and LT_FIXTURES must be set (meson test does)")
        return 2
    group = argv[1]
    cls = getattr(module, group, None)
    if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)):
        print("unknown group %r" % group)
        return 2
    names = argv[2:]
    loader = unittest.defaultTestLoader
    suite = (loader.loadTestsFromNames(["%s.%s" % (group, n) for n in names], module)
             if names else loader.loadTestsFromTestCase(cls))
    res = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    if not res.wasSuccessful():
        return 1
    if res.testsRun and len(res.skipped) == res.testsRun:
        return 77
    return 0


def main():
    return run_group(sys.modules[__name__], sys.argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
