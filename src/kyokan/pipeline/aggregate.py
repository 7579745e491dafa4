"""The sweep's aggregate: mean ± SD over seeds per system and metric (EmPO Tables 2–3), tests
between systems (kyokan.stats), the metric against a swept value and the spread over seeds
(EmPO Figures 1–3), as an HTML page with the tables as CSV and Markdown.

Conventions (docs/sweep.md):
- a **config** is a grid point; its runs differ only in the seed. Mean and SD (ddof = 1) are taken
  over the seeds of one config, of each run's system-level value (the stage's own mean);
- **tests** compare two systems of one config on the same evaluation items. Continuous metrics:
  each item's value averaged over the seeds, then a paired permutation test (sign flips) of the
  difference of means. Binary per-item metrics (format kept, accuracy-style): McNemar's exact
  test, once per seed (averaging 0/1 outcomes over seeds would make them non-binary). Two-sided
  unless ``sweep.tests`` states a direction for listed pairs; Holm-adjusted p over the table;
- failed runs are left out and listed; a config with one finished seed has no SD.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kyokan.io import write_json, write_text
from kyokan.tables import Table, fmt_num, fmt_p

if TYPE_CHECKING:
    from kyokan.pipeline.sweep import SweepPlan


@dataclass
class RunOutputs:
    """What one run's stages measured, per system: system-level values and per-item values."""

    #: (system, metric) → the stage's system-level value
    values: dict[tuple[str, str], float] = field(default_factory=dict)
    #: (system, metric) → item id → value
    items: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    #: metrics whose per-item values are 0/1 outcomes
    binary: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
        return float(v)
    return None


def _state_outputs(stage_dir: Path) -> dict[str, Any]:
    from kyokan.pipeline.runner import _read_state

    st = _read_state(stage_dir)
    return st.get("outputs", {}) if st.get("status") == "complete" else {}


def read_run_outputs(run_dir: Path) -> RunOutputs:
    """THE reader of stage outputs for the sweep, on the typed ``kyokan.records`` readers:
    ``eval_responses/<system>/summary.json`` (ResponsesSummary: metric ``<metric>.<field>`` from
    ``means``, system-level ``values``) + ``per_example.jsonl`` (ResponseExample),
    ``judge/judged.jsonl`` (JudgedRow: ``judge.<metric>`` per item; the system mean is the mean
    over items, format violations at the scale minimum as the judge summary counts them) and the
    generated rows (GeneratedDialogue: ``format_ok``, 0/1 per item)."""
    from kyokan.errors import KyokanError
    from kyokan.pipeline.stages import _folder
    from kyokan.records import (
        GeneratedDialogue,
        JudgedRow,
        ResponseExample,
        ResponsesSummary,
        read_record,
        read_rows,
    )

    res = RunOutputs()
    er = run_dir / "eval_responses"
    for label in _state_outputs(er).get("systems", {}):
        d = er / _folder(label)
        try:
            summ = read_record(d / "summary.json", ResponsesSummary)
            examples = read_rows(d / "per_example.jsonl", ResponseExample)
        except (OSError, KyokanError) as e:
            res.problems.append(f"{d}: {e}")
            continue
        for m, ms in summ.metrics.items():
            for f, cell in ms.means.items():
                if cell.mean is not None:
                    res.values[(label, f"{m}.{f}")] = float(cell.mean)
            for k, v in ms.values.items():  # system-level values (response tries, …)
                x = _num(v)
                if x is not None:
                    res.values[(label, f"{m}.{k}")] = x
        for ex in examples:
            if ex.excluded:
                continue
            for m, vals in ex.values.items():
                for f, v in vals.items():
                    x = _num(v)
                    if x is not None and (label, f"{m}.{f}") in res.values:
                        res.items.setdefault((label, f"{m}.{f}"), {})[ex.id] = x
    jd = run_dir / "judge"
    if _state_outputs(jd) and (jd / "judged.jsonl").is_file():
        sums: dict[tuple[str, str], list[float]] = defaultdict(list)
        for row in read_rows(jd / "judged.jsonl", JudgedRow):
            for m, v in row.scores.items():
                x = _num(v)
                if x is not None:
                    res.items.setdefault((row.source_model, f"judge.{m}"), {})[row.dialogue_id] = x
                    sums[(row.source_model, f"judge.{m}")].append(x)
        for key, vs in sums.items():
            res.values[key] = sum(vs) / len(vs)
    gd = run_dir / "generate"
    for label, info in (_state_outputs(gd).get("systems") or {}).items():
        path = Path(info.get("output", gd / _folder(label) / "generated.jsonl"))
        ok = {r.id: float(r.meta.generation.format_ok) for r in read_rows(path, GeneratedDialogue)}
        if ok:
            res.items[(label, "format_ok")] = ok
            res.values[(label, "format_ok")] = sum(ok.values()) / len(ok)
            res.binary.add("format_ok")
    for (_, m), items in res.items.items():
        if m != "format_ok" and items and all(v in (0.0, 1.0) for v in items.values()) and m.endswith(("acc", "accuracy", "correct")):
            res.binary.add(m)
    return res


