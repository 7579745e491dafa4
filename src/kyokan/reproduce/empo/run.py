"""``kyokan reproduce empo DIR -o OUT``: EmPO's Tables 2, 4, 5, 7 and §4.3 rebuilt from its release.

From an EmPO checkout (or a folder with the same layout):

- Table 2: DIFF-EPITOME from the released ``pred_*``/``gt_*`` levels (mean over examples of the
  squared level differences, ``diff_epitome`` = the mean of the three) and BERTScore F1 of each
  reply against the gold reply (kyokan's offline encoder unless ``--bertscore-model``);
- Table 4: response tries, Table 5: NIDF (mean, SD) and the IVA distances |context − reply|,
  both with the metric profile (``lee2024`` by default: the rules of Lee et al.'s code EmPO ran),
  plus Welch's t-test and a permutation test of every system against the human replies;
- Table 7: per item (ED_index × source) the mean of its annotators, then for each published pair a
  one-sided paired t-test (A rated higher than B) with Cohen's d on the pooled SD, Bonferroni over
  the 40 tests noted;
- §4.3: mean reply length in characters.

Writes ``OUT/comparison.csv`` (table, system, metric, paper, kyokan), ``OUT/report.html`` (every
cell with its status and, for the known mismatches, the explanation found in the files),
``OUT/summary.json`` (the same as records, the tests, inputs with SHA-256, provenance) and the
per-system metric outputs under ``OUT/systems/<system>/`` (``kyokan eval responses`` layout).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.io import write_json, write_text
from kyokan.provenance import sha256_file
from kyokan.reproduce.empo.published import DIMENSIONS, SYSTEMS, TABLE7_PAIRS, Published, published

KIND = "kyokan.reproduce.empo"
VERSION = 1
COLUMNS = ("table", "system", "metric", "paper", "kyokan")
#: the size of the full release: ED test replies per system, rated items per source
RELEASE_ROWS = 2540
RELEASE_ITEMS = 135
#: what the paper's BERTScore used: HF ``evaluate``'s bertscore with lang="en"
PAPER_BERTSCORE = "roberta-large, layer 17 (bert_score's default for lang='en', via HF evaluate)"
#: EmPO's Table 7 notebook in a checkout (its saved output is evidence for the explanations)
NOTEBOOK = "notebooks/he_score_effsize.ipynb"
#: the checkpoints EmPO's own notebooks (compare_specificity.ipynb, compare_vad.ipynb) computed Tables 4–5 from
TABLE45_SOURCES = {"sft": ("preds_dlrxxx_zephyr-7b-sft-full122", "preds_dlr1e6m1000_zephyr-7b-sft-full124_epi.txt"),
                   "dpo": ("preds_dlr1e6_zephyr-7b-sft-full122_d211", "preds_dlr1e6m1000_zephyr-7b-sft-full124_d270_epi.txt")}


@dataclass
class EmpoOptions:
    profile: str = "lee2024"
    #: None: kyokan's offline encoder; "none": skip BERTScore; else a hub id / path
    bertscore_model: str | None = None
    bertscore_layer: int | None = None
    nrc_vad: str | None = None
    intensity: str | None = None
    nidf_counts: str | None = None
    he_data: str | None = None
    #: EmPO's permutation tests: scipy's ttest_ind(permutations=10000, random_state=34)
    seed: int = 34
    resamples: int = 10000
    #: worker processes for the response tries (default: up to 2, one per core; 1 = in process)
    workers: int | None = None
    overrides: dict[str, str] = field(default_factory=dict)


@dataclass
class Cell:
    table: str
    system: str
    metric: str
    paper: Published
    kyokan: float | None
    status: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "system": self.system, "metric": self.metric, "paper": self.paper.value,
                "paper_printed": self.paper.printed + self.paper.marker, "kyokan": self.kyokan,
                "delta": None if self.kyokan is None else self.kyokan - self.paper.value,
                "digits": self.paper.digits, "tolerance": self.paper.tolerance, "status": self.status,
                "note": self.note}


def _generation_rows(preds: list[Any], system: str) -> list[dict[str, Any]]:
    """The GEN rows `kyokan eval responses` scores: the system's replies with the gold reply and
    the released levels; for ``human`` the gold replies themselves."""
    if system != "human":
        return [p.generation_row(system) for p in preds]
    return [{"id": f"ed-test-{p.index}", "response": p.gold, "context": p.context, "emotion": p.emotion,
             "lang": "en", "source": "human"} for p in preds]


def _read_rows(path: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def reproduce_empo(root: str | Path, out_dir: str | Path, opts: EmpoOptions | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    from kyokan.data.empo import (
        SYSTEM_FILES,
        find_release_files,
        read_effsize_notebook,
        read_predictions,
    )
    from kyokan.io import write_jsonl
    from kyokan.metrics.profiles import get_profile
    from kyokan.metrics.responses import evaluate_responses

    opts = opts or EmpoOptions()
    say = progress or (lambda _m: None)
    t0 = time.time()
    prof = get_profile(opts.profile)
    files = find_release_files(root)
    for k, v in (("nrc_vad", opts.nrc_vad), ("intensity", opts.intensity), ("nidf_counts", opts.nidf_counts),
                 ("he_data", opts.he_data)):
        if v:
            if not Path(v).exists():
                raise KyokanError(f"{v}: file not found (--{k.replace('_', '-')})")
            files[k] = Path(v)
    missing = [s for s in SYSTEM_FILES if files.get(s) is None]
    if missing:
        raise KyokanError(f"{root}: no EmPO prediction files for {missing} (expected predictions/"
                          + ", predictions/".join(SYSTEM_FILES[s] for s in missing) + ")")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    preds = {s: read_predictions(files[s]) for s in SYSTEM_FILES}  # type: ignore[arg-type]
    gold = [p.gold for p in preds["baseline"]]
    gold_same = {s: [p.gold for p in v] == gold for s, v in preds.items()}
    skipped: dict[str, str] = {}
    options: dict[str, Any] = {"nidf_counts": str(files["nidf_counts"]) if files.get("nidf_counts") else None,
                               "nrc_vad": str(files["nrc_vad"]) if files.get("nrc_vad") else None,
                               "intensity": str(files["intensity"]) if files.get("intensity") else None}
    metrics = ["iva", "length"]
    if options["nidf_counts"]:
        metrics.insert(0, "nidf")
    else:
        skipped["nidf"] = "no NIDF count table (data/empathy_datasets/empathetic_dialogues/ed_counts.pkl or --nidf-counts)"
    if not options["nrc_vad"]:
        skipped["iva_valence_arousal"] = ("no NRC-VAD lexicon (data/misc/NRC-VAD-Lexicon.txt or --nrc-vad): valence and "
                                          "arousal not computed (Warriner norms are not the paper's lexicon)")
    if not options["intensity"]:
        skipped["iva_intensity_file"] = ("no data/misc/intensity.txt: intensity from the packaged NRC Emotion Intensity "
                                         "lexicon (emotion-nrc-affect-lex), last-emotion rule")
    summaries: dict[str, dict[str, Any]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    # response tries are the costly part and independent per system: fold them in worker processes
    # (one per core) while the other metrics run here
    texts = {s: [p.gold if s == "human" else p.reply for p in preds["baseline" if s == "human" else s]] for s in SYSTEMS}
    pool, futures = _tries_pool(texts, prof.name, opts.workers)
    for system in SYSTEMS:
        say(f"metrics: {system}")
        human = system == "human"
        names = metrics + ([] if human else ["diff_epitome"])
        d = out / "systems" / system
        gen = d / "generations.jsonl"
        write_jsonl(gen, _generation_rows(preds["baseline" if human else system], system))
        summaries[system] = evaluate_responses(gen, d, metrics=names, seed=0, resamples=200, options=dict(options),
                                               profile=prof.name, source=system).model_dump(mode="json")
        rows[system] = [r.get("values") or {} for r in _read_rows(d / "per_example.jsonl")]
    say("response tries")
    for system in SYSTEMS:
        st = futures[system].result() if pool else get_profile(prof.name).tries(texts[system], "en")
        summaries[system]["metrics"]["tries"] = {**st, "profile": prof.name, "rule": prof.tries_rule}
        write_json(out / "systems" / system / "tries.json", summaries[system]["metrics"]["tries"])
    if pool:
        pool.shutdown()
    bert = _bertscore(preds, opts, say, skipped)
    values = {s: _values(summaries[s], rows[s], bert.get(s), bool(options["nrc_vad"])) for s in SYSTEMS}
    tests5 = _table5_tests(rows, opts)
    he_path = files.get("he_data")
    t7: dict[str, dict[str, Any]] = {}
    tests7: list[dict[str, Any]] = []
    if he_path:
        say("human ratings")
        t7, tests7 = _table7(Path(he_path))
    else:
        skipped["table7"] = "no data/he_data.csv (or --he-data)"
    n_rows = {s: len(v) for s, v in preds.items()}
    n_items = min((t["n_items"] for t in tests7), default=0)
    nb_path = files.get("effsize_notebook")
    cells = _cells(values, t7, bert_model=bert.get("_model"),
                   notebook=read_effsize_notebook(nb_path) if nb_path and t7 else None)
    subset = [f"{n} of the release's {RELEASE_ROWS:,} replies in {Path(str(files[s])).name}"
              for s, n in n_rows.items() if n != RELEASE_ROWS]
    if tests7 and n_items != RELEASE_ITEMS:
        subset.append(f"{n_items} of the release's {RELEASE_ITEMS} rated items per source")
    if subset:
        for c in cells:
            if c.status == "mismatch":
                c.note = "subset of the release (see the banner): not expected to match. " + c.note
    write_text(out / "comparison.csv", comparison_csv(cells))
    inputs = {k: {"path": str(v), "sha256": sha256_file(v) if Path(v).is_file() else None}
              for k, v in files.items() if v is not None}
    summary = {"kind": KIND, "version": VERSION, "profile": prof.describe(), "inputs": inputs,
               "rows": n_rows, "rated_items_per_source": n_items, "subset": subset,
               "gold_identical_across_files": gold_same, "skipped": skipped, "cells": [c.to_dict() for c in cells],
               "table5_tests": tests5, "table7_tests": tests7, "bertscore": bert.get("_info"),
               "counts": {"match": sum(c.status == "match" for c in cells),
                          "mismatch": sum(c.status == "mismatch" for c in cells),
                          "not_computed": sum(c.status == "not computed" for c in cells)},
               "license_note": "Uses NRC lexicons (research and non-commercial use only) and EmpatheticDialogues "
                               "text (CC BY-NC 4.0) from the user's EmPO checkout; nothing is copied into kyokan.",
               "provenance": _provenance(opts), "seconds": round(time.time() - t0, 1)}
    write_json(out / "summary.json", summary)
    from kyokan.reproduce.empo.report import write_report

    write_report(out / "report.html", summary)
    return summary


def _tries_worker(texts: list[str], profile: str) -> dict[str, Any]:
    from kyokan.metrics.profiles import get_profile

    return get_profile(profile).tries(texts, "en")


def _tries_pool(texts: dict[str, list[str]], profile: str, workers: int | None) -> tuple[Any, dict[str, Any]]:
    import os
    from concurrent.futures import ProcessPoolExecutor

    n = workers if workers is not None else min(2, os.cpu_count() or 1)
    if n <= 1:
        return None, {}
    pool = ProcessPoolExecutor(max_workers=n)
    # longest replies first, so the slowest system does not start last
    order = sorted(texts, key=lambda s: -sum(len(t) for t in texts[s]))
    return pool, {s: pool.submit(_tries_worker, texts[s], profile) for s in order}


def _bertscore(preds: dict[str, list[Any]], opts: EmpoOptions, say: Callable[[str], None],
               skipped: dict[str, str]) -> dict[str, Any]:
    if opts.bertscore_model == "none":
        skipped["fbert"] = "BERTScore skipped (--bertscore-model none)"
        return {}
    from kyokan.metrics.bertscore import BertScorer

    say("BERTScore")
    scorer = BertScorer(model=opts.bertscore_model, num_layers=opts.bertscore_layer, lang="en")
    systems = [s for s in ("baseline", "lenctl", "sft", "dpo") if s in preds]
    cands = [p.reply for s in systems for p in preds[s]]
    refs = [p.gold for s in systems for p in preds[s]]
    res = scorer.score(cands, refs)
    out: dict[str, Any] = {"_model": scorer.model_name, "_info": scorer.info()}
    i = 0
    for s in systems:
        n = len(preds[s])
        f1 = [float(x) for x in res.f1[i:i + n]]
        out[s] = sum(f1) / n
        i += n
    return out


def _values(summary: dict[str, Any], rows: list[dict[str, Any]], fbert: float | None,
            have_vad: bool) -> dict[str, float | None]:
    m = summary["metrics"]

    def mean(metric: str, fld: str) -> float | None:
        v = ((m.get(metric) or {}).get("means") or {}).get(fld)
        return None if v is None else v["mean"]

    def sd(metric: str, fld: str) -> float | None:
        v = ((m.get(metric) or {}).get("means") or {}).get(fld)
        return None if v is None else v["std"]

    tries = m.get("tries") or {}
    vals: dict[str, float | None] = {
        "nidf_mean": mean("nidf", "nidf"), "nidf_sd": sd("nidf", "nidf"),
        "iva_intensity": mean("iva", "intensity_abs"),
        "iva_valence": mean("iva", "valence_abs") if have_vad else None,
        "iva_arousal": mean("iva", "arousal_abs") if have_vad else None,
        "length_chars": mean("length", "chars"),
        "diff_er": mean("diff_epitome", "diff_er"), "diff_ex": mean("diff_epitome", "diff_ex"),
        "diff_ip": mean("diff_epitome", "diff_ip"), "fbert": fbert}
    de = [v for v in (vals["diff_er"], vals["diff_ex"], vals["diff_ip"]) if v is not None]
    vals["diff_epitome"] = sum(de) / 3 if len(de) == 3 else None
    for k in ("templates", "span_nodes", "total_nodes", "root_children", "compression_ratio", "unique_start_words"):
        vals[k] = tries.get(k)
    return vals


def _table5_tests(rows: dict[str, list[dict[str, Any]]], opts: EmpoOptions) -> list[dict[str, Any]]:
    """Welch's t-test and a permutation test (difference of means) of each system vs the human
    replies, two-sided as EmPO's notebooks ran them (scipy ttest_ind, equal_var=False)."""
    from kyokan.stats import permutation_test, welch_t

    fields = {"nidf_mean": ("nidf", "nidf"), "iva_intensity": ("iva", "intensity_abs"),
              "iva_valence": ("iva", "valence_abs"), "iva_arousal": ("iva", "arousal_abs")}
    out: list[dict[str, Any]] = []
    for metric, (mname, fld) in fields.items():
        def col(system: str, mname: str = mname, fld: str = fld) -> list[float]:
            return [r[mname][fld] for r in rows[system] if isinstance(r.get(mname), dict) and r[mname].get(fld) is not None]

        h = col("human")
        if len(h) < 2:
            continue
        for s in ("baseline", "lenctl", "sft", "dpo"):
            x = col(s)
            if len(x) < 2:
                continue
            # two-sided, as EmPO's notebooks ran scipy's ttest_ind
            w = welch_t(x, h, alternative="two-sided")
            pm = permutation_test(x, h, alternative="two-sided", n_resamples=opts.resamples, seed=opts.seed)
            out.append({"metric": metric, "system": s, "versus": "human", "n": len(x), "n_human": len(h),
                        "mean": w.mean_a, "mean_human": w.mean_b, "welch_t": w.statistic, "welch_df": w.df,
                        "welch_p": w.pvalue, "permutation_p": pm.pvalue, "n_resamples": opts.resamples,
                        "seed": opts.seed, "alternative": "two-sided"})
    return out


