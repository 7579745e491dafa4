"""The paper-shaped tables, each built from the run's typed records (``kyokan.records``).

Every number cell is bound to one named field of one record (``Cell``) and carries a trace of
where it came from (``Table.traces``, written as ``<key>.trace.json``). A cell shows "–" only
where the record says the value is missing, and a note then says why. A builder returns a
``Table``, a list of them, or a string saying why the table cannot be built.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kyokan.records import MeanCI, ResponsesSummary
from kyokan.report.discover import Found, RunData, field_value
from kyokan.tables import Table, Trace, fmt_num

JUDGE_METRICS = ("content_comprehensibility", "general_empathy", "emotion_specific_empathy", "consistency",
                 "fluency", "harmlessness", "sense_of_security")
JUDGE_LABELS = {"content_comprehensibility": "Content Comprehensibility", "general_empathy": "General Empathy",
                "emotion_specific_empathy": "Emotion Specific Empathy", "consistency": "Consistency",
                "fluency": "Fluency", "harmlessness": "Harmlessness", "sense_of_security": "Sense of Security"}

#: EmPO Table 4 columns: response-tries values of the ``tries`` metric
TRIES_FIELDS = (("# Templates", "templates"), ("# Span nodes", "span_nodes"), ("# Total nodes", "total_nodes"),
                ("# Root children", "root_children"), ("Compression ratio", "compression_ratio"),
                ("# Unique start words", "unique_start_words"))
#: EmPO Table 5 IVA columns: absolute context−response distances of the ``iva`` metric
IVA_FIELDS = (("I ↓", "intensity_abs"), ("V ↓", "valence_abs"), ("A ↓", "arousal_abs"))
#: EmPO Table 5's marks: one-sided permutation p-values against the reference source
EMPO5_MARKERS = ((0.00001, "*"), (0.001, "†"), (0.01, "‡"))


@dataclass
class ReportOptions:
    """Choices a reader of the report makes, stated up front rather than read off the data."""

    #: the source Table 5 marks significance against (EmPO: the human-written replies)
    reference: str | None = None
    #: hypothesised order of the sources, best first, for one-sided tests in Table 7;
    #: without it Table 7 is two-sided
    order: list[str] | None = None
    seed: int = 0
    #: resamples of the Table 5 permutation tests
    resamples: int = 9999


@dataclass
class Cells:
    """A table row being built: display texts and, per cell, the record fields behind them."""

    texts: list[str] = field(default_factory=list)
    traces: list[list[Trace]] = field(default_factory=list)

    def label(self, text: str) -> None:
        self.texts.append(text)
        self.traces.append([])

    def value(self, text: str, *traces: Trace) -> None:
        self.texts.append(text)
        self.traces.append(list(traces))

    def add_to(self, t: Table) -> None:
        t.add(*self.texts, trace=self.traces)


def bound(obj: Any, file: str, path: str) -> tuple[Any, Trace]:
    """The value of field ``path`` of a record read from ``file``, and its trace."""
    v = field_value(obj, path)
    return v, Trace(file, path, v)


def mean_sd(record: Any, file: str, path: str, digits: int = 2) -> tuple[str, list[Trace]]:
    """``mean ± SD`` of the MeanCI field ``path`` of a record (SD: the sample SD over examples)."""
    m, tm = bound(record, file, f"{path}.mean")
    sd, ts = bound(record, file, f"{path}.std")
    if m is None:
        return "–", [tm]
    return f"{fmt_num(float(m), digits)} ± {fmt_num(float(sd or 0.0), digits)}", [tm, ts]


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s)


def _missing_note(src: str, what: str, ci: MeanCI) -> str:
    return f"{src}: {what} has no value in any of its {ci.missing} example(s) (undefined for each; never averaged as 0)"


# --- format adherence ---------------------------------------------------------------------

def format_adherence(run: RunData, opts: ReportOptions) -> Table | str:
    """Rows per generation status and system, from each generation file's summary record."""
    sums = _generation_summaries(run)
    if not sums:
        return run.empty.get("generate") or "no generated dialogues (stage generate/ missing)"
    t = Table("format_adherence", "Format adherence of generated output",
              ["System", "rows", "format kept", "truncated", "format violations", "share kept"],
              caption="ok: the requested format, complete. truncated: generation stopped at max_new_tokens (the reply "
                      "is cut; metrics flag or exclude it, as the run chose). Format violations score lowest in the "
                      "judge and are left out of the automatic metrics.")
    for f in sums:
        s = f.record
        c = Cells()
        c.label(s.source)
        for path in ("rows", "status.ok", "status.truncated", "status.format_violation"):
            v, tr = bound(s, f.file, path)
            c.value(fmt_num(v), tr)
        share = s.status["ok"] / s.rows if s.rows else None
        c.value(fmt_num(share), Trace(f.file, "status.ok / rows", share))
        c.add_to(t)
        if not s.complete:
            t.notes.append(f"{s.source}: {s.failed} row(s) failed for good and are missing; rerun `kyokan generate` "
                           "to retry them")
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for g in run.generations:
        if g.record.status == "format_violation":
            reasons[g.record.system][(g.record.generation.reason or "format violation")[:80]] += 1
    for src, rs in sorted(reasons.items()):
        top = sorted(rs.items(), key=lambda kv: -kv[1])[:2]
        t.notes.append(f"{src}: " + "; ".join(f"{v}× {k}" for k, v in top))
    return t


