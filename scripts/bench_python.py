# SPDX-License-Identifier: MIT
"""Benchmark workload d): a dict/list/str-heavy Python program.

scripts/bench runs it with PYTHONMALLOC=malloc, so every object CPython
allocates goes through malloc/free and a tracer sees it. It builds and
discards word-frequency tables, JSON-like records and string joins, with a
bounded cache that churns. Deterministic (fixed seed). argv[1] scales the
work: the default, 1.0, takes a few seconds natively.
"""
import random
import sys


def words(rng, n):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(n)]


def frequency(tokens):
    counts = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]


def records(rng, vocab, n):
    out = []
    for i in range(n):
        rec = {
            "id": i,
            "name": rng.choice(vocab).title() + " " + rng.choice(vocab),
            "tags": [rng.choice(vocab) for _ in range(rng.randint(0, 6))],
            "score": rng.random(),
            "attrs": {k: str(i * j) for j, k in enumerate(rng.sample(vocab, 3))},
        }
        out.append(rec)
    return out


def render(recs):
    lines = []
    for r in recs:
        lines.append("%d|%s|%s|%.3f|%s" % (r["id"], r["name"], ",".join(r["tags"]),
                                          r["score"], ";".join("%s=%s" % kv for kv in r["attrs"].items())))
    return "\n".join(lines)


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    rng = random.Random(1234)
    vocab = words(rng, 5000)
    cache = {}
    total = 0
    for rnd in range(int(100 * scale)):
        tokens = [rng.choice(vocab) for _ in range(20000)]
        top = frequency(tokens)
        recs = records(rng, vocab, 3000)
        text = render(recs)
        parsed = [line.split("|") for line in text.splitlines()]
        by_tag = {}
        for fields in parsed:
            for tag in fields[2].split(","):
                if tag:
                    by_tag.setdefault(tag, []).append(fields[0])
        key = "%d:%s" % (rnd, top[0][0])
        cache[key] = [len(v) for v in by_tag.values()]
        if len(cache) > 8:  # bounded cache: evict the oldest entry
            del cache[next(iter(cache))]
        total += len(text) + sum(n for _, n in top) + len(by_tag)
    print(total)


if __name__ == "__main__":
    main()
