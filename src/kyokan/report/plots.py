"""Figures as PNG bytes (matplotlib, Agg backend). Japanese labels use a CJK font when one is
installed (Debian: ``fonts-noto-cjk``); otherwise the report notes that glyphs may be missing."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from kyokan.report.discover import RunData, flatten
from kyokan.report.tables import (
    JUDGE_LABELS,
    human_scores,
    judge_metrics,
    judge_scores,
    response_groups,
)

CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic", "VL Gothic",
             "Hiragino Sans", "Yu Gothic", "Source Han Sans JP")


def setup_matplotlib() -> str | None:
    """Agg backend; a CJK font first in the fallback list if one exists. Returns its name."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import font_manager, rcParams

    have = {f.name for f in font_manager.fontManager.ttflist}
    cjk = next((f for f in CJK_FONTS if f in have), None)
    rcParams["font.family"] = "sans-serif"
    rcParams["font.sans-serif"] = ([cjk] if cjk else []) + ["DejaVu Sans"]
    rcParams["axes.unicode_minus"] = False
    rcParams["figure.dpi"] = 100
    return cjk


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def judge_bars(run: RunData) -> bytes | str:
    import matplotlib.pyplot as plt

    js = judge_scores(run)
    if not js:
        return "no judge scores"
    metrics = judge_metrics(run)
    sources = sorted(js)
    fig, ax = plt.subplots(figsize=(10, 4.2))
    w = 0.8 / max(1, len(sources))
    x = np.arange(len(metrics))
    for i, s in enumerate(sources):
        means, sds = [], []
        for m in metrics:
            v = [d[m] for d in js[s].values() if d.get(m) is not None]
            means.append(float(np.mean(v)) if v else math.nan)  # type: ignore[arg-type]
            sds.append(float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)  # type: ignore[arg-type]
        ax.bar(x + (i - (len(sources) - 1) / 2) * w, means, w, yerr=sds, capsize=2, label=s)
    ax.set_xticks(x, [JUDGE_LABELS.get(m, m).replace(" ", "\n", 1) for m in metrics], fontsize=8)
    ax.set_ylim(0, 5.5)
    ax.set_ylabel("mean judge score (± SD)")
    ax.set_title("Judge metrics per source model")
    ax.legend(fontsize=8, ncol=min(4, len(sources)))
    return _png(fig)