def _generation_summaries(run: RunData) -> list[Found[Any]]:
    from kyokan.records import GenerationSummary, read_record

    out: list[Found[Any]] = []
    d = run.stages.get("generate")
    if d is None:
        return out
    for p in sorted(d.rglob("*.summary.json")):
        try:
            out.append(Found(read_record(p, GenerationSummary), run.rel(p)))
        except Exception as e:  # shown in the report's problems, never dropped silently
            run.problems.append(f"{run.rel(p)}: not read — {e}")
    return out


# --- EmplifAI Table 2: emotion prediction -------------------------------------------------

def emotion_table(run: RunData, opts: ReportOptions) -> Table | str:
    if not run.labels:
        return run.empty.get("eval_emotions") or "no emotion-prediction metrics in this run (stage eval_emotions/ missing)"
    t = Table("emplifai_table2", "Emotion prediction against the target labels (taxonomy validity)",
              ["Models", "Vector cosine (mean)", "BERTScore P", "BERTScore R", "BERTScore F1", "Accuracy", "Macro-F1"],
              caption="EmplifAI Table 2 layout; vector cosine stands in for the paper's FastText similarity.")
    for f in run.labels:
        s = f.record
        c = Cells()
        c.label(s.source + (" (stand-in)" if s.stand_in else ""))
        if s.vector_cosine is not None:
            v, tr = bound(s, f.file, "vector_cosine.mean")
            c.value(fmt_num(v), tr)
        else:
            c.value("–")
            t.notes.append(f"{s.source}: vector cosine — {s.vector_cosine_skipped or 'not computed'}")
        if s.bertscore is not None:
            for k in ("precision", "recall", "f1"):
                v, tr = bound(s, f.file, f"bertscore.{k}.mean")
                c.value(fmt_num(v), tr)
            if s.bertscore.empty_answers:
                t.notes.append(f"{s.source}: {s.bertscore.empty_answers} empty answer(s) have no BERTScore (left out)")
        else:
            for _ in range(3):
                c.value("–")
            t.notes.append(f"{s.source}: BERTScore — {s.bertscore_skipped or 'not computed'}")
        v, tr = bound(s, f.file, "accuracy.mean")
        c.value(fmt_num(v), tr)
        v, tr = bound(s, f.file, "macro_f1")
        c.value(fmt_num(v), tr)
        c.add_to(t)
        if s.unmatched:
            t.notes.append(f"{s.source}: {s.unmatched} of {s.n} answers named no label of {s.taxonomy} (counted wrong)")
        run_info = s.prediction_run
        if run_info.get("decoding"):
            t.notes.append(f"{s.source}: decoding " + ", ".join(f"{k} {v}" for k, v in run_info["decoding"].items())
                           + (f"; labels ranked by probability (top {run_info['top_k']} kept per row)"
                              if run_info.get("top_k") and "choices" in run_info["decoding"] else ""))
        if run_info.get("warning"):
            t.notes.append(f"{s.source}: warning: {run_info['warning']}")
    return t


