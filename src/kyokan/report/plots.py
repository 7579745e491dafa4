"""Figures as PNG bytes (matplotlib, Agg backend), drawn from the run's typed records.

Japanese labels use IPAex Gothic from the ``matplotlib-fontja`` package (PyPI; IPA Font License),
registered for every plot, so they render on a fresh machine with no system CJK font; a system
Noto Sans CJK is preferred where one is installed. Panels without data are not drawn."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from kyokan.report.discover import RunData
from kyokan.report.tables import JUDGE_LABELS, human_item_scores, judge_item_scores, judge_metrics

#: system fonts preferred over the packaged one when present
SYSTEM_CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "Source Han Sans JP")
PACKAGED_CJK_FONT = "IPAexGothic"


def setup_matplotlib() -> str | None:
    """Agg backend and a CJK font first in the fallback list; returns the font's name (None when
    neither a system CJK font nor matplotlib-fontja is installed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import font_manager, rcParams

    have = {f.name for f in font_manager.fontManager.ttflist}
    cjk = next((f for f in SYSTEM_CJK_FONTS if f in have), None)
    if cjk is None:
        try:
            from matplotlib_fontja import get_font_ttf_path
        except ImportError:
            pass
        else:
            font_manager.fontManager.addfont(get_font_ttf_path())
            cjk = PACKAGED_CJK_FONT
    # the families themselves, not "sans-serif": matplotlib falls back glyph by glyph only along
    # font.family, so DejaVu Sans draws what the CJK font lacks (≤, ≥, …) instead of a box and a
    # "Glyph … missing from font(s)" warning per character
    families = ([cjk] if cjk else []) + ["DejaVu Sans"]
    rcParams["font.family"] = families
    rcParams["font.sans-serif"] = families
    # IPAex has one weight; "using 400 for bold" is not something a reader can act on
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    rcParams["axes.unicode_minus"] = False
    rcParams["figure.dpi"] = 100
    return cjk


def figure_png(fig: Any) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (shared by the report and sweep pages)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _grid(n: int, cols: int = 4, height: float = 2.7) -> tuple[Any, list[Any]]:
    """A figure with exactly ``n`` panels (no empty axes drawn)."""
    import matplotlib.pyplot as plt

    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        fig.delaxes(ax)
    return fig, flat[:n]


def judge_bars(run: RunData) -> bytes | str:
    import matplotlib.pyplot as plt

    if not run.judge_summaries:
        return "no judge summary"
    s = run.judge_summaries[0].record
    metrics = [m for m in judge_metrics(s.metrics) if any(s.table[src][m].mean is not None for src in s.table)]
    if not metrics:
        return "no judge metric has a score (every answer unscored)"
    sources = sorted(s.table)
    fig, ax = plt.subplots(figsize=(10, 4.2))
    w = 0.8 / max(1, len(sources))
    x = np.arange(len(metrics))
    for i, src in enumerate(sources):
        means = [float(v) if (v := s.table[src][m].mean) is not None else math.nan for m in metrics]
        sds = [s.table[src][m].sd or 0.0 for m in metrics]
        ax.bar(x + (i - (len(sources) - 1) / 2) * w, means, w, yerr=sds, capsize=2, label=src)
    ax.set_xticks(x, [JUDGE_LABELS.get(m, m).replace(" ", "\n", 1) for m in metrics], fontsize=8)
    ax.set_ylim(0, 5.5)
    ax.set_ylabel("mean judge score (± SD)")
    ax.set_title(f"Judge metrics per source model — {', '.join(s.judges)}")
    ax.legend(fontsize=8, ncol=min(4, len(sources)))
    return figure_png(fig)


def score_distributions(run: RunData) -> bytes | str:
    js = judge_item_scores(run)
    if not js:
        return "no judge scores"
    all_metrics = {m for items in js.values() for sc in items.values() for m, v in sc.items() if v is not None}
    metrics = judge_metrics(sorted(all_metrics))
    if not metrics:
        return "no judge metric has a score"
    fig, axes = _grid(len(metrics))
    bins = np.arange(0.5, 6.0, 1.0)
    sources = sorted(js)
    for ax, m in zip(axes, metrics, strict=True):
        data = [[v for sc in js[s].values() if (v := sc.get(m)) is not None] for s in sources]
        ax.hist(data, bins=bins, label=sources)
        ax.set_title(JUDGE_LABELS.get(m, m), fontsize=9)
        ax.set_xticks([1, 2, 3, 4, 5])
    axes[0].legend(fontsize=7)
    fig.suptitle("Distribution of judge scores")
    return figure_png(fig)