def _mean_sd(vals: list[float]) -> tuple[float, float | None]:
    import statistics

    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None)


def _fmt(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 1000 else f"{v:.1f}"


def _cell(vals: list[float]) -> str:
    if not vals:
        return "–"
    m, sd = _mean_sd(vals)
    return f"{_fmt(m)} ± {_fmt(sd)}" if sd is not None else f"{_fmt(m)} (1 seed)"


def _wanted(metric: str, wanted: list[str] | None) -> bool:
    return wanted is None or any(metric == w or metric.startswith(w + ".") or metric.startswith(w) for w in wanted)


@dataclass
class Collected:
    #: config → seed → outputs (finished runs only)
    runs: dict[str, dict[int, RunOutputs]]
    #: config → its overrides
    overrides: dict[str, dict[str, Any]]
    failed: list[dict[str, Any]]
    systems: list[str]
    metrics: list[str]
    binary: set[str]


def collect(plan: SweepPlan) -> Collected:
    from kyokan.pipeline.sweep import point_done, read_manifest

    manifest = {p.get("name"): p for p in read_manifest(plan.out).get("points", [])}
    runs: dict[str, dict[int, RunOutputs]] = defaultdict(dict)
    overrides: dict[str, dict[str, Any]] = {}
    failed = []
    systems: list[str] = []
    metrics: list[str] = []
    binary: set[str] = set()
    for p in plan.points:
        overrides.setdefault(p.config, p.overrides)
        if not point_done(plan, p):
            rec = manifest.get(p.name, {})
            failed.append({"run": p.name, "status": rec.get("status", "not run"), "exit_code": rec.get("exit_code"),
                           "log": rec.get("log"), "error": rec.get("error")})
            continue
        ro = read_run_outputs(plan.runs_dir / p.name)
        runs[p.config][p.seed] = ro
        binary |= ro.binary
        for s, m in ro.values:
            if s not in systems:
                systems.append(s)
            if m not in metrics and _wanted(m, plan.sweep.metrics):
                metrics.append(m)
    return Collected(dict(runs), overrides, failed, systems, metrics, binary)


def _seed_values(c: Collected, config: str, system: str, metric: str) -> dict[int, float]:
    return {seed: ro.values[(system, metric)] for seed, ro in sorted(c.runs.get(config, {}).items())
            if (system, metric) in ro.values}


def mean_sd_table(c: Collected) -> tuple[Table, list[dict[str, Any]]]:
    """EmPO Table 2/3 layout: a row per (config, system), a column per metric, mean ± SD over seeds."""
    t = Table("sweep_mean_sd", "Mean ± SD over seeds per system and metric",
              ["config", "system", "seeds", *c.metrics],
              caption="Each run's system-level value (the stage's mean over items), then mean ± SD "
                      "(ddof = 1) over the seeds of the config.")
    long: list[dict[str, Any]] = []
    for config in c.runs:
        for system in c.systems:
            cells = []
            n_seeds = 0
            for m in c.metrics:
                sv = _seed_values(c, config, system, m)
                n_seeds = max(n_seeds, len(sv))
                cells.append(_cell(list(sv.values())))
                if sv:
                    mean, sd = _mean_sd(list(sv.values()))
                    long.append({"config": config, "system": system, "metric": m, "n_seeds": len(sv), "mean": mean,
                                 "sd": sd, "min": min(sv.values()), "max": max(sv.values()),
                                 "values": {str(k): v for k, v in sv.items()}, **{f"override.{k}": v for k, v in c.overrides[config].items()}})
            if n_seeds:
                t.add(config, system, n_seeds, *cells)
    return t, long


def _pairs(plan: SweepPlan, systems: list[str]) -> list[tuple[str, str]]:
    if plan.sweep.tests.pairs:
        return [(a, b) for a, b in plan.sweep.tests.pairs]
    return [(a, b) for i, a in enumerate(systems) for b in systems[i + 1:]]


def tests_table(plan: SweepPlan, c: Collected) -> tuple[Table, list[dict[str, Any]]]:
    from kyokan.stats import holm, mcnemar, permutation_test

    alt = plan.sweep.tests.alternative
    t = Table("sweep_tests", "Differences between systems (per config)",
              ["config", "metric", "a", "b", "test", "items", "mean a", "mean b", "p", "p (Holm)"],
              caption=(f"{alt} tests" + ("" if alt == "two-sided" else f" (H1: a {'>' if alt == 'greater' else '<'} b, fixed in the config)"))
              + "; continuous metrics: paired permutation test of the per-item mean over seeds "
                f"({plan.sweep.tests.resamples} resamples unless exact); binary metrics: McNemar's exact test per seed.")
    rows: list[dict[str, Any]] = []
    for config, by_seed in c.runs.items():
        for m in c.metrics:
            for a, b in _pairs(plan, c.systems):
                if m in c.binary:
                    for seed, ro in sorted(by_seed.items()):
                        ia, ib = ro.items.get((a, m), {}), ro.items.get((b, m), {})
                        ids = sorted(set(ia) & set(ib))
                        if len(ids) < 1:
                            continue
                        mc = mcnemar([ia[i] for i in ids], [ib[i] for i in ids])
                        rows.append({"config": config, "metric": m, "a": a, "b": b, "test": f"McNemar (seed {seed})",
                                     "items": len(ids), "mean_a": mc.mean_a, "mean_b": mc.mean_b, "p": mc.pvalue,
                                     "result": mc.to_dict()})
                    continue
                per_a: dict[str, list[float]] = defaultdict(list)
                per_b: dict[str, list[float]] = defaultdict(list)
                for ro in by_seed.values():
                    for i, v in ro.items.get((a, m), {}).items():
                        per_a[i].append(v)
                    for i, v in ro.items.get((b, m), {}).items():
                        per_b[i].append(v)
                ids = sorted(set(per_a) & set(per_b))
                if len(ids) < 2:
                    continue
                xa = [sum(per_a[i]) / len(per_a[i]) for i in ids]
                xb = [sum(per_b[i]) / len(per_b[i]) for i in ids]
                if xa == xb:
                    continue  # the same outputs (e.g. a system no grid value touches): nothing to test
                pt = permutation_test(xa, xb, paired=True, alternative=alt, n_resamples=plan.sweep.tests.resamples,
                                      seed=plan.sweep.tests.seed)
                rows.append({"config": config, "metric": m, "a": a, "b": b, "test": "permutation (paired)",
                             "items": len(ids), "mean_a": pt.mean_a, "mean_b": pt.mean_b, "p": pt.pvalue,
                             "result": pt.to_dict()})
    if rows:
        adj = holm([r["p"] for r in rows])
        for r, pa in zip(rows, adj, strict=True):
            r["p_holm"] = float(pa)
    for r in rows:
        t.add(r["config"], r["metric"], r["a"], r["b"], r["test"], r["items"], fmt_num(r["mean_a"], 3),
              fmt_num(r["mean_b"], 3), fmt_p(r["p"]), fmt_p(r.get("p_holm")))
    return t, rows


def _x_key(plan: SweepPlan, c: Collected) -> str | None:
    if plan.sweep.x:
        return plan.sweep.x
    keys = [k for ov in c.overrides.values() for k in ov]
    return keys[0] if keys else None


def _figure_metrics(plan: SweepPlan, c: Collected, limit: int = 8) -> list[str]:
    return c.metrics[:limit] if plan.sweep.metrics is None else c.metrics


def sweep_figure(plan: SweepPlan, c: Collected) -> bytes | str:
    """EmPO Figures 1–2: each metric against the swept value, a line per system (and per value of
    the other swept keys), mean ± SD over seeds, every seed's value as a dot."""
    import matplotlib.pyplot as plt
    import numpy as np

    from kyokan.report.plots import figure_png

    xk = _x_key(plan, c)
    if xk is None:
        return "nothing is swept but the seed: see the stability figure"
    metrics = _figure_metrics(plan, c)
    if not metrics:
        return "no metric in the finished runs"
    xs_all = [ov.get(xk) for ov in c.overrides.values()]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs_all)
    order = sorted(set(map(json.dumps, xs_all)), key=lambda s: (json.loads(s) if numeric else s))
    pos = {s: (json.loads(s) if numeric else i) for i, s in enumerate(order)}
    cols = min(3, len(metrics))
    rows_n = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.2 * rows_n), squeeze=False)
    for k, m in enumerate(metrics):
        ax = axes[k // cols][k % cols]
        for system in c.systems:
            lines: dict[str, list[tuple[float, list[float]]]] = defaultdict(list)
            for config, ov in c.overrides.items():
                sv = list(_seed_values(c, config, system, m).values())
                if not sv:
                    continue
                rest = ", ".join(f"{kk.split('.')[-1]}={vv}" for kk, vv in sorted(ov.items()) if kk != xk)
                lines[rest].append((float(pos[json.dumps(ov.get(xk))]), sv))
            for rest, pts in lines.items():
                pts.sort()
                x = np.array([p[0] for p in pts])
                means = np.array([np.mean(p[1]) for p in pts])
                sds = np.array([np.std(p[1], ddof=1) if len(p[1]) > 1 else 0.0 for p in pts])
                label = system + (f" ({rest})" if rest else "")
                line = ax.errorbar(x, means, yerr=sds, marker="o", capsize=3, label=label)
                for xi, (_, sv) in zip(x, pts, strict=True):
                    ax.scatter([xi] * len(sv), sv, s=10, alpha=0.5, color=line[0].get_color())
        ax.set_title(m, fontsize=9)
        ax.set_xlabel(xk.split(".")[-1])
        if numeric and len(order) > 2 and min(pos.values()) > 0 and max(pos.values()) / min(pos.values()) >= 8:
            ax.set_xscale("log", base=2)
        if not numeric:
            ax.set_xticks(list(pos.values()), [json.loads(s) if isinstance(json.loads(s), str) else s for s in order])
    for k in range(len(metrics), rows_n * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Metrics vs {xk} (mean ± SD over seeds; dots: single seeds)")
    return figure_png(fig)


def stability_metric(plan: SweepPlan, c: Collected) -> str | None:
    if plan.sweep.stability_metric:
        return plan.sweep.stability_metric
    for m in c.metrics:
        if m == "diff_epitome.mean":
            return m
    return c.metrics[0] if c.metrics else None


def stability_figure(plan: SweepPlan, c: Collected) -> bytes | str:
    """EmPO Figure 3: per config and system, every seed's value (the spread is the stability)."""
    import matplotlib.pyplot as plt

    from kyokan.report.plots import figure_png

    m = stability_metric(plan, c)
    if m is None:
        return "no metric in the finished runs"
    configs = list(c.runs)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(configs) * max(1, len(c.systems)) / 2), 4))
    w = 0.8 / max(1, len(c.systems))
    drawn = False
    for j, system in enumerate(c.systems):
        data, xs = [], []
        for i, config in enumerate(configs):
            sv = list(_seed_values(c, config, system, m).values())
            if sv:
                data.append(sv)
                xs.append(i + (j - (len(c.systems) - 1) / 2) * w)
        if not data:
            continue
        drawn = True
        bp = ax.boxplot(data, positions=xs, widths=w * 0.8, patch_artist=True, manage_ticks=False)
        color = f"C{j}"
        for patch in bp["boxes"]:
            patch.set_facecolor(color)
            patch.set_alpha(0.35)
        for x, sv in zip(xs, data, strict=True):
            ax.scatter([x] * len(sv), sv, s=14, color=color, zorder=3)
        ax.plot([], [], color=color, label=system)
    if not drawn:
        plt.close(fig)
        return f"no run has {m}"
    ax.set_xticks(range(len(configs)), configs, rotation=20, fontsize=8, ha="right")
    ax.set_ylabel(m)
    ax.set_title(f"Spread of {m} over seeds per config (smaller = more stable)")
    ax.legend(fontsize=7)
    return figure_png(fig)