# --- EmplifAI Table 4: LLM judge ----------------------------------------------------------

def judge_metrics(metrics: Sequence[str]) -> list[str]:
    return [m for m in JUDGE_METRICS if m in metrics] + [m for m in metrics if m not in JUDGE_METRICS]


def emplifai_table4(run: RunData, opts: ReportOptions) -> list[Table] | str:
    if not run.judge_summaries:
        return run.empty.get("judge") or "no judge summary in this run (stage judge/ missing or empty)"
    out: list[Table] = []
    for f in run.judge_summaries:
        s = f.record
        metrics = judge_metrics(s.metrics)
        t = Table("emplifai_table4" + (f"_{_slug(f.file)}" if len(run.judge_summaries) > 1 else ""),
                  "LLM-as-a-Judge evaluation of generated dialogues (mean score, 5-point Likert)",
                  ["Source of dialogues", "dialogues", *[JUDGE_LABELS.get(m, m) for m in metrics]],
                  caption=f"Judge: {', '.join(s.judges) or 'unknown'}")
        for src in sorted(s.table):
            c = Cells()
            c.label(src)
            v, tr = bound(s, f.file, f"rows_by_source.{src}")
            c.value(fmt_num(v), tr)
            for m in metrics:
                v, tr = bound(s, f.file, f"table.{src}.{m}.mean")
                c.value(fmt_num(v), tr)
                cell = s.table[src][m]
                if v is None:
                    t.notes.append(f"{src}: {JUDGE_LABELS.get(m, m)} — no parseable score ({cell.unscored} unscored)")
            c.add_to(t)
            extra = {k: n for k, n in s.status_counts.get(src, {}).items() if k != "ok" and n}
            if extra:
                t.notes.append(f"{src}: " + ", ".join(f"{n} {k}" for k, n in sorted(extra.items())))
        t.notes.append("Means over dialogues; unscored answers (unparseable after re-asks) are left out, never "
                       "counted as 1; format violations carry the lowest score, as in the paper.")
        _judge_mode_notes(t, s)
        out.append(t)
        if any(c.expected_n for cells in s.table.values() for c in cells.values()):
            out.append(_expected_table(f, metrics, t.key))
    return out


def _judge_mode_notes(t: Table, s: Any) -> None:
    """Which scoring and decoding ran, and what the judge summary warned about (said once)."""
    if s.scoring is not None:
        t.notes.append(f"Scoring: {s.scoring.mode} (rows: " + ", ".join(f"{k} {v}" for k, v in s.scoring.rows.items())
                       + "); probabilities = the score written under the judge's own token probabilities, with "
                       "the expected score over 1–5 beside it.")
    so = s.structured_output
    if so is not None:
        t.notes.append("Decoding: " + (", ".join(f"{k} {v}" for k, v in so.decoding.items()) or "none")
                       + f"; {so.schema_invalid} of {so.structured_answers} structured answers invalid under the schema"
                       + (f", {so.truncated} cut at max_new_tokens" if so.truncated else "") + ".")
    for w in s.warnings:
        t.notes.append(f"Warning: {w}")


def _expected_table(f: Found[Any], metrics: list[str], key: str) -> Table:
    """EmplifAI Table 4 with probability-weighted (G-Eval style) scores: per cell the mean over
    dialogues of each dialogue's expected score under the judge's token probabilities."""
    s = f.record
    t = Table(key + "_expected", "LLM-as-a-Judge, probability-weighted scores (mean expected score, 1–5)",
              ["Source of dialogues", *[JUDGE_LABELS.get(m, m) for m in metrics]],
              caption="Expected score = Σ k·P(k) over 1–5 at the token where the judge wrote its score.")
    for src in sorted(s.table):
        c = Cells()
        c.label(src)
        for m in metrics:
            v, tr = bound(s, f.file, f"table.{src}.{m}.expected_mean")
            c.value(fmt_num(v), tr)
        c.add_to(t)
    return t


