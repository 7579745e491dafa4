"""The paper-shaped tables, each built from whatever the run holds. A builder returns a ``Table``
or a string saying why it cannot be built (the report prints that instead)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from kyokan.report.discover import RunData, flatten
from kyokan.tables import Table, fmt_num

JUDGE_METRICS = ("content_comprehensibility", "general_empathy", "emotion_specific_empathy", "consistency",
                 "fluency", "harmlessness", "sense_of_security")
JUDGE_LABELS = {"content_comprehensibility": "Content Comprehensibility", "general_empathy": "General Empathy",
                "emotion_specific_empathy": "Emotion Specific Empathy", "consistency": "Consistency",
                "fluency": "Fluency", "harmlessness": "Harmlessness", "sense_of_security": "Sense of Security"}
REFERENCE_NAMES = ("human", "gold", "reference", "ground_truth", "ground-truth", "crowd")


def pick(flat: dict[str, float], *alternatives: tuple[str, ...]) -> tuple[str, float] | None:
    """The first key containing every needle of an alternative (case-insensitive), preferring a
    ``.mean`` leaf, then the shortest key."""
    for needles in alternatives:
        keys = [k for k in flat if all(n in k.lower() for n in needles)]
        if keys:
            keys.sort(key=lambda k: (not k.lower().endswith("mean"), k.lower().endswith(("sd", "std", ".n")), len(k)))
            return keys[0], flat[keys[0]]
    return None


def mean_sd(values: list[float]) -> str:
    v = [x for x in values if x is not None and not math.isnan(x)]
    if not v:
        return "–"
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
    return f"{np.mean(v):.2f} ± {sd:.2f}"


# --- judge --------------------------------------------------------------------------------

def judge_source(row: dict[str, Any], id_source: dict[str, str]) -> str:
    from kyokan.stats.data import source_of

    return source_of(row) or id_source.get(str(row.get("id"))) or "unknown"


def dialogue_sources(run: RunData) -> dict[str, str]:
    from kyokan.stats.data import source_of

    return {str(d["id"]): s for d in run.dialogues if "id" in d and (s := source_of(d, "meta.generation.model"))}


def judge_scores(run: RunData) -> dict[str, dict[str, dict[str, float | None]]]:
    """{source: {id: {metric: score}}} over scored judge rows (unscored rows are not scores)."""
    ids = dialogue_sources(run)
    out: dict[str, dict[str, dict[str, float | None]]] = defaultdict(dict)
    for r in run.judge_rows:
        if r.get("status") == "unscored":
            continue
        sc = r.get("scores") or {}
        out[judge_source(r, ids)][str(r["id"])] = {m: (float(v) if isinstance(v, int | float) else None) for m, v in sc.items()}
    return dict(out)


def judge_metrics(run: RunData) -> list[str]:
    present = {m for r in run.judge_rows for m in (r.get("scores") or {})}
    return [m for m in JUDGE_METRICS if m in present] + sorted(present - set(JUDGE_METRICS))


def emplifai_table4(run: RunData) -> Table | str:
    if not run.judge_rows:
        return "no judge rows in this run (stage judge/ missing or empty)"
    scores = judge_scores(run)
    metrics = judge_metrics(run)
    status: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    ids = dialogue_sources(run)
    for r in run.judge_rows:
        status[judge_source(r, ids)][str(r.get("status"))] += 1
    judge = next((r["judge"].get("model") or ", ".join(map(str, r["judge"].get("models") or []))
                  for r in run.judge_rows if isinstance(r.get("judge"), dict)), None)
    t = Table("emplifai_table4", "LLM-as-a-Judge evaluation of generated dialogues (mean score, 5-point Likert)",
              ["Source of dialogues", "n", *[JUDGE_LABELS.get(m, m) for m in metrics]],
              caption=f"Judge: {judge or 'unknown'}")
    # every judged source gets a row, also one whose answers were all unscored (n = 0)
    for src in sorted(set(scores) | set(status)):
        items = scores.get(src, {})
        cells = []
        for m in metrics:
            v = [x[m] for x in items.values() if x.get(m) is not None]
            cells.append(fmt_num(float(np.mean(v))) if v else "–")  # type: ignore[arg-type]
        t.add(src, len(items), *cells)
        st = status[src]
        extra = {k: v for k, v in st.items() if k != "ok"}
        if extra:
            t.notes.append(f"{src}: " + ", ".join(f"{v} {k}" for k, v in sorted(extra.items())))
        t.data.append({"source": src, "n": len(items), "status": dict(st)})
    t.notes.append("Unscored rows (judge answers that could not be parsed) are excluded, never counted as 1; "
                   "format violations carry the lowest score, as in the paper.")
    return t


def human_scores(run: RunData) -> dict[str, dict[str, dict[str, float | None]]]:
    out: dict[str, dict[str, dict[str, float | None]]] = defaultdict(dict)
    for r in run.human_items:
        means = r.get("means") or {}
        out[str(r.get("source"))][str(r.get("id"))] = {m: (float(v) if isinstance(v, int | float) else None) for m, v in means.items()}
    return dict(out)


def emplifai_table5(run: RunData) -> list[Table] | str:
    from kyokan.stats.tables import judge_vs_human

    if not run.judge_rows:
        return "needs judge scores (stage judge/ missing)"
    if not run.human_items:
        return "needs imported human ratings (stage human/ missing)"
    js, hs = judge_scores(run), human_scores(run)
    metrics = [m for m in judge_metrics(run) if any(m in v for s in hs.values() for v in s.values())]
    if not metrics:
        return "the human ratings share no metric with the judge (e.g. an EmPO-style survey)"
    common = sorted(set(js) & set(hs))
    if not common:
        return f"no source rated by both the judge ({sorted(js)}) and humans ({sorted(hs)})"
    judge = next((r["judge"].get("model") for r in run.judge_rows if isinstance(r.get("judge"), dict)), None) or "LLM judge"
    out: list[Table] = []
    for src in common:
        t, detail, data = judge_vs_human(js[src], hs[src], metrics, judge_name=judge, labels=JUDGE_LABELS)
        if len(common) > 1:
            t.key += f"_{_slug(src)}"
            detail.key += f"_{_slug(src)}"
        t.title += f" — dialogues by {src}"
        t.data = data
        out += [t, detail]
    return out


# --- metrics ------------------------------------------------------------------------------

def emotion_table(run: RunData) -> Table | str:
    if not run.emotions:
        return "no emotion-prediction metrics in this run (stage eval_emotions/ missing)"
    t = Table("emplifai_table2", "Emotion prediction against the target labels (taxonomy validity)",
              ["Models", "Vector cosine (mean)", "BERTScore P", "BERTScore R", "BERTScore F1", "Accuracy", "Macro-F1"],
              caption="EmplifAI Table 2 layout; vector cosine stands in for the paper's FastText similarity.")
    for mo in run.emotions:
        f = flatten(mo.summary)
        cells = [pick(f, ("vector_cosine",), ("cosine",), ("fasttext",)),
                 pick(f, ("bertscore", "precision"), ("bertscore", ".p")),
                 pick(f, ("bertscore", "recall"), ("bertscore", ".r")),
                 pick(f, ("bertscore", "f1"), ("bertscore", ".f")),
                 pick(f, ("accuracy",)), pick(f, ("macro_f1",), ("macro", "f1"))]
        t.add(mo.label, *[fmt_num(c[1]) if c else "–" for c in cells])
    return t


def response_groups(run: RunData) -> dict[str, list[dict[str, Any]]]:
    """Per-example rows per source: a folder per source, or a ``source`` field inside one file."""
    from kyokan.stats.data import source_of

    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for mo in run.responses:
        for r in mo.per_example:
            out[source_of(r) or mo.label].append(r)
    return dict(out)


def response_summaries(run: RunData) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for mo in run.responses:
        per = mo.summary.get("per_source") or mo.summary.get("sources")
        if isinstance(per, dict) and all(isinstance(v, dict) for v in per.values()):
            for s, v in per.items():
                out[str(s)] = flatten(v)
        else:
            out[mo.label] = flatten(mo.summary)
    return out


def _values(rows: list[dict[str, Any]], *alternatives: tuple[str, ...]) -> tuple[str, list[float]] | None:
    if not rows:
        return None
    hit = pick(flatten(rows[0]), *alternatives)
    if hit is None:
        return None
    key = hit[0]
    vals = [flatten(r).get(key) for r in rows]
    return key, [v for v in vals if v is not None and not math.isnan(v)]


def empo_table2(run: RunData) -> Table | str:
    if not run.responses:
        return "no response metrics in this run (stage eval_responses/ missing)"
    groups, sums = response_groups(run), response_summaries(run)
    t = Table("empo_table2", "Model-based empathy metrics and semantic similarity (mean ± SD over examples)",
              ["Model", "DIFF-EPITOME ↓", "BERTScore F1 ↑"],
              caption="EmPO Table 2 layout. DIFF-EPITOME needs EPITOME classifiers (weights never released): "
                      "shown only when the run has it.")
    for src in sorted(set(groups) | set(sums)):
        cells = []
        for alts in ((("epitome",),), (("bertscore", "f1"), ("bertscore", "f"), ("bertscore",))):
            got = _values(groups.get(src, []), *alts)
            if got and got[1]:
                cells.append(mean_sd(got[1]))
            else:
                hit = pick(sums.get(src, {}), *alts)
                cells.append(fmt_num(hit[1]) if hit else "–")
        t.add(src, *cells)
    return t


def empo_table3(run: RunData) -> Table | str:
    if not run.general:
        return "no general language-understanding results (stage general/ with lm-eval output missing)"
    rows = []
    keys: list[str] = []
    for label, obj in run.general:
        f = {k: v for k, v in flatten(obj.get("results", obj)).items() if "acc" in k.lower() and "stderr" not in k.lower()}
        rows.append((label, f))
        keys += [k for k in f if k not in keys]
    keys = keys[:8]
    t = Table("empo_table3", "Language understanding (accuracy)", ["Model", *keys], caption="EmPO Table 3 layout (lm-eval accuracies).")
    for label, f in rows:
        t.add(label, *[fmt_num(f.get(k), 3) for k in keys])
    return t


def empo_table4(run: RunData) -> Table | str:
    sums = response_summaries(run)
    keys: list[str] = []
    for f in sums.values():
        keys += [k for k in f if "tries" in k.lower() and k not in keys]
    if not keys:
        return "no response-tries diversity results (eval_responses/ missing or without tries)"
    t = Table("empo_table4", "Diversity metrics based on response tries", ["Model", *[k.split("tries.", 1)[-1] for k in keys]],
              caption="EmPO Table 4 layout (Lee et al. 2024 response tries, deterministic token-aligned folding).")
    for src, f in sorted(sums.items()):
        t.add(src, *[fmt_num(f.get(k), 3) for k in keys])
    return t


EMPO5_MARKERS = ((0.00001, "*"), (0.001, "†"), (0.01, "‡"))


def _reference(sources: list[str]) -> str | None:
    for s in sources:
        if any(n in s.lower() for n in REFERENCE_NAMES):
            return s
    return None


def empo_table5(run: RunData, seed: int = 0) -> Table | str:
    from kyokan.stats.resampling import permutation_test

    groups = response_groups(run)
    if not groups:
        return "no per-example response metrics (eval_responses/per_example.jsonl missing)"
    cols = [("Specificity NIDF ↑", (("nidf",),)),
            ("I ↓", (("intensity", "abs"), ("intensity", "dist"), ("intensity",))),
            ("V ↓", (("valence", "abs"), ("valence", "dist"), ("valence",))),
            ("A ↓", (("arousal", "abs"), ("arousal", "dist"), ("arousal",)))]
    ref = _reference(sorted(groups))
    t = Table("empo_table5", "Specificity (NIDF) and word choice (intensity, valence, arousal)",
              ["Model", *[c for c, _ in cols]],
              caption="EmPO Table 5 layout: NIDF mean ± SD; IVA = mean distance between context and response scores.")
    for src in sorted(groups, key=lambda s: (s != ref, s)):
        cells = []
        for ci, (_, alts) in enumerate(cols):
            got = _values(groups[src], *alts)
            if not got or not got[1]:
                cells.append("–")
                continue
            if ci == 0:
                cells.append(mean_sd(got[1]))
                continue
            cell = f"{np.mean(got[1]):.2f}"
            if ref and src != ref:
                rv = _values(groups[ref], *alts)
                if rv and len(rv[1]) > 1 and len(got[1]) > 1:
                    p = permutation_test(got[1], rv[1], alternative="less", n_resamples=9999, seed=seed).pvalue
                    cell += next((m for thr, m in EMPO5_MARKERS if p < thr), "")
            cells.append(cell)
        t.add(src, *cells)
    if ref:
        t.notes.append(f"Marks: one-sided permutation test (difference of means, 9,999 resamples, seed {seed}) that the "
                       f"model's IVA distance is lower than {ref}'s: * p < 0.00001, † p < 0.001, ‡ p < 0.01 (uncorrected; "
                       "with 9,999 resamples the smallest attainable p is 1e-4, so * needs an exact test).")
    else:
        t.notes.append("No reference source (named human/gold/reference) in this run: no significance marks.")
    t.notes.append("IVA lexicons: NRC Emotion Intensity / NRC-VAD (research-only, non-commercial) or the lexicons named in provenance.")
    return t


def empo_table7(run: RunData) -> Table | str:
    from kyokan.stats.tables import pairwise_compare

    hs = human_scores(run)
    if len(hs) < 2:
        return "needs human ratings of at least two sources (stage human/ missing or single-source)"
    scales = [s["name"] for s in (run.human_summary or {}).get("scales", []) if s.get("kind") != "binary"]
    metrics = scales or sorted({m for s in hs.values() for v in s.values() for m in v})
    labels = {s["name"]: s.get("en", s["name"]) for s in (run.human_summary or {}).get("scales", [])}
    t, _, results = pairwise_compare(hs, metrics, test="welch", alternative="greater", correction="bonferroni", labels=labels)
    t.data = results
    return t


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s)


#: (section title, builder) in report order; a builder returns Table, list[Table] or a reason string
def format_adherence(run: RunData) -> Table | str:
    """Share of generated rows that kept the requested format, per system (EmplifAI scores the
    others lowest; the metrics leave them out)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in run.dialogues:
        gen = (r.get("meta") or {}).get("generation")
        if not isinstance(gen, dict):
            continue
        src = str(gen.get("model") or "unknown")
        counts[src][1] += 1
        if gen.get("format_ok"):
            counts[src][0] += 1
        else:
            reasons[src][str(gen.get("reason") or "format violation")[:80]] += 1
    if not counts:
        return "no generated dialogues with generation metadata (stage generate/ missing)"
    t = Table("format_adherence", "Format adherence of generated output",
              ["System", "rows", "format kept", "share"],
              caption="Rows that broke the requested format keep their raw text and are marked format_ok = false.")
    for src in sorted(counts):
        ok, n = counts[src]
        t.add(src, n, ok, fmt_num(ok / n) if n else "–")
        t.data.append({"source": src, "rows": n, "format_ok": ok})
        if reasons[src]:
            top = sorted(reasons[src].items(), key=lambda kv: -kv[1])[:2]
            t.notes.append(f"{src}: " + "; ".join(f"{v}× {k}" for k, v in top))
    return t


BUILDERS: list[tuple[str, Callable[[RunData], Table | list[Table] | str]]] = [
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
