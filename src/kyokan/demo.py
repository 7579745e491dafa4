"""The README's main job. Until the full pipeline demo lands it runs the data tools on the
bundled Japanese sample: validate, statistics, a seeded sample of emotion–situation pairs and a
situation-disjoint split, writing everything under ``runs/demo-data`` (or ``--out``)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kyokan.console import out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kyokan-demo", description=__doc__)
    ap.add_argument("--out", default="runs/demo-data", help="output folder")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)

    from kyokan.data import (
        compute_stats,
        read_records,
        sample_pairs,
        sample_path,
        validate_path,
        write_dialogues,
    )
    from kyokan.data.sampling import SPLITS, assign_splits
    from kyokan.io import write_json

    t0 = time.perf_counter()
    src = sample_path("ja")
    root = Path(args.out)
    res = validate_path(str(src))
    out.print(f"[bold]validate[/] {src.name}: {res.valid} valid, {res.invalid} invalid")
    if not res.ok:
        for p in res.problems:
            out.print(str(p), markup=False)
        return 2
    recs = list(read_records(src))
    st = compute_stats(recs, n_labels=28)
    write_json(root / "stats.json", st)
    out.print(f"[bold]stats[/] {st['dialogues']} dialogues, {st['situations']} situations, {len(st['per_emotion'])} emotions, "
              f"balance {st['label_balance']['normalized_entropy']}, mean dialogue {st['length_chars']['dialogue']['mean']} chars / "
              f"{st['length_tokens']['dialogue']['mean']} tokens")
    rows, rep = sample_pairs(recs, 28, args.seed, stratify=True)
    write_dialogues(root / "eval_pairs.jsonl", rows)
    write_json(root / "eval_pairs.report.json", rep)
    out.print(f"[bold]sample[/] {rep['rows']} emotion–situation pairs (one per emotion, seed {args.seed}) → {root / 'eval_pairs.jsonl'}")
    from collections import Counter

    sit: dict[str, Counter[str]] = {}
    for r in recs:
        sit.setdefault(r["situation_id"], Counter())[r["emotion"]] += 1
    assign = assign_splits(sit, (0.5, 0.25, 0.25), args.seed)
    counts = {}
    for s in SPLITS:
        counts[s] = write_dialogues(root / "splits" / f"{s}.jsonl", (r for r in recs if assign[r["situation_id"]] == s))
    out.print("[bold]split[/] by situation, stratified by emotion: " + json.dumps(counts))
    out.print(f"done in {time.perf_counter() - t0:.1f} s → {root}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