# --- EmplifAI Table 5: judge vs human -----------------------------------------------------

def judge_item_scores(run: RunData) -> dict[str, dict[str, dict[str, float | None]]]:
    """{source: {dialogue id: {metric: score}}} over the judge rows that have a score."""
    out: dict[str, dict[str, dict[str, float | None]]] = defaultdict(dict)
    for f in run.judged:
        r = f.record
        if not r.scored:
            continue
        out[r.source_model][r.dialogue_id] = {m: (None if v is None else float(v)) for m, v in r.scores.items()}
    return dict(out)


def human_item_scores(run: RunData) -> dict[str, dict[str, dict[str, float | None]]]:
    out: dict[str, dict[str, dict[str, float | None]]] = defaultdict(dict)
    for f in run.human_items:
        out[f.record.source][f.record.id] = dict(f.record.means)
    return dict(out)


def emplifai_table5(run: RunData, opts: ReportOptions) -> list[Table] | str:
    from kyokan.stats.tables import judge_vs_human

    if not run.judged:
        return run.empty.get("judge") or "needs judge rows (stage judge/ missing)"
    if not run.human_items:
        return run.empty.get("human") or "needs imported human ratings (stage human/ missing)"
    js, hs = judge_item_scores(run), human_item_scores(run)
    judge_ms = {m for f in run.judged for m in f.record.scores}
    metrics = [m for m in judge_metrics(sorted(judge_ms)) if any(m in v for s in hs.values() for v in s.values())]
    if not metrics:
        return "the human ratings share no metric with the judge (e.g. an EmPO-style survey)"
    common = sorted(set(js) & set(hs))
    if not common:
        return f"no source rated by both the judge ({sorted(js)}) and humans ({sorted(hs)}): items pair by (source, dialogue id)"
    names = sorted({m for f in run.judged for m in f.record.judge.get("models", [])})
    judge = ", ".join(names) or "LLM judge"
    out: list[Table] = []
    for src in common:
        t, detail, data = judge_vs_human(js[src], hs[src], metrics, judge_name=judge, labels=JUDGE_LABELS)
        if len(common) > 1:
            t.key += f"_{_slug(src)}"
            detail.key += f"_{_slug(src)}"
        t.title += f" — dialogues by {src}"
        t.notes.append(f"Computed by kyokan.stats.judge_vs_human from the judge rows and human per-item means of "
                       f"{src}, paired by dialogue id.")
        t.data = data
        out += [t, detail]
    return out


# --- EmPO tables from the response metrics -------------------------------------------------

def _responses(run: RunData) -> list[Found[ResponsesSummary]]:
    """The response summaries, one per system; two summaries naming the same system would make
    two rows no reader could tell apart, so that is an error naming both files."""
    seen: dict[str, str] = {}
    for f in run.responses:
        if f.record.source in seen:
            raise ValueError(f"{seen[f.record.source]} and {f.file} both score system {f.record.source!r}; "
                             "name each system (kyokan eval responses --source NAME)")
        seen[f.record.source] = f.file
    return sorted(run.responses, key=lambda f: f.record.source)


def _metric_cell(c: Cells, t: Table, f: Found[ResponsesSummary], metric: str, fld: str, *, sd: bool,
                 what: str, digits: int = 2) -> MeanCI | None:
    s = f.record
    if metric not in s.metrics:
        c.value("–")
        why = s.skipped.get(metric) or s.skipped.get("*") or "not computed in this run"
        t.notes.append(f"{s.source}: {what} — {why}")
        return None
    m = s.metrics[metric]
    if fld not in m.means:
        c.value("–")
        t.notes.append(f"{s.source}: {what} — the {metric} metric reports no {fld}")
        return None
    ci = m.means[fld]
    path = f"metrics.{metric}.means.{fld}"
    if sd:
        text, trs = mean_sd(s, f.file, path, digits)
        c.value(text, *trs)
    else:
        v, tr = bound(s, f.file, f"{path}.mean")
        c.value(fmt_num(v, digits), tr)
    if ci.mean is None:
        t.notes.append(_missing_note(s.source, what, ci))
    return ci