def runs_table(plan: SweepPlan, c: Collected) -> Table:
    from kyokan.pipeline.sweep import point_done, read_manifest

    man = {p.get("name"): p for p in read_manifest(plan.out).get("points", [])}
    reuse = {r["point"]: r for r in plan.reuse()}
    t = Table("sweep_runs", "Runs", ["run", "config", "seed", "status", "exit", "seconds", "stages reused", "tracker runs", "log"],
              caption="stages reused: taken from the shared stage store (computed by another run of the sweep)")
    for p in plan.points:
        rec = man.get(p.name, {})
        tr = rec.get("tracker_runs") or {}
        status = "complete" if point_done(plan, p) else rec.get("status", "not run")
        t.add(p.name, p.config, p.seed, status, "–" if rec.get("exit_code") is None else str(rec["exit_code"]),
              "–" if rec.get("seconds") is None else fmt_num(float(rec["seconds"]), 1),
              f"{len(rec.get('reused_stages', reuse[p.name]['reused']))}/{len(p.fingerprints)}", ", ".join(f"{k}: {v}" for k, v in tr.items()) or "–",
              str(Path(rec["log"]).relative_to(plan.out)) if rec.get("log") and Path(rec["log"]).is_relative_to(plan.out) else (rec.get("log") or "–"))
    return t


