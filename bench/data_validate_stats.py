"""Benchmark: `validate` + `stats` throughput on a generated 100k-dialogue file, and peak RSS of
each on 1M dialogues (a subprocess per measurement, so RSS is that job's own).

Targets (issue 2): ≥ 50k dialogues/s validated on a 2-core machine; peak RSS < 500 MB for 1M.

    .venv/bin/python bench/data_validate_stats.py [--n 100000] [--big 1000000] [--dir /tmp/kyokan-bench]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

PHRASES = ["検査の結果が気になって眠れません。", "先生に言われたことがよく分かりませんでした。", "薬を変えてから少し楽になりました。",
           "家族に心配をかけたくないです。", "それは本当につらかったですね。", "話してくれてありがとうございます。",
           "少しずつでいいと思いますよ。", "一緒に考えていきましょう。", "I was worried about the results.",
           "That sounds really hard."]


def generate(path: Path, n: int, seed: int = 0) -> None:
    from kyokan.taxonomy import get_taxonomy

    labels = get_taxonomy().ids
    rng = random.Random(seed)
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            if sum(1 for _ in f) == n:
                return
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            emo = labels[i % 28]
            sid = f"s-{emo}-{(i // 28) % 700}"
            turns = [{"role": "speaker" if j % 2 == 0 else "listener",
                      "text": rng.choice(PHRASES) + rng.choice(PHRASES) + f"（{i}-{j}）"} for j in range(4)]
            rec = {"id": f"d-{i:07d}", "situation_id": sid, "emotion": emo, "lang": "ja",
                   "situation": rng.choice(PHRASES) + rng.choice(PHRASES), "turns": turns,
                   "meta": {"source": "bench", "worker": f"w-{i % 50}"}}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def measure(task: str, path: Path) -> dict[str, float]:
    """Run one task in a child process; wall time and the child's peak RSS."""
    code = {
        "validate": "from kyokan.data import validate_path; r = validate_path(P); assert r.ok, r.problems[:3]; print(r.valid)",
        "stats": "from kyokan.data import read_records, compute_stats; "
                 "s = compute_stats(read_records(P), n_labels=28, tokens=False, rescan=lambda: read_records(P)); print(s['dialogues'])",
        "stats-tokens": "from kyokan.data import read_records, compute_stats; "
                        "s = compute_stats(read_records(P), n_labels=28, tokens=True); print(s['dialogues'])",
    }[task]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", f"P = {str(path)!r}\n{code}"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(proc.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    n = int(proc.stdout.strip().splitlines()[-1])
    return {"n": n, "seconds": round(wall, 2), "per_second": round(n / wall), "peak_rss_mb": round(max(after, before) / 1024, 1),
            "child_rss_mb_if_new_high": round(after / 1024, 1) if after > before else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--dir", default="/tmp/kyokan-bench")
    ap.add_argument("--tokens-n", type=int, default=20_000, help="dialogues for the fugashi token-stats run")
    a = ap.parse_args()
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    small, big, tok = d / f"dialogues-{a.n}.jsonl", d / f"dialogues-{a.big}.jsonl", d / f"dialogues-{a.tokens_n}.jsonl"
    for p, n in ((small, a.n), (big, a.big), (tok, a.tokens_n)):
        t = time.perf_counter()
        generate(p, n)
        print(f"input {p.name}: {p.stat().st_size / 1e6:.0f} MB ({time.perf_counter() - t:.1f} s to make)")
    # RSS is a process-wide high-water mark, so measure the 1M jobs in fresh children first,
    # smallest footprint last is not needed: each child reports its own maximum via RUSAGE_CHILDREN
    # only when it sets a new high, so run the big ones in separate invocations of this helper.
    results = {}
    for task in ("validate", "stats"):
        results[f"{task} {a.n}"] = measure(task, small)
    results[f"stats-tokens {a.tokens_n}"] = measure("stats-tokens", tok)
    for task in ("validate", "stats"):
        proc = subprocess.run([sys.executable, __file__, "--measure-one", task, str(big)], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(proc.stderr)
        results[f"{task} {a.big}"] = json.loads(proc.stdout)
    print(json.dumps(results, indent=1))
    v = results[f"validate {a.n}"]["per_second"]
    print(f"validate: {v:,} dialogues/s (target ≥ 50,000) -> {'OK' if v >= 50_000 else 'MISS'}")
    for task in ("validate", "stats"):
        rss = results[f"{task} {a.big}"]["peak_rss_mb"]
        print(f"{task} on {a.big:,}: peak RSS {rss} MB (target < 500) -> {'OK' if rss < 500 else 'MISS'}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure-one":
        print(json.dumps(measure(sys.argv[2], Path(sys.argv[3]))))
    else:
        main()