def empo_table2(run: RunData, opts: ReportOptions) -> Table | str:
    if not run.responses:
        return run.empty.get("eval_responses") or "no response metrics in this run (stage eval_responses/ missing)"
    t = Table("empo_table2", "Model-based empathy metrics and semantic similarity (mean ± SD over examples)",
              ["Model", "DIFF-EPITOME ↓", "BERTScore F1 ↑"],
              caption="EmPO Table 2 layout (one run; the paper's ± is over 4 training seeds — see `kyokan sweep`).")
    for f in _responses(run):
        c = Cells()
        c.label(f.record.source)
        _metric_cell(c, t, f, "diff_epitome", "mean", sd=True, what="DIFF-EPITOME")
        _metric_cell(c, t, f, "bertscore", "f1", sd=True, what="BERTScore F1")
        c.add_to(t)
    return t


def empo_table3(run: RunData, opts: ReportOptions) -> Table | str:
    if not run.general:
        return run.empty.get("general") or "no general language-understanding results (stage general/ missing)"
    tasks: list[str] = []
    for f in run.general:
        tasks += [k for k in f.record.tasks if k not in tasks]
    t = Table("empo_table3", "Language understanding (accuracy)", ["Model", *tasks],
              caption="EmPO Table 3 layout: lm-evaluation-harness `acc,none` per task.")
    for f in run.general:
        s = f.record
        c = Cells()
        c.label(s.model + (f" + {s.adapter}" if s.adapter else ""))
        for task in tasks:
            res = s.results.get(task)
            if res is None or "acc,none" not in res:
                c.value("–")
                t.notes.append(f"{s.model}: {task} — " + ("not run" if res is None else
                                                          f"reports no acc,none (has {', '.join(sorted(res))})"))
                continue
            v, tr = bound(s, f.file, f"results.{task}.acc,none")
            c.value(fmt_num(v, 3), tr)
        c.add_to(t)
    return t


def empo_table4(run: RunData, opts: ReportOptions) -> Table | str:
    if not run.responses:
        return run.empty.get("eval_responses") or "no response metrics in this run (stage eval_responses/ missing)"
    t = Table("empo_table4", "Diversity metrics based on response tries", ["Model", *[h for h, _ in TRIES_FIELDS]],
              caption="EmPO Table 4 layout (Lee et al. 2024 response tries; the profile is named in each summary).")
    for f in _responses(run):
        s = f.record
        c = Cells()
        c.label(s.source)
        m = s.metrics.get("tries")
        for _, fld in TRIES_FIELDS:
            if m is None:
                c.value("–")
            elif fld not in m.values:
                c.value("–")
                t.notes.append(f"{s.source}: the tries metric reports no {fld}")
            else:
                v, tr = bound(s, f.file, f"metrics.tries.values.{fld}")
                c.value(fmt_num(v, 3), tr)
        if m is None:
            t.notes.append(f"{s.source}: response tries — {s.skipped.get('tries') or 'not computed in this run'}")
        c.add_to(t)
    return t


def _example_values(run: RunData, source: str, metric: str, fld: str) -> list[float]:
    out = []
    for f in run.response_rows:
        r = f.record
        if r.source == source and r.excluded is None:
            v = r.values.get(metric, {}).get(fld)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                out.append(float(v))
    return out