def aggregate(plan: SweepPlan) -> dict[str, Any]:
    """Write ``OUT/aggregate/``: ``sweep.html``, ``tables/*.csv|md``, ``aggregate.json``."""
    import html as _html

    from kyokan.report.html import CSS, img_tag
    from kyokan.report.plots import setup_matplotlib

    c = collect(plan)
    out = plan.out / "aggregate"
    tdir = out / "tables"
    setup_matplotlib()
    mean_t, long = mean_sd_table(c)
    test_t, tests = tests_table(plan, c)
    runs_t = runs_table(plan, c)
    tables = [runs_t, mean_t, test_t]
    for t in tables:
        t.write(tdir)
    figures: list[tuple[str, str, bytes | str]] = [
        ("fig-sweep", "Metrics against the swept value (EmPO Figures 1–2)", sweep_figure(plan, c)),
        ("fig-stability", "Stability: spread over seeds per config (EmPO Figure 3)", stability_figure(plan, c)),
    ]
    e = _html.escape
    body = [f"<h1>kyokan sweep — {e(plan.sweep.name or plan.base.run.name)}</h1>",
            f"<p class='notes'>Sweep folder {e(str(plan.out))} · config {e(str(plan.config_path))} · "
            f"{len(plan.points)} runs ({len(c.runs)} configs × seeds {e(', '.join(str(s) for s in sorted({p.seed for p in plan.points})))})"
            f" · tables as CSV and Markdown in {e(str(tdir))}</p>"]
    if c.failed:
        body.append("<div class='missing'><strong>Runs left out</strong> (failed or not finished):<ul>"
                    + "".join(f"<li>{e(f['run'])}: {e(f['status'])}" + (f", exit {e(str(f['exit_code']))}" if f.get("exit_code") is not None else "")
                              + (f" — {e(f['error'])}" if f.get("error") else "") + (f" — log {e(f['log'])}" if f.get("log") else "") + "</li>"
                              for f in c.failed) + "</ul></div>")
    for t in tables:
        body.append(t.to_html())
    fig_files = []
    for key, title, png in figures:
        body.append(f"<h2>{e(title)}</h2>")
        if isinstance(png, str):
            body.append(f"<p class='missing'>Not drawn: {e(png)}</p>")
        else:
            from kyokan.io import atomic_open

            with atomic_open(out / f"{key}.png", "wb", encoding=None) as f:
                f.write(png)
            fig_files.append(str(out / f"{key}.png"))
            body.append(f"<figure>{img_tag(png, title)}</figure>")
    doc = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           f"<title>kyokan sweep — {e(plan.sweep.name or plan.base.run.name)}</title><style>{CSS}</style></head><body>"
           + "".join(body) + "</body></html>")
    write_text(out / "sweep.html", doc)
    write_json(out / "aggregate.json", {"kind": "kyokan.sweep.aggregate", "version": 1, "mean_sd": long,
                                        "tests": tests, "failed": c.failed, "systems": c.systems,
                                        "metrics": c.metrics, "binary_metrics": sorted(c.binary)})
    return {"html": str(out / "sweep.html"), "tables_dir": str(tdir), "figures": fig_files,
            "configs": len(c.runs), "failed": c.failed}