def confusion_plot(run: RunData) -> bytes | str:
    import matplotlib.pyplot as plt

    if not run.labels:
        return "no emotion-prediction summary"
    f = run.labels[0]
    cm = f.record.confusion
    arr = np.asarray(cm.matrix, dtype=float)
    if arr.size == 0:
        return "the confusion matrix is empty"
    cols = list(cm.labels)
    rows = cols[: arr.shape[0]]
    ja = _ja_names(f.record.taxonomy)

    def ticks(labels: list[str]) -> list[str]:
        return [f"{lbl} {ja[lbl]}" if ja.get(lbl) else lbl for lbl in labels]

    size = max(5.0, 0.32 * len(cols) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(arr, cmap="Blues")
    ax.set_xticks(range(len(cols)), ticks(cols), rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), ticks(rows), fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("target emotion")
    ax.set_title(f"Emotion confusion matrix — {f.record.source}")
    fig.colorbar(im, ax=ax, fraction=0.04)
    return figure_png(fig)


def _ja_names(taxonomy: str) -> dict[str, str]:
    from kyokan.taxonomy import get_taxonomy

    return {lab.id: lab.ja for lab in get_taxonomy(taxonomy).labels if lab.ja}


def length_vs_score(run: RunData) -> bytes | str:
    """Mean judge score over metrics against the length of what the system wrote (the judge row's
    ``response_chars``: generated listener text only, never the human-written context)."""
    import matplotlib.pyplot as plt

    pts: dict[str, tuple[list[float], list[float]]] = {}
    for f in run.judged:
        r = f.record
        vals = [float(v) for v in r.scores.values() if v is not None]
        if r.status in ("unscored", "format_violation") or r.response_chars is None or not vals:
            continue
        xs, ys = pts.setdefault(r.source_model, ([], []))
        xs.append(float(r.response_chars))
        ys.append(float(np.mean(vals)))
    if not pts:
        return "no judged dialogue has both a score and a generated-reply length"
    fig, ax = plt.subplots(figsize=(7, 4))
    for s in sorted(pts):
        ax.scatter(*pts[s], s=14, alpha=0.7, label=s)
    ax.set_xlabel("characters the system wrote (whitespace excluded)")
    ax.set_ylabel("mean judge score over metrics")
    ax.set_title("Length vs judge score")
    ax.legend(fontsize=8)
    return figure_png(fig)


def human_vs_judge(run: RunData) -> bytes | str:
    js, hs = judge_item_scores(run), human_item_scores(run)
    common = sorted(set(js) & set(hs))
    drawn: list[tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]] = []
    metrics = judge_metrics(sorted({m for s in js.values() for sc in s.values() for m in sc}))
    for m in metrics:
        series = []
        for s in common:
            keys = [i for i in js[s] if i in hs[s] and js[s][i].get(m) is not None and hs[s][i].get(m) is not None]
            if keys:
                series.append((s, np.array([js[s][i][m] for i in keys], dtype=float),
                               np.array([hs[s][i][m] for i in keys], dtype=float)))
        if series:
            drawn.append((m, series))
    if not drawn:
        return "needs judge scores and human ratings of the same dialogues (same source and id) on the same metrics"
    fig, axes = _grid(len(drawn), height=2.8)
    rng = np.random.default_rng(0)
    for ax, (m, series) in zip(axes, drawn, strict=True):
        for s, x, y in series:
            ax.scatter(x + rng.uniform(-0.12, 0.12, len(x)), y, s=10, alpha=0.6, label=s)
        ax.plot([1, 5], [1, 5], lw=0.8, color="grey")
        ax.set_xlim(0.5, 5.5)
        ax.set_ylim(0.5, 5.5)
        ax.set_title(JUDGE_LABELS.get(m, m), fontsize=9)
        ax.set_xlabel("judge (jittered)", fontsize=8)
        ax.set_ylabel("human mean", fontsize=8)
    fig.suptitle("Human vs judge per item")
    return figure_png(fig)


PLOTS: list[tuple[str, Callable[[RunData], bytes | str]]] = [
    ("The 7 judge metrics per source model", judge_bars),
    ("Score distributions", score_distributions),
    ("Emotion confusion matrix", confusion_plot),
    ("Length vs score", length_vs_score),
    ("Human vs judge", human_vs_judge),
]