def _table7(he_path: Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    from kyokan.data.empo import per_item_means, read_he_data
    from kyokan.stats import bonferroni, paired_t

    # every row counts, repeats included: EmPO's groupby(model, ED_index).mean() over the file
    means = per_item_means(read_he_data(he_path, allow_repeats=True))
    tests: list[dict[str, Any]] = []
    vals: dict[str, dict[str, Any]] = {}
    for a, b in TABLE7_PAIRS:
        if a not in means or b not in means:
            continue
        common = sorted(set(means[a]) & set(means[b]))
        key = f"{a}>{b}"
        vals[key] = {}
        for dim, scale in DIMENSIONS.items():
            x = [means[a][i][scale] for i in common]
            y = [means[b][i][scale] for i in common]
            if len(common) < 2:
                continue
            # one-sided in the direction the paper states (A > B), fixed before looking at the data
            t = paired_t(x, y, alternative="greater")
            vals[key][dim] = t.d_pooled  # Cohen's d with the pooled SD, as EmPO's notebook computed it
            tests.append({"pair": key, "a": a, "b": b, "dim": dim, "scale": scale, "n_items": len(common),
                          "mean_a": t.mean_a, "mean_b": t.mean_b, "t": t.statistic, "df": t.df, "p": t.pvalue,
                          "alternative": "greater", "d_pooled": t.d_pooled, "d_z": t.d_z})
    ps = [r["p"] for r in tests if r["p"] is not None]
    adj = iter(bonferroni(ps) if ps else [])
    for r in tests:
        r["p_bonferroni"] = next(adj) if r["p"] is not None else None
        r["family"] = len(ps)
    return vals, tests


def _cells(values: dict[str, dict[str, float | None]], t7: dict[str, dict[str, Any]],
           bert_model: str | None, notebook: dict[tuple[str, str, str], tuple[float, float]] | None = None
           ) -> list[Cell]:
    """Every published cell with kyokan's value, its status and, for a mismatch, what the files
    show about it. ``notebook``: the effect sizes EmPO's he_score_effsize.ipynb printed."""
    notebook = notebook or {}
    pub = published()
    cells: list[Cell] = []
    for p in pub:
        k: float | None
        if p.table == "7":
            k = (t7.get(p.system) or {}).get(p.metric)
        else:
            k = values.get(p.system, {}).get(p.metric)
        k = None if k is None or (isinstance(k, float) and math.isnan(k)) else float(k)
        c = Cell(p.table, p.system, p.metric, p, k)
        if k is None:
            c.status = "not computed"
        else:
            c.status = "match" if abs(k - p.value) <= p.tolerance else "mismatch"
        cells.append(c)
    # Table 2 (DIFF-EPITOME from the file's own levels) tells which generations a file holds
    t2_ok = {s: all(c.status == "match" for c in cells if c.table == "2" and c.system == s and c.metric.startswith("diff"))
             for s in ("baseline", "lenctl", "sft", "dpo")}
    for c in cells:
        if c.status != "mismatch":
            continue
        if c.table == "2" and c.metric == "fbert":
            c.note = (f"different encoder: the paper's BERTScore is {PAPER_BERTSCORE}; kyokan used {bert_model} "
                      "(pass --bertscore-model roberta-large --bertscore-layer 17 with a local copy to compare)")
        elif c.table == "2" and c.system == "dpo":
            c.note = ("the paper's DPO row is the mean of 4 training runs (SD .01); the release holds the "
                      "generations of one run")
        elif c.table in ("4", "5") and c.system in TABLE45_SOURCES:
            paper_src, released = TABLE45_SOURCES[c.system]
            evid = ("its Table 2 DIFF-EPITOME cells match from the file's own levels" if t2_ok.get(c.system)
                    else "Table 2 from its levels")
            c.note = (f"the released {released} holds the Table 2 generations ({evid}); Tables 4-5 were computed "
                      f"from another checkpoint's replies (EmPO's notebooks read {paper_src}), which is not released")
        elif c.table == "7" and c.kyokan is not None:
            a, b = c.system.split(">")
            same, rev = notebook.get((a, b, c.metric)), notebook.get((b, a, c.metric))
            if abs(-c.kyokan - c.paper.value) <= c.paper.tolerance:
                c.note = (f"sign flipped: the released ratings give {b} > {a} with d = {-c.kyokan:.2f}, which the paper "
                          f"prints as {a} > {b} = {c.paper.printed}")
                if rev is not None:
                    c.note += f"; EmPO's own notebook ({NOTEBOOK}) prints {b} > {a}, d = {rev[0]:.2f}"
            elif same is not None and abs(c.kyokan - same[0]) <= 0.005 + 1e-9:
                c.note = (f"EmPO's own notebook ({NOTEBOOK}) prints d = {same[0]:.2f} for {a} > {b} from these ratings, "
                          f"as kyokan computes ({c.kyokan:.4f}); the paper prints {c.paper.printed}")
            else:
                c.note = ("does not follow from the released ratings (per-item means over annotators, paired by "
                          f"ED_index): kyokan's d is {c.kyokan:.4f} ({c.kyokan - c.paper.value:+.4f} from the printed "
                          "value) and the reverse pair does not give it either")
        elif c.table == "2" and c.metric in ("diff_er", "diff_ex", "diff_ip"):
            c.note = _table2_note(c, cells)
        elif c.table == "4" and c.metric == "compression_ratio" and c.kyokan is not None and all(
                x.status == "match" for x in cells if x.table == "4" and x.system == c.system and x is not c):
            c.note = (f"every count of this row matches (the same tries), yet the ratio is {c.kyokan:.6f}, "
                      f"{c.kyokan - c.paper.value:+.6f} from the printed {c.paper.printed}; the released files do "
                      "not explain the gap")
        else:
            c.note = "unexplained"
    # a Table 7 row whose every cell is flipped: say so on the row
    for key in {c.system for c in cells if c.table == "7"}:
        row = [c for c in cells if c.table == "7" and c.system == key]
        if row and all(c.note.startswith("sign flipped") or (c.status == "match" and c.kyokan is not None
                       and abs(c.kyokan + c.paper.value) <= c.paper.tolerance) for c in row) \
                and any(c.status == "mismatch" for c in row):
            for c in row:
                if c.status == "match":
                    c.note = "matches only because the value is 0 up to rounding; the row's sign is flipped"
        # most of a row flipped: its other cells are read with the sign flipped too
        flipped = [c for c in row if c.note.startswith("sign flipped")]
        if 2 * len(flipped) >= len(row):
            for c in row:
                if c.status == "mismatch" and not c.note.startswith("sign flipped") and c.kyokan is not None:
                    c.note = (f"the row's sign is flipped ({', '.join(f.metric for f in flipped)}); flipped, this "
                              f"cell is {-c.kyokan:.4f} against the printed {c.paper.printed}, which it does not "
                              "round to")
    return cells


def _table2_note(c: Cell, cells: list[Cell]) -> str:
    """A DIFF-ER/EX/IP mismatch, checked against the paper's own row: DIFF-EPITOME is the mean of
    the three, and each value is a mean over 4 runs whose SD the paper prints as ±.00."""
    row = {x.metric: x for x in cells if x.table == "2" and x.system == c.system}
    parts = [row.get(m) for m in ("diff_er", "diff_ex", "diff_ip")]
    epi = row.get("diff_epitome")
    if epi is not None and epi.status == "match" and all(p is not None for p in parts):
        paper_mean = sum(p.paper.value for p in parts if p is not None) / 3
        if abs(paper_mean - epi.paper.value) > epi.paper.tolerance:
            return (f"the paper's row does not add up: its DIFF-ER/EX/IP average to {paper_mean:.4f}, not its printed "
                    f"DIFF-EPITOME {epi.paper.printed}; the released levels give {c.kyokan:.4f} here and the "
                    f"printed DIFF-EPITOME ({epi.kyokan:.4f})")
    if c.kyokan is not None and abs(c.kyokan - c.paper.value) < 0.005:
        return (f"{c.kyokan - c.paper.value:+.4f} from the printed value: Table 2 prints means over 4 runs with "
                "SD ±.00 (< 0.005); the release holds one run")
    return "unexplained"


def comparison_csv(cells: list[Cell]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for c in cells:
        w.writerow([c.table, c.system, c.metric, c.paper.printed, "" if c.kyokan is None else _num(c.kyokan)])
    return buf.getvalue()


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6f}"


def _provenance(opts: EmpoOptions) -> dict[str, Any]:
    from kyokan.metrics.responses import provenance

    p = provenance()
    p["command"] = "kyokan reproduce empo"
    p["options"] = {k: v for k, v in opts.__dict__.items() if k != "overrides"}
    return p
