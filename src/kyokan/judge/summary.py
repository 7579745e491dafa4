"""The run summary: mean, SD and n per metric per source model (the shape of EmplifAI Table 4),
with unscored and format-violation counts, a length-bias diagnostic and, with several judges or
samples, inter-judge agreement.

Conventions (docs/judge.md): format violations count as the scale minimum in means (as in the
paper) and are also counted apart; unscored metrics are left out of means and counted; SD is the
sample SD (ddof=1; null when n < 2); the length-bias diagnostic leaves format violations out.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from kyokan.stats import (
    exact_agreement,
    krippendorff_alpha,
    mean_absolute_difference,
    pearson,
    spearman,
)

#: |Spearman rho| from which the length-bias diagnostic raises a flag (with n ≥ LENGTH_BIAS_MIN_N)
LENGTH_BIAS_RHO = 0.3
LENGTH_BIAS_MIN_N = 20


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(float(x), nd)


def _cell(vals: list[float], unscored: int, fv: int, expected: list[float] | None = None) -> dict[str, Any]:
    n = len(vals)
    ex = expected or []
    return {"mean": _r(statistics.fmean(vals)) if n else None,
            "sd": _r(statistics.stdev(vals)) if n >= 2 else None,
            "n": n, "unscored": unscored, "format_violations": fv,
            # probability-weighted (G-Eval) scores, over the rows that have them
            "expected_mean": _r(statistics.fmean(ex)) if ex else None,
            "expected_sd": _r(statistics.stdev(ex)) if len(ex) >= 2 else None,
            "expected_n": len(ex)}


def metrics_of(rows: list[dict[str, Any]]) -> list[str]:
    for r in rows:
        j = r.get("judge") or {}
        if j.get("rubric_metrics"):
            return list(j["rubric_metrics"])
    seen: dict[str, None] = {}
    for r in rows:
        for m in r.get("scores") or {}:
            seen[m] = None
    return list(seen)


def summarize(rows_in: Iterable[dict[str, Any]], metrics: list[str] | None = None) -> dict[str, Any]:
    rows = list(rows_in)
    metrics = metrics or metrics_of(rows)
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_source[str(r.get("source_model") or "unknown")].append(r)
    table: dict[str, dict[str, Any]] = {}
    status_counts: dict[str, dict[str, int]] = {}
    for src in sorted(by_source):
        table[src] = _table_rows(by_source[src], metrics)
        status_counts[src] = dict(Counter(r.get("status", "?") for r in by_source[src]))
    usage: Counter[str] = Counter()
    for r in rows:
        for k, v in (r.get("usage") or {}).items():
            if isinstance(v, int):
                usage[k] += v
    judges = sorted({j for r in rows for j in (r.get("judge") or {}).get("models", [])})
    versions = sorted({(r.get("judge") or {}).get("rubric_version", "") for r in rows} - {""})
    out: dict[str, Any] = {
        "kind": "kyokan.judge.summary",
        "version": 1,
        "n_rows": len(rows),
        "metrics": metrics,
        "judges": judges,
        "rubric_versions": versions,
        "status_counts": status_counts,
        "rows_by_source": {src: len(by_source[src]) for src in sorted(by_source)},
        "table": table,
        "overall": _table_rows(rows, metrics),
        "length_bias": length_bias(rows, metrics),
        "usage": dict(usage),
    }
    out["scoring"] = scoring_summary(rows)
    out["structured_output"] = structured_summary(rows)
    warnings = []
    so = out["structured_output"]
    if so.get("ignored_by_server"):
        warnings.append(so["message"])
    if warnings:
        out["warnings"] = warnings
    agr = agreement(rows, metrics)
    if agr:
        out["agreement"] = agr
    return out


def scoring_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Which scoring ran: "probabilities" (expected scores beside the written ones), "text" (the
    written scores only) or "mixed", with row counts per mode (format violations apart)."""
    c = Counter(str(r.get("scoring") or "text") for r in rows if r.get("status") != "format_violation")
    judged = {k: v for k, v in c.items() if k != "format_rule"}
    mode = "none" if not judged else (next(iter(judged)) if len(judged) == 1 else "mixed")
    return {"mode": mode, "rows": dict(sorted(c.items()))}


