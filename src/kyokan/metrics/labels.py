"""Taxonomy validity scoring (EmplifAI §4, Table 2): predicted vs gold emotion labels.

Rows carry ``gold`` and ``predicted`` (label ids or names in any language the taxonomy accepts).
``predicted`` values off the label list are normalised to the nearest label with
``Taxonomy.suggest`` and flagged (``off_list``); answers with no near label stay unmatched
(``predicted_label`` null: counted wrong, column ``(none)`` of the confusion matrix).

- ``accuracy``: share of rows whose predicted label equals the gold label (bootstrap 95% CI);
- ``macro_f1``: unweighted mean of the per-label F1 over the labels that occur as gold or as
  prediction (scikit-learn's ``f1_score(average="macro")``); per-label P/R/F1/support;
- ``confusion``: rows = gold, columns = predicted, in taxonomy order (+ ``(none)``);
- ``bertscore``: P/R/F1 between the predicted and gold label WORDS (names in the data's language,
  as the paper did), each distinct pair scored once (equal to bert_score on every row);
- ``vector_cosine``: cosine of the word vectors of the two label words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kyokan.errors import InputError, KyokanError, Problem
from kyokan.io import write_jsonl
from kyokan.stats.resampling import bootstrap_mean
from kyokan.taxonomy import Taxonomy, get_taxonomy

if TYPE_CHECKING:
    from kyokan.records import LabelsSummary

NONE_LABEL = "(none)"


@dataclass
class LabelRow:
    id: str
    gold: str
    predicted: str | None
    raw: str
    off_list: bool
    lang: str


def _resolve_taxonomy(taxonomy: str | Taxonomy | None) -> Taxonomy:
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    return get_taxonomy(taxonomy) if taxonomy else get_taxonomy()


def normalize_prediction(tax: Taxonomy, text: str | None) -> tuple[str | None, bool]:
    """(label id or None, off_list flag)."""
    if text is None or not str(text).strip():
        return None, True
    canon = tax.normalize(str(text))
    if canon is not None:
        return canon, False
    return tax.suggest(str(text)), True


def read_predictions(path: str | Path, tax: Taxonomy, lang: str | None = None) -> list[LabelRow]:
    p = Path(path)
    if not p.exists():
        raise KyokanError(f"{p}: file not found")
    from kyokan.io import iter_json_objects

    rows: list[LabelRow] = []
    problems: list[Problem] = []
    for lineno, r, problem in iter_json_objects(p):
        if r is None:
            problems.append(problem or Problem(str(p), lineno, None, "unreadable"))
            continue
        gold = tax.normalize(str(r.get("gold", "")))
        if gold is None:
            problems.append(Problem(str(p), lineno, "gold", f"{r.get('gold')!r} is not a {tax.name} label"))
            continue
        if "predicted" not in r:
            problems.append(Problem(str(p), lineno, "predicted", "missing"))
            continue
        pred, off = normalize_prediction(tax, r.get("predicted"))
        if r.get("off_list"):
            off = True
        raw = r.get("raw")
        rows.append(LabelRow(str(r.get("id", lineno)), gold, pred,
                             str(raw if raw is not None else r.get("predicted")), off,
                             str(lang or r.get("lang") or "ja")))
    if problems:
        raise InputError(problems[:50], len(problems))
    if not rows:
        raise KyokanError(f"{p}: no prediction rows")
    return rows


def classification_report(tax: Taxonomy, gold: Sequence[str], pred: Sequence[str | None]) -> dict[str, Any]:
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    y_pred = [p if p is not None else NONE_LABEL for p in pred]
    present = [lab for lab in tax.ids if lab in set(gold) | set(y_pred)]
    p, r, f, s = precision_recall_fscore_support(list(gold), y_pred, labels=present, zero_division=0)
    per_label = {lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                 for i, lab in enumerate(present)}
    macro = float(f1_score(list(gold), y_pred, labels=present, average="macro", zero_division=0)) if present else 0.0
    cols = [*tax.ids, NONE_LABEL] if NONE_LABEL in y_pred else list(tax.ids)
    idx = {c: i for i, c in enumerate(cols)}
    matrix = [[0] * len(cols) for _ in tax.ids]
    row_idx = {lab: i for i, lab in enumerate(tax.ids)}
    for g, q in zip(gold, y_pred, strict=True):
        matrix[row_idx[g]][idx[q]] += 1
    return {"macro_f1": macro, "macro_over": present, "per_label": per_label,
            "confusion": {"rows": "gold", "columns": "predicted", "labels": cols, "matrix": matrix}}


def score_labels(rows: list[LabelRow], out_dir: str | Path | None = None, *, taxonomy: str | Taxonomy | None = None,
                 bertscore: bool = True, bertscore_model: str | None = None, bertscore_layer: int | None = None,
                 vectors: str | None = None, seed: int = 0, resamples: int = 1000, source: str = "predictions",
                 extra: dict[str, Any] | None = None) -> LabelsSummary:
    """Score the rows; writes ``per_example.jsonl`` (kyokan.records.LabelExample) and
    ``summary.json`` (kyokan.records.LabelsSummary) into ``out_dir`` and returns the summary.
    ``source`` names the predictor (a model spec, or the predictions file)."""
    from kyokan.records import LabelsSummary, write_record

    tax = _resolve_taxonomy(taxonomy)
    langs = sorted({r.lang for r in rows})
    lang = langs[0] if len(langs) == 1 else "ja"
    gold_words = [tax.label(r.gold).name(r.lang) for r in rows]
    pred_words = [tax.label(r.predicted).name(r.lang) if r.predicted else r.raw for r in rows]
    correct = [1.0 if r.predicted == r.gold else 0.0 for r in rows]
    summary: dict[str, Any] = {"kind": "kyokan.eval.labels", "version": 2, "source": source, "taxonomy": tax.name,
                               "lang": lang,
                               "n": len(rows), "accuracy": bootstrap_mean(correct, seed=seed, resamples=resamples),
                               "off_list": sum(r.off_list for r in rows),
                               "unmatched": sum(r.predicted is None for r in rows)}
    summary.update(classification_report(tax, [r.gold for r in rows], [r.predicted for r in rows]))
    per: list[dict[str, Any]] = [{"kind": "kyokan.eval.labels.example", "version": 1, "id": r.id, "gold": r.gold, "predicted": r.predicted, "raw": r.raw,
                                  "off_list": r.off_list, "correct": bool(c), "gold_word": gw, "predicted_word": pw}
                                 for r, c, gw, pw in zip(rows, correct, gold_words, pred_words, strict=True)]
    if bertscore:
        from kyokan.cache import cache_dir
        from kyokan.metrics.bertscore import BertScorer

        scorer = BertScorer(model=bertscore_model, num_layers=bertscore_layer, lang=lang,
                            embedding_cache=str(cache_dir("bertscore", "labels")))
        # an empty answer has no words to compare: its BERTScore is undefined (null), not 0
        keep = [i for i, pw in enumerate(pred_words) if pw and pw.strip()]
        vals: dict[str, list[float | None]] = {k: [None] * len(per) for k in ("precision", "recall", "f1")}
        distinct = 0
        if keep:
            res = scorer.score([pred_words[i] for i in keep], [gold_words[i] for i in keep])
            distinct = res.distinct_pairs
            for j, i in enumerate(keep):
                for k in vals:
                    vals[k][i] = float(getattr(res, k)[j])
        for i, row in enumerate(per):
            row["bertscore"] = {k: vals[k][i] for k in vals}
        summary["bertscore"] = {k: bootstrap_mean(vals[k], seed=seed, resamples=resamples) for k in vals}
        summary["bertscore"].update({"distinct_pairs": distinct, "empty_answers": len(per) - len(keep),
                                     "provenance": scorer.info()})
    vec = None
    if vectors != "none":
        from kyokan.metrics.vectors import load_vectors

        vec = load_vectors(vectors, lang, set(gold_words) | set(pred_words))
    if vec is not None:
        cache: dict[tuple[str, str], float | None] = {}
        cos: list[float | None] = []
        for pw, gw, row in zip(pred_words, gold_words, per, strict=True):
            if (pw, gw) not in cache:
                cache[(pw, gw)] = vec.cosine(pw, gw)
            row["vector_cosine"] = cache[(pw, gw)]
            cos.append(cache[(pw, gw)])
        summary["vector_cosine"] = {**bootstrap_mean(cos, seed=seed, resamples=resamples), "vectors": vec.info()}
    else:
        summary["vector_cosine"] = None
        summary["vector_cosine_skipped"] = f"no word vectors for lang {lang!r} offline; pass --vectors PATH.vec"
    if not bertscore:
        summary["bertscore_skipped"] = "turned off (--no-bertscore)"
    summary["bootstrap"] = {"seed": seed, "resamples": resamples, "confidence": 0.95, "method": "percentile"}
    if extra:
        summary.update(extra)
    from kyokan.metrics.responses import provenance

    summary["provenance"] = provenance()
    rec = LabelsSummary.model_validate(summary)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_jsonl(out / "per_example.jsonl", per)
        write_record(out / "summary.json", rec)
    return rec
