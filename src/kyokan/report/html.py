"""Assemble the self-contained HTML report from a run's typed records: no external resources,
images as data: URIs, every table also as CSV/Markdown with a trace of where each number came from."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kyokan.provenance import package_versions
from kyokan.report.discover import STAGES, RunData, discover
from kyokan.report.tables import ReportOptions
from kyokan.tables import Table

log = logging.getLogger("kyokan.report")

REPORT_PACKAGES = ("kyokan", "numpy", "scipy", "matplotlib", "matplotlib-fontja", "krippendorff", "pydantic")

CSS = """
body{font-family:"Noto Sans CJK JP","Noto Sans JP","IPAexGothic","Hiragino Sans","Yu Gothic",sans-serif;margin:2rem auto;max-width:1100px;color:#222;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.88rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f3f3}
figure{margin:1rem 0}figcaption{font-size:.92rem;margin-bottom:.3rem}img{max-width:100%;height:auto;border:1px solid #eee}
.missing{color:#8a5a00;background:#fff6e0;border-left:4px solid #e0a800;padding:.4rem .7rem;margin:.5rem 0}
.error{color:#7a0000;background:#fdeaea;border-left:4px solid #c0392b;padding:.4rem .7rem;margin:.5rem 0}
.notes{font-size:.82rem;color:#555}.ok{color:#176417}.no{color:#8a5a00}
pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:.8rem;max-height:24rem}
.license{color:#a00000;font-weight:bold}
.standin{background:#fdeaea;border-left:4px solid #c0392b;padding:.5rem .8rem;margin:1rem 0}
"""


def _e(s: Any) -> str:
    return html.escape(str(s))


def img_tag(png: bytes, alt: str) -> str:
    """An <img> element embedding PNG bytes (reports are single self-contained files)."""
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


@dataclass(frozen=True)
class ModelLine:
    stage: str
    role: str
    spec: str
    detail: str
    stand_in: bool


def models_used(run: RunData) -> list[ModelLine]:
    """Every model the stages recorded: the pipeline's provenance where a stage has it, else what
    the stage's own records name (a run made with the single commands)."""
    out: list[ModelLine] = []
    for stage, found in run.provenance.items():
        for pf in found:
            for m in pf.record.models:
                detail = ", ".join(x for x in (m.label and f"as {m.label}", m.adapter and f"adapter {m.adapter}") if x)
                out.append(ModelLine(stage, m.role, m.spec, detail, m.stand_in))
    recorded = set(run.provenance)
    if "judge" not in recorded:
        for jf in run.judge_summaries:
            stand_in = bool(jf.record.provenance.get("stand_in"))
            for j in jf.record.judges:
                out.append(ModelLine("judge", "judge", j, f"rubric {', '.join(jf.record.rubric_versions)}", stand_in))
    if "eval_emotions" not in recorded:
        for lf in run.labels:
            out.append(ModelLine("eval_emotions", "predictor", lf.record.source, "", lf.record.stand_in))
    if "generate" not in recorded:
        for spec in sorted({g.record.system for g in run.generations}):
            out.append(ModelLine("generate", "system", spec, "", False))
    if "eval_responses" not in recorded:
        for rf in run.responses:
            bs = rf.record.metrics.get("bertscore")
            if bs is not None and bs.provenance.get("model"):
                line = ModelLine("eval_responses", "encoder", str(bs.provenance["model"]),
                                 f"BERTScore layer {bs.provenance.get('num_layers')}", False)
                if line not in out:
                    out.append(line)
    return out


def lexicons_used(run: RunData) -> list[tuple[str, str, str]]:
    """(language, lexicon, license) exactly as the metric summaries recorded them."""
    seen: list[tuple[str, str, str]] = []
    for f in run.responses:
        for lic in f.record.licenses:
            row = (f.record.lang or "?", lic.name, lic.license)
            if row not in seen:
                seen.append(row)
    return seen


def provenance_section(run: RunData, cjk_font: str | None) -> str:
    parts = ["<h2 id='provenance'>Provenance</h2>"]
    lex = lexicons_used(run)
    parts.append("<h3>Lexicons used and their licences</h3>")
    if lex:
        parts.append("<table><thead><tr><th>language</th><th>lexicon</th><th>licence</th></tr></thead><tbody>"
                     + "".join(f"<tr><td>{_e(lang)}</td><td>{_e(n)}</td><td class='"
                               f"{'license' if 'non-commercial' in lic.lower() or 'research' in lic.lower() else ''}'>"
                               f"{_e(lic)}</td></tr>" for lang, n, lic in lex) + "</tbody></table>")
    else:
        parts.append("<p>No stage of this run used a lexicon.</p>")
    models = models_used(run)
    parts.append("<h3>Models</h3>")
    if models:
        parts.append("<table><thead><tr><th>stage</th><th>role</th><th>model</th><th>detail</th></tr></thead><tbody>"
                     + "".join(f"<tr><td>{_e(m.stage)}</td><td>{_e(m.role)}</td><td>{_e(m.spec)}"
                               f"{' <b>(stand-in)</b>' if m.stand_in else ''}</td><td>{_e(m.detail)}</td></tr>"
                               for m in models) + "</tbody></table>")
    else:
        parts.append("<p>No stage recorded a model.</p>")
    seeds = [(stage, f.record.seed) for stage, fs in run.provenance.items() for f in fs]
    if seeds:
        parts.append("<p>Seeds: " + ", ".join(f"{_e(s)} {_e(v)}" for s, v in seeds) + "</p>")
    parts.append("<h3>Stage provenance files</h3>")
    if not run.provenance:
        parts.append("<p class='missing'>No stage has a provenance.json (the run was not made by `kyokan run`).</p>")
    for fs in run.provenance.values():
        for f in fs:
            parts.append(f"<details><summary>{_e(f.file)}</summary><pre>"
                         f"{_e(json.dumps(f.record.to_json(), ensure_ascii=False, indent=2, default=str))}</pre></details>")
    versions = package_versions(REPORT_PACKAGES)
    parts.append("<h3>Report environment</h3><table><thead><tr><th>package</th><th>version</th></tr></thead><tbody>"
                 + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in versions.items()) + "</tbody></table>")
    parts.append(f"<p class='notes'>Plot font for Japanese: {_e(cjk_font or 'none (install matplotlib-fontja)')}.</p>")
    return "".join(parts)


def stand_in_models(run: RunData) -> list[tuple[str, str]]:
    """(stage, model) for every model recorded as a stand-in for the one a paper used."""
    out: list[tuple[str, str]] = []
    for m in models_used(run):
        if m.stand_in and (m.stage, m.spec) not in out:
            out.append((m.stage, m.spec))
    return out


def _stage_status(run: RunData, stage: str) -> str:
    d = run.stages.get(stage)
    if d is None:
        return "<span class='no'>missing — not part of this run</span>"
    if stage in run.empty:
        return f"<span class='no'>folder {_e(run.rel(d))}/ — {_e(run.empty[stage])}</span>"
    return f"<span class='ok'>found: {_e(run.rel(d))}/</span>"


def build_report(run_dir: str | Path, output: str | Path, tables_dir: str | Path | None = None,
                 title: str | None = None, options: ReportOptions | None = None) -> dict[str, Any]:
    """Write the HTML report and every table as CSV + Markdown (+ trace); returns what was built,
    what could not be (and why) and any error met while building."""
    from kyokan.io import write_text
    from kyokan.report.plots import PLOTS, setup_matplotlib
    from kyokan.report.tables import BUILDERS

    opts = options or ReportOptions()
    run = discover(run_dir)
    out = Path(output)
    tdir = Path(tables_dir) if tables_dir else out.with_name(out.stem + "_tables")
    cjk = setup_matplotlib()
    body: list[str] = []
    built: list[str] = []
    missing: dict[str, str] = {}
    errors: dict[str, str] = {}
    toc: list[str] = []

    stand_ins = stand_in_models(run)
    if stand_ins:
        body.append("<div class='standin'><strong>Stand-in models.</strong> These stages used a small model in place of "
                    "the one a paper used; their numbers show that the pipeline runs, not how good the systems are: <ul>"
                    + "".join(f"<li>{_e(stage)}: {_e(model)}</li>" for stage, model in stand_ins) + "</ul></div>")
    body.append("<h2 id='stages'>Stages found</h2><table><thead><tr><th>stage</th><th>what</th><th>status</th></tr></thead><tbody>")
    for stage, what in STAGES.items():
        body.append(f"<tr><td>{_e(stage)}</td><td>{_e(what)}</td><td>{_stage_status(run, stage)}</td></tr>")
    body.append("</tbody></table>")
    toc.append("<li><a href='#stages'>Stages found</a></li>")

    body.append("<h2 id='tables'>Tables</h2>")
    toc.append("<li><a href='#tables'>Tables</a></li>")
    for title_, fn in BUILDERS:
        body.append(f"<h3>{_e(title_)}</h3>")
        try:
            res = fn(run, opts)
        except Exception as e:  # a bug or a bad option: shown and logged, never passed off as "not available"
            msg = f"{type(e).__name__}: {e}"
            log.error("report: %s could not be built: %s", title_, msg, exc_info=True)
            errors[title_] = msg
            body.append(f"<p class='error'>Error while building this table: {_e(msg)}</p>")
            continue
        if isinstance(res, str):
            missing[title_] = res
            body.append(f"<p class='missing'>Not available: {_e(res)}</p>")
            continue
        tables: list[Table] = res if isinstance(res, list) else [res]
        for t in tables:
            body.append(t.to_html())
            t.write(tdir)
            built.append(t.key)
    body.append("<h2 id='plots'>Plots</h2>")
    toc.append("<li><a href='#plots'>Plots</a></li>")
    for title_, pfn in PLOTS:
        body.append(f"<h3>{_e(title_)}</h3>")
        try:
            png = pfn(run)
        except Exception as e:
            msg = f"{type(e).__name__}: {e}"
            log.error("report: plot %s could not be drawn: %s", title_, msg, exc_info=True)
            errors[title_] = msg
            body.append(f"<p class='error'>Error while drawing this plot: {_e(msg)}</p>")
            continue
        if isinstance(png, str):
            missing[title_] = png
            body.append(f"<p class='missing'>Not available: {_e(png)}</p>")
        else:
            body.append(f"<figure>{img_tag(png, title_)}</figure>")
            built.append(title_)
    if run.problems:
        for p in run.problems:
            log.warning("report: %s", p)
        body.append("<h2 id='problems'>Files that could not be read</h2><ul>"
                    + "".join(f"<li>{_e(p)}</li>" for p in run.problems) + "</ul>")
        toc.append("<li><a href='#problems'>Files that could not be read</a></li>")
    body.append(provenance_section(run, cjk))
    toc.append("<li><a href='#provenance'>Provenance</a></li>")
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    ttl = title or f"kyokan report — {run.root.name}"
    doc = ("<!DOCTYPE html><html lang='ja'><head><meta charset='utf-8'>"
           "<meta name='viewport' content='width=device-width, initial-scale=1'>"
           f"<title>{_e(ttl)}</title><style>{CSS}</style></head><body>"
           f"<h1>{_e(ttl)}</h1><p class='notes'>Run directory: {_e(run.root)} · generated {now} · "
           f"tables also as CSV and Markdown (with a trace of every number) in {_e(tdir)}</p>"
           f"<nav><ul>{''.join(toc)}</ul></nav>" + "".join(body) + "</body></html>")
    write_text(out, doc)
    return {"report": str(out), "tables_dir": str(tdir), "built": built, "missing": missing, "errors": errors,
            "stages": {k: (str(v) if v else None) for k, v in run.stages.items()}, "cjk_font": cjk,
            "problems": run.problems}


__all__ = ["build_report", "lexicons_used", "models_used", "stand_in_models"]
