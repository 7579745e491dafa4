"""Benchmark `kyokan prefs build`: 25k synthetic dialogues × 3 epochs (target < 2 s for the build).

Prints the time to read+validate the file, to build the pairs (draws + JSON rendering) and to
write them, and checks that a second build is byte-identical.

    .venv/bin/python bench/prefs_build.py [--n 25000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from pathlib import Path

from kyokan.data import load_dialogues
from kyokan.io import write_jsonl
from kyokan.prefs import build_pairs, write_pairs
from kyokan.taxonomy import get_taxonomy


def synth(n: int, seed: int = 0) -> list[dict[str, object]]:
    rng = random.Random(seed)
    labels = get_taxonomy("goemotions28").ids
    rows = []
    for i in range(n):
        emo = labels[i % len(labels)]
        sit = f"s-{emo}-{i // (len(labels) * 6)}"
        turns = []
        for k in range(2):
            turns.append({"role": "speaker", "text": f"speaker {i} turn {k}: " + " ".join(rng.choice("abcdefgh") * 3 for _ in range(12))})
            turns.append({"role": "listener", "text": f"listener {i} turn {k}: " + " ".join(rng.choice("ijklmnop") * 3 for _ in range(12))})
        rows.append({"id": f"d-{i:06d}", "situation_id": sit, "emotion": emo, "lang": "en",
                     "situation": f"situation of dialogue {i}", "turns": turns, "meta": {}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=25_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--strategy", default="opposite")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "dialogues.jsonl"
        write_jsonl(src, synth(a.n))
        t0 = time.perf_counter()
        dialogues = load_dialogues(src)
        t1 = time.perf_counter()
        tax = get_taxonomy("goemotions28")
        pairs = build_pairs(dialogues, tax, epochs=a.epochs, seed=7, strategy=a.strategy)
        t2 = time.perf_counter()
        rep = write_pairs(Path(tmp) / "pairs", pairs, epochs=a.epochs)
        t3 = time.perf_counter()
        again = build_pairs(dialogues, tax, epochs=a.epochs, seed=7, strategy=a.strategy)
        same = all(hashlib.sha256(x.encode()).hexdigest() == rep["files"][f"epoch-{k}.jsonl"]
                   for k, x in enumerate(again.texts))
        rows = sum(len(d.items) for d in pairs.draws)
        print(f"prefs build ({a.strategy}): {a.n} dialogues × {a.epochs} epochs = {rows} pairs")
        print(f"  read+validate: {t1 - t0:.3f} s")
        print(f"  build (draws + rendering): {t2 - t1:.3f} s")
        print(f"  write files + report: {t3 - t2:.3f} s")
        print(f"  build+write: {t3 - t1:.3f} s  (target < 2 s)   end to end incl. reading: {t3 - t0:.3f} s")
        print(f"  byte-identical rebuild: {same}")


if __name__ == "__main__":
    main()