def structured_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How structure was obtained (row counts per decoding), how many structured answers were not
    valid under the schema, and — when a server was sent the schema and answered invalid JSON in
    the first place — that it ignores ``response_format`` (said once, here)."""
    dec = Counter(str(r.get("decoding") or "unknown") for r in rows if r.get("status") != "format_violation")
    answers = sum(int((r.get("usage") or {}).get("structured_answers") or 0) for r in rows)
    invalid = sum(int((r.get("usage") or {}).get("schema_invalid") or 0) for r in rows)
    truncated = sum(int((r.get("usage") or {}).get("truncated") or 0) for r in rows)
    notes = sorted({n for r in rows for n in ((r.get("judge") or {}).get("server_notes") or [])})
    out: dict[str, Any] = {"decoding": dict(sorted(dec.items())), "structured_answers": answers,
                           "schema_invalid": invalid, "truncated": truncated, "ignored_by_server": False}
    sent = sum(v for k, v in dec.items() if "response_format" in k)
    # an answer cut at max_new_tokens is invalid whatever the server did: only the rest count
    if sent and invalid > truncated:
        out["ignored_by_server"] = True
        out["message"] = (f"the judge server was sent a JSON schema (response_format) but {invalid} of {answers} "
                          "answers were not valid under it: it ignores response_format"
                          + (f" ({'; '.join(notes)})" if notes else "")
                          + "; answers were parsed tolerantly (use --no-structured to stop sending it)")
    if notes:
        out["server_notes"] = notes
    return out


def _table_rows(rows: list[dict[str, Any]], metrics: list[str]) -> dict[str, Any]:
    cells = {}
    for m in metrics:
        vals: list[float] = []
        ex: list[float] = []
        unscored = fv = 0
        for r in rows:
            v = (r.get("scores") or {}).get(m)
            if r.get("status") == "format_violation":
                fv += 1
            if v is None:
                unscored += 1
            else:
                vals.append(float(v))
                e = (r.get("expected_scores") or {}).get(m)
                if e is not None:
                    ex.append(float(e))
        cells[m] = _cell(vals, unscored, fv, ex)
    return cells


def length_bias(rows: list[dict[str, Any]], metrics: list[str]) -> dict[str, Any]:
    """Per metric: Spearman and Pearson correlation of score with response length (characters of
    the listener turns), n, mean score per length quartile, and a flag when |rho| ≥ 0.3 (n ≥ 20);
    overall and within each source model (where quality differences do not confound length)."""

    def one(rs: list[dict[str, Any]]) -> dict[str, Any]:
        res: dict[str, Any] = {}
        for m in metrics:
            pts = [(float(r["response_chars"]), float(r["scores"][m])) for r in rs
                   if r.get("status") != "format_violation" and isinstance(r.get("response_chars"), int | float)
                   and (r.get("scores") or {}).get(m) is not None]
            xs = [p[0] for p in pts]
            ys = [p[1] for p in pts]
            rho = spearman(xs, ys).statistic
            res[m] = {"n": len(pts), "spearman": _r(rho), "pearson": _r(pearson(xs, ys).statistic),
                      "quartiles": _quartiles(pts),
                      "flag": bool(rho is not None and abs(rho) >= LENGTH_BIAS_RHO and len(pts) >= LENGTH_BIAS_MIN_N)}
        return res

    by_src: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_src[str(r.get("source_model") or "unknown")].append(r)
    return {"x": "response_chars (characters the system wrote as the listener, whitespace excluded)", "overall": one(rows),
            "by_source": {s: one(rs) for s, rs in sorted(by_src.items())}}


def _quartiles(pts: list[tuple[float, float]]) -> list[dict[str, Any]]:
    if len(pts) < 4:
        return []
    pts = sorted(pts)
    k = len(pts)
    out = []
    for q in range(4):
        chunk = pts[q * k // 4:(q + 1) * k // 4]
        if chunk:
            out.append({"chars": [chunk[0][0], chunk[-1][0]], "mean": _r(statistics.fmean(p[1] for p in chunk)),
                        "n": len(chunk)})
    return out


def agreement(rows: list[dict[str, Any]], metrics: list[str]) -> dict[str, Any] | None:
    """With several judges: Krippendorff's alpha (interval) over judges (each judge's mean over its
    samples) and pairwise Pearson, Spearman, MAD and exact agreement; with several samples:
    each judge's self-consistency (alpha over its samples). Format violations are not judged and
    are left out."""
    voted = [r for r in rows if isinstance(r.get("votes"), dict)]
    if not voted:
        return None
    judges = sorted({j for r in voted for j in r["votes"]})
    out: dict[str, Any] = {"n_items": len(voted), "judges": judges, "between_judges": {}, "within_judge": {}}
    for m in metrics:
        def mean_of(r: dict[str, Any], j: str, m: str = m) -> float | None:
            vs = [v for v in ((r["votes"].get(j) or {}).get(m) or []) if v is not None]
            return statistics.fmean(vs) if vs else None

        per_judge = {j: [mean_of(r, j) for r in voted] for j in judges}
        if len(judges) > 1:
            pairs = {}
            for i, a in enumerate(judges):
                for b in judges[i + 1:]:
                    x, y = per_judge[a], per_judge[b]
                    pairs[f"{a} | {b}"] = {"pearson": _r(pearson(x, y).statistic), "spearman": _r(spearman(x, y).statistic),
                                           "mad": _r(mean_absolute_difference(x, y)), "exact": _r(exact_agreement(x, y))}
            out["between_judges"][m] = {
                "krippendorff_alpha_interval": _r(krippendorff_alpha([per_judge[j] for j in judges], "interval")),
                "pairs": pairs}
        within = {}
        for j in judges:
            k = max((len((r["votes"].get(j) or {}).get(m) or []) for r in voted), default=0)
            if k < 2:
                continue
            coders = [[(r["votes"].get(j) or {}).get(m, [None] * k)[s]
                       if s < len((r["votes"].get(j) or {}).get(m) or []) else None for r in voted] for s in range(k)]
            within[j] = {"samples": k, "krippendorff_alpha_interval": _r(krippendorff_alpha(coders, "interval"))}
        if within:
            out["within_judge"][m] = within
    return out


def table4_markdown(summary: dict[str, Any], names: dict[str, str] | None = None, sd: bool = True) -> str:
    """EmplifAI Table 4 as Markdown: a row per source model, a column per metric, ``mean (SD)``."""
    metrics = summary["metrics"]
    names = names or {}
    head = "| Source of dialogues | " + " | ".join(names.get(m, m) for m in metrics) + " | n |"
    sep = "|---|" + "---:|" * len(metrics) + "---:|"
    lines = [head, sep]
    for src, cells in summary["table"].items():
        vals = []
        for m in metrics:
            c = cells[m]
            if c["mean"] is None:
                vals.append("–")
            else:
                v = f"{c['mean']:.2f}"
                if sd and c["sd"] is not None:
                    v += f" ({c['sd']:.2f})"
                if c["unscored"]:
                    v += f" [{c['unscored']} unscored]"
                vals.append(v)
        n = max((cells[m]["n"] + cells[m]["unscored"]) for m in metrics) if metrics else 0
        lines.append(f"| {src} | " + " | ".join(vals) + f" | {n} |")
    return "\n".join(lines)