def score_distributions(run: RunData) -> bytes | str:
    import matplotlib.pyplot as plt

    js = judge_scores(run)
    if not js:
        return "no judge scores"
    metrics = judge_metrics(run)
    cols = 4
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.6 * rows), squeeze=False)
    bins = np.arange(0.5, 6.0, 1.0)
    for k, m in enumerate(metrics):
        ax = axes[k // cols][k % cols]
        data = [[d[m] for d in js[s].values() if d.get(m) is not None] for s in sorted(js)]
        ax.hist(data, bins=bins, label=sorted(js))
        ax.set_title(JUDGE_LABELS.get(m, m), fontsize=9)
        ax.set_xticks([1, 2, 3, 4, 5])
    for k in range(len(metrics), rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Distribution of judge scores")
    return _png(fig)


def _find_confusion(obj: Any, depth: int = 0) -> Any:
    if not isinstance(obj, dict) or depth > 4:
        return None
    for k, v in obj.items():
        if "confusion" in str(k).lower():
            return v
    for v in obj.values():
        got = _find_confusion(v, depth + 1)
        if got is not None:
            return got
    return None


def _confusion(summary: dict[str, Any]) -> tuple[list[str], list[str], np.ndarray] | None:
    """(row labels, column labels, matrix) from ``{labels, matrix}`` (rows may omit a trailing
    "(none)" column label), ``{true: {pred: n}}``, or a matrix with ``labels`` beside it."""
    cm = _find_confusion(summary)
    labels = summary.get("labels")
    if isinstance(cm, dict):
        labels = cm.get("labels", labels)
        cm = cm.get("matrix", cm.get("counts", cm))
        if isinstance(cm, dict):  # {true: {pred: n}}
            labels = sorted(set(cm) | {p for row in cm.values() if isinstance(row, dict) for p in row})
            cm = [[(cm.get(t) or {}).get(p, 0) for p in labels] for t in labels]
    if not isinstance(cm, list) or not isinstance(labels, list) or not labels:
        return None
    try:
        arr = np.asarray(cm, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 2 or arr.shape[1] != len(labels) or arr.shape[0] > len(labels):
        return None
    cols = [str(x) for x in labels]
    return cols[: arr.shape[0]], cols, arr


def confusion_plot(run: RunData) -> bytes | str:
    import matplotlib.pyplot as plt

    for mo in run.emotions:
        got = _confusion(mo.summary)
        if got is None:
            continue
        rows, cols, arr = got
        n = len(cols)
        size = max(5.0, 0.32 * n + 2)
        fig, ax = plt.subplots(figsize=(size + 1, size))
        im = ax.imshow(arr, cmap="Blues")

        def ticks(labels: list[str]) -> list[str]:
            ja = _ja_names(labels)
            return [f"{lbl} {ja[i]}" if ja[i] else lbl for i, lbl in enumerate(labels)]

        ax.set_xticks(range(n), ticks(cols), rotation=90, fontsize=7)
        ax.set_yticks(range(len(rows)), ticks(rows), fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("target emotion")
        ax.set_title(f"Emotion confusion matrix — {mo.label}")
        fig.colorbar(im, ax=ax, fraction=0.04)
        return _png(fig)
    return "no confusion matrix in the emotion metrics"


def _ja_names(labels: list[str]) -> list[str]:
    try:
        from kyokan.taxonomy import get_taxonomy

        tax = get_taxonomy("goemotions28")
        by_id = {lab.id: lab.ja for lab in tax.labels}
        return [by_id.get(x, "") for x in labels]
    except Exception:
        return ["" for _ in labels]


def _lengths(run: RunData) -> dict[tuple[str, str], float]:
    from kyokan.stats.data import source_of

    out: dict[tuple[str, str], float] = {}
    for src, rows in response_groups(run).items():
        for r in rows:
            f = flatten(r)
            key = next((k for k in f if k.lower().startswith("length") and "token" not in k.lower()), None) \
                or next((k for k in f if "length" in k.lower()), None)
            if key is not None and "id" in r:
                out[(src, str(r["id"]))] = f[key]
    from kyokan.report.tables import dialogue_sources, judge_source

    ids = dialogue_sources(run)
    for r in run.judge_rows:  # the judge records the response length it saw
        if isinstance(r.get("response_chars"), int | float):
            out.setdefault((judge_source(r, ids), str(r.get("id"))), float(r["response_chars"]))
    for d in run.dialogues:  # fallback: listener characters of the generated dialogues
        src = source_of(d, "meta.generation.model") or "unknown"
        text = "".join(t.get("text", "") for t in d.get("turns", []) if t.get("role") == "listener")
        out.setdefault((src, str(d.get("id"))), float(len(text)))
    return out


def length_vs_score(run: RunData) -> bytes | str:
    import matplotlib.pyplot as plt

    js = judge_scores(run)
    if not js:
        return "no judge scores"
    lengths = _lengths(run)
    if not lengths:
        return "no response lengths (eval_responses/ and generate/ missing)"
    fig, ax = plt.subplots(figsize=(7, 4))
    any_pts = False
    for s in sorted(js):
        xs, ys = [], []
        for i, sc in js[s].items():
            vals = [v for v in sc.values() if v is not None]
            if (s, i) in lengths and vals:
                xs.append(lengths[(s, i)])
                ys.append(float(np.mean(vals)))
        if xs:
            any_pts = True
            ax.scatter(xs, ys, s=14, alpha=0.7, label=s)
    if not any_pts:
        plt.close(fig)
        return "no item has both a length and a judge score (ids or sources do not match)"
    ax.set_xlabel("response length (characters)")
    ax.set_ylabel("mean judge score over metrics")
    ax.set_title("Length vs judge score")
    ax.legend(fontsize=8)
    return _png(fig)


def human_vs_judge(run: RunData) -> bytes | str:
    import matplotlib.pyplot as plt

    js, hs = judge_scores(run), human_scores(run)
    common = sorted(set(js) & set(hs))
    metrics = [m for m in judge_metrics(run) if any(m in v for s in hs.values() for v in s.values())]
    if not common or not metrics:
        return "needs judge scores and human ratings of the same dialogues on the same metrics"
    cols = 4
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.8 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    for k, m in enumerate(metrics):
        ax = axes[k // cols][k % cols]
        for s in common:
            keys = [i for i in js[s] if i in hs[s] and js[s][i].get(m) is not None and hs[s][i].get(m) is not None]
            x = np.array([js[s][i][m] for i in keys], dtype=float) + rng.uniform(-0.12, 0.12, len(keys))
            y = np.array([hs[s][i][m] for i in keys], dtype=float)
            ax.scatter(x, y, s=10, alpha=0.6, label=s)
        ax.plot([1, 5], [1, 5], lw=0.8, color="grey")
        ax.set_xlim(0.5, 5.5)
        ax.set_ylim(0.5, 5.5)
        ax.set_title(JUDGE_LABELS.get(m, m), fontsize=9)
        ax.set_xlabel("judge (jittered)", fontsize=8)
        ax.set_ylabel("human mean", fontsize=8)
    for k in range(len(metrics), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle("Human vs judge per item")
    return _png(fig)


PLOTS: list[tuple[str, Callable[[RunData], bytes | str]]] = [
    ("The 7 judge metrics per source model", judge_bars),
    ("Score distributions", score_distributions),
    ("Emotion confusion matrix", confusion_plot),
    ("Length vs score", length_vs_score),
    ("Human vs judge", human_vs_judge),
]
