"""Build all epochs of preference pairs and write them with a report."""

from __future__ import annotations

import platform
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kyokan.errors import KyokanError
from kyokan.io import atomic_open, write_json
from kyokan.prefs.pairs import (
    EpochDraw,
    PairContext,
    _Encoded,
    prepare_context,
    reason_counts,
    render_epoch,
)
from kyokan.prefs.strategies import Strategy, get_strategy
from kyokan.provenance import sha256_bytes

if TYPE_CHECKING:
    from kyokan.data import Dialogue
    from kyokan.taxonomy import Taxonomy

REPORT_VERSION = 1


@dataclass
class PairSet:
    """All epochs of one build: the context, each epoch's draw and the rendered JSONL texts."""

    ctx: PairContext
    strategy: Strategy
    draws: list[EpochDraw]
    texts: list[str]

    def rows(self, epoch: int) -> list[dict[str, Any]]:
        import json

        return [json.loads(line) for line in self.texts[epoch].splitlines()]


def build_pairs(dialogues: Sequence[Dialogue], taxonomy: Taxonomy, *, epochs: int = 3, seed: int = 0,
                strategy: str | Strategy = "opposite", system: str | None = None,
                only_epochs: Sequence[int] | None = None, **strategy_options: Any) -> PairSet:
    """Pairs for epochs ``0..epochs-1`` (or just ``only_epochs``; each epoch is the same whichever
    others are built)."""
    if epochs < 1:
        raise KyokanError("--epochs must be at least 1")
    import gc

    gc_was = gc.isenabled()
    gc.disable()  # the build allocates many small objects and frees none: skip the collector passes
    try:
        return _build(dialogues, taxonomy, epochs=epochs, seed=seed, strategy=strategy, system=system,
                      only_epochs=only_epochs, **strategy_options)
    finally:
        if gc_was:
            gc.enable()


def _build(dialogues: Sequence[Dialogue], taxonomy: Taxonomy, *, epochs: int, seed: int,
           strategy: str | Strategy, system: str | None, only_epochs: Sequence[int] | None,
           **strategy_options: Any) -> PairSet:
    strat = strategy if isinstance(strategy, Strategy) else get_strategy(strategy, **strategy_options)
    ctx = prepare_context(dialogues, taxonomy, seed=seed, strategy=strat.name, system=system)
    strat.prepare(ctx)
    wanted = list(range(epochs)) if only_epochs is None else sorted(set(only_epochs))
    for e in wanted:
        if not 0 <= e < epochs:
            raise KyokanError(f"epoch {e} is outside 0..{epochs - 1}")
    draws = strat.finish(ctx, [strat.draw(ctx, e) for e in wanted])
    enc = _Encoded(ctx)
    texts = [render_epoch(ctx, d, enc) for d in draws]
    return PairSet(ctx, strat, draws, texts)


def _label_table(ctx: PairContext, pairs: PairSet) -> dict[str, Any]:
    counts = Counter(d.emotion for d in ctx.dialogues if d.emotion is not None)
    rej: Counter[str] = Counter()
    if pairs.draws:
        first = pairs.draws[0]
        for k in range(len(first.items)):
            j = int(first.donors[k])
            if j >= 0:
                rej[ctx.dialogues[j].emotion or ""] += 1
    out = {}
    for lab in ctx.taxonomy.ids:
        out[lab] = {"dialogues": counts.get(lab, 0), "opposite": ctx.taxonomy.opposite(lab),
                    "rejected_in_epoch0": rej.get(lab, 0)}
    return out


def make_report(pairs: PairSet, *, epochs: int, files: dict[str, str], data: dict[str, Any] | None,
                elapsed: float) -> dict[str, Any]:
    from kyokan import __version__

    ctx = pairs.ctx
    per_epoch = [{"epoch": d.epoch, "pairs": len(d.items), "identical_rejected": d.identical,
                  "generated": len(d.generated)} for d in pairs.draws]
    redrawn = None
    if len(pairs.draws) >= 2 and all(len(d.items) for d in pairs.draws[:2]):
        a, b = pairs.draws[0], pairs.draws[1]
        if np.array_equal(a.items, b.items):
            if a.generated:
                redrawn = sum(a.generated[p] != b.generated.get(p) for p in a.generated) / len(a.generated)
            else:
                redrawn = float(np.mean(a.donors != b.donors))
    return {
        "report_version": REPORT_VERSION,
        "kind": "kyokan.prefs",
        "strategy": ctx.strategy,
        "strategy_options": pairs.strategy.options(),
        "taxonomy": ctx.taxonomy.name,
        "opposites": ctx.taxonomy.opposite_map(),
        "seed": ctx.seed,
        "rng": "numpy PCG64(SeedSequence([seed, epoch])) per epoch",
        "epochs": epochs,
        "system": ctx.system,
        "dialogues": len(ctx.dialogues),
        "paired": len(pairs.draws[0].items) if pairs.draws else 0,
        "unpaired_count": len(ctx.unpaired),
        "unpaired_reasons": reason_counts(ctx.unpaired),
        "per_epoch": per_epoch,
        "share_rejected_changed_epoch0_to_1": redrawn,
        "labels": _label_table(ctx, pairs),
        "asymmetric_opposites": [list(x) for x in ctx.taxonomy.asymmetric_pairs()],
        "files": files,
        "data": data,
        "elapsed_s": round(elapsed, 3),
        "versions": {"kyokan": __version__, "numpy": np.__version__, "python": platform.python_version()},
        "unpaired": [u.to_dict() for u in ctx.unpaired],
    }


def write_pairs(out_dir: str | Path, pairs: PairSet, *, epochs: int, data: dict[str, Any] | None = None,
                started: float | None = None) -> dict[str, Any]:
    """Write ``epoch-K.jsonl`` for every built epoch and ``report.json``; returns the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for d, text in zip(pairs.draws, pairs.texts, strict=True):
        raw = text.encode("utf-8")
        name = f"epoch-{d.epoch}.jsonl"
        with atomic_open(out / name, "wb", encoding=None) as f:
            f.write(raw)
        files[name] = sha256_bytes(raw)
    report = make_report(pairs, epochs=epochs, files=files, data=data,
                         elapsed=time.perf_counter() - started if started is not None else 0.0)
    write_json(out / "report.json", report)
    return report