def empo_table5(run: RunData, opts: ReportOptions) -> Table | str:
    from kyokan.stats.resampling import min_attainable_pvalue, permutation_test

    if not run.responses:
        return run.empty.get("eval_responses") or "no response metrics in this run (stage eval_responses/ missing)"
    sources = [f.record.source for f in _responses(run)]
    ref = opts.reference
    if ref is not None and ref not in sources:
        raise ValueError(f"--reference {ref!r} is not a scored source ({', '.join(sources)})")
    t = Table("empo_table5", "Specificity (NIDF) and word choice (intensity, valence, arousal)",
              ["Model", "Specificity NIDF ↑", *[h for h, _ in IVA_FIELDS]],
              caption="EmPO Table 5 layout: NIDF mean ± SD; IVA = mean |score(context) − score(response)|.")
    for f in sorted(_responses(run), key=lambda f: (f.record.source != ref, f.record.source)):
        s = f.record
        c = Cells()
        c.label(s.source)
        _metric_cell(c, t, f, "nidf", "nidf", sd=True, what="NIDF")
        for _, fld in IVA_FIELDS:
            ci = _metric_cell(c, t, f, "iva", fld, sd=False, what=f"IVA {fld}")
            if ci is None or ci.mean is None or ref is None or s.source == ref:
                continue
            x, y = _example_values(run, s.source, "iva", fld), _example_values(run, ref, "iva", fld)
            if len(x) > 1 and len(y) > 1:
                p = permutation_test(x, y, alternative="less", n_resamples=opts.resamples, seed=opts.seed).pvalue
                if p is not None:
                    c.texts[-1] += next((mk for thr, mk in EMPO5_MARKERS if p < thr), "")
        c.add_to(t)
    if ref:
        floor = min_attainable_pvalue(opts.resamples, "less")
        t.notes.append(f"Marks: one-sided permutation test (difference of means, {opts.resamples:,} resamples, seed "
                       f"{opts.seed}) of the hypothesis, fixed before looking at the data, that a model's IVA distance "
                       f"is lower than {ref}'s: * p < 0.00001, † p < 0.001, ‡ p < 0.01 (uncorrected); the smallest "
                       f"attainable p is {floor:.1e}" + (", so * cannot be reached" if floor >= 0.00001 else "") + ".")
    else:
        t.notes.append("No significance marks: name the reference source (EmPO: the human replies) with "
                       "`kyokan report --reference SOURCE`.")
    lic = sorted({(lic.name, lic.license) for f in run.responses for lic in f.record.licenses})
    if lic:
        t.notes.append("Lexicons: " + "; ".join(f"{n} ({li})" for n, li in lic) + ".")
    return t


# --- EmPO Table 7: human evaluation ----------------------------------------------------------

def empo_table7(run: RunData, opts: ReportOptions) -> Table | str:
    from kyokan.stats.tables import pairwise_compare

    hs = human_item_scores(run)
    if len(hs) < 2:
        return run.empty.get("human") or "needs human ratings of at least two sources (stage human/ missing or single-source)"
    summ = run.human_summary.record if run.human_summary else None
    scales = [s.name for s in summ.scales if s.kind != "binary"] if summ else []
    metrics = scales or sorted({m for s in hs.values() for v in s.values() for m in v})
    labels = {s.name: s.en for s in summ.scales} if summ else {}
    # EmPO Table 7: a paired t-test over the items every source was rated on, pooled-SD d
    if opts.order:
        t, _, _ = pairwise_compare(hs, metrics, test="paired", effect="pooled", correction="bonferroni",
                                   alternative="greater", order=opts.order, labels=labels)
    else:
        t, _, _ = pairwise_compare(hs, metrics, test="paired", effect="pooled", correction="bonferroni", labels=labels)
        t.notes.append("Two-sided tests: state a hypothesised order (`kyokan report --order A,B,C`) for EmPO's "
                       "one-sided layout.")
    return t


Builder = Callable[[RunData, ReportOptions], "Table | list[Table] | str"]

#: (section title, builder) in report order
BUILDERS: list[tuple[str, Builder]] = [
    ("Format adherence", format_adherence),
    ("EmplifAI Table 2 — emotion prediction", emotion_table),
    ("EmplifAI Table 4 — LLM-as-a-judge", emplifai_table4),
    ("EmplifAI Table 5 — judge vs human", emplifai_table5),
    ("EmPO Table 2 — model-based metrics", empo_table2),
    ("EmPO Table 3 — language understanding", empo_table3),
    ("EmPO Table 4 — diversity (response tries)", empo_table4),
    ("EmPO Table 5 — specificity and word choice", empo_table5),
    ("EmPO Table 7 — human evaluation, pairwise", empo_table7),
]
