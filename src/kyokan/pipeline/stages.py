"""The stage implementations: thin adapters from the run config to each area's Python API.

Every stage reads the files of the stages before it (never their internals) and writes into its
own folder, so any stage can be rerun alone or replaced by a user's tool that writes the same files.
"""

from __future__ import annotations

import gc
import json
from importlib import resources
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.pipeline.runner import StageContext, stage


def demo_config_path() -> Path:
    return Path(str(resources.files("kyokan.pipeline") / "examples" / "demo.toml"))


def resolve_data_path(path: str, config_path: Path) -> Path:
    """``data.path`` of a run config: ``bundled:NAME`` or a path relative to the config file."""
    from kyokan.paths import in_config_dir, is_bundled, resolve_data_spec

    if is_bundled(path):
        return resolve_data_spec(path, what=f"{config_path}: data.path")
    p = Path(in_config_dir(path, config_path))
    if not p.exists():
        raise KyokanError(f"{config_path}: data.path: {p} does not exist")
    return p


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _dataset(ctx: StageContext, part: str = "train") -> Path:
    """The dialogues a stage trains on: the split's part when the run splits, else all data."""
    if ctx.cfg.split is not None and (ctx.stage_dir("split") / f"{part}.jsonl").exists():
        return ctx.stage_dir("split") / f"{part}.jsonl"
    return ctx.stage_dir("validate") / "data.jsonl"


def _eval_set(ctx: StageContext) -> Path:
    p = ctx.stage_dir("sample") / "eval_pairs.jsonl"
    if p.exists():
        return p
    return _dataset(ctx, "test")


@stage("validate", title="validate data", seeded=False)
def validate_stage(ctx: StageContext) -> dict[str, Any]:
    from kyokan.data import compute_stats, read_records, write_dialogues
    from kyokan.io import write_json
    from kyokan.taxonomy import get_taxonomy

    d = ctx.cfg.data
    src = resolve_data_path(d.path, ctx.config_path)
    recs = list(read_records(src, fmt=d.format, taxonomy=d.taxonomy))  # InputError lists every problem
    n = write_dialogues(ctx.dir / "data.jsonl", recs)
    st = compute_stats(recs, n_labels=len(get_taxonomy(d.taxonomy)))
    write_json(ctx.dir / "stats.json", st)
    ctx.provenance.update({"data": str(src), "taxonomy": d.taxonomy})
    return {"dialogues": n, "situations": st["situations"], "data": str(src)}


@stage("split", needs=("validate",), title="split by situation")
def split_stage(ctx: StageContext) -> dict[str, Any]:
    from collections import Counter

    from kyokan.data import write_dialogues
    from kyokan.data.sampling import SPLITS, assign_splits
    from kyokan.io import write_json

    sec = ctx.cfg.split
    assert sec is not None
    seed = sec.seed if sec.seed is not None else ctx.seed
    recs = _jsonl_rows(ctx.stage_dir("validate") / "data.jsonl")
    sit: dict[str, Counter[str]] = {}
    for r in recs:
        sit.setdefault(r["situation_id"], Counter())[r["emotion"] or ""] += 1
    total = sum(sec.ratios)
    assign = assign_splits(sit, (sec.ratios[0] / total, sec.ratios[1] / total, sec.ratios[2] / total), seed)
    counts = {s: write_dialogues(ctx.dir / f"{s}.jsonl", [r for r in recs if assign[r["situation_id"]] == s])
              for s in SPLITS}
    write_json(ctx.dir / "split_report.json", {"seed": seed, "ratios": list(sec.ratios), "dialogues": counts})
    return {"seed": seed, **counts}


@stage("sample", needs=("validate", "split"), title="sample evaluation pairs")
def sample_stage(ctx: StageContext) -> dict[str, Any]:
    from kyokan.data import sample_pairs, write_dialogues
    from kyokan.io import write_json

    sec = ctx.cfg.sample
    assert sec is not None
    seed = sec.seed if sec.seed is not None else ctx.seed
    src = _dataset(ctx, sec.source) if sec.source != "all" else ctx.stage_dir("validate") / "data.jsonl"
    rows, rep = sample_pairs(_jsonl_rows(src), sec.n, seed, stratify=sec.stratify, n_name="sample.n =")
    write_dialogues(ctx.dir / "eval_pairs.jsonl", rows)
    rep["source"] = str(src)
    write_json(ctx.dir / "sample_report.json", rep)
    return {"pairs": rep["n"], "rows": rep["rows"], "seed": seed}


@stage("prefs", needs=("validate", "split"), title="preference pairs")
def prefs_stage(ctx: StageContext) -> dict[str, Any]:
    import time

    from kyokan.data import load_dialogues
    from kyokan.prefs import build_pairs, write_pairs
    from kyokan.taxonomy import get_taxonomy

    sec = ctx.cfg.prefs
    assert sec is not None
    seed = sec.seed if sec.seed is not None else ctx.seed
    src = _dataset(ctx, "train")
    t0 = time.time()
    opts: dict[str, Any] = {}
    if sec.strategy == "model":
        if not sec.model:
            raise KyokanError("prefs.model is needed for strategy = \"model\"")
        from kyokan.models import load_model

        opts["model"] = load_model(sec.model)
    pairs = build_pairs(load_dialogues(src, taxonomy=ctx.cfg.data.taxonomy), get_taxonomy(ctx.cfg.data.taxonomy),
                        epochs=sec.epochs, seed=seed, strategy=sec.strategy, system=sec.system_prompt, **opts)
    rep = write_pairs(ctx.dir, pairs, epochs=sec.epochs, data={"path": str(src)}, started=t0)
    return {"epochs": sec.epochs, "pairs_per_epoch": [e["pairs"] for e in rep.get("per_epoch", [])],
            "unpaired": len(rep.get("unpaired", []))}


def _train(ctx: StageContext, kind: str) -> dict[str, Any]:
    from kyokan.pipeline.runner import tracker_run_name
    from kyokan.train import resolve, run_dpo, run_sft

    sec = ctx.cfg.sft if kind == "sft" else ctx.cfg.dpo
    assert sec is not None
    # the trainer's run folder (its own config, provenance, checkpoints) sits inside the stage folder;
    # a tracker run is named after the stage's fingerprint (one per distinct computation)
    over: dict[str, Any] = {"model": sec.model, "output": str(ctx.dir / "run"), "seed": ctx.seed,
                            "taxonomy": ctx.cfg.data.taxonomy, "report_to": ctx.cfg.run.report_to,
                            "run_name": tracker_run_name(kind, ctx.fingerprint), **sec.options}
    if sec.preset:
        over["preset"] = sec.preset
    if kind == "sft":
        over["data"] = str(_dataset(ctx, "train"))
    else:
        if ctx.has("sft"):
            over["sft"] = str(ctx.stage_dir("sft") / "run")
        if ctx.has("prefs"):
            over["pairs"] = str(ctx.stage_dir("prefs"))
            if ctx.cfg.prefs is not None and "epochs" not in sec.options:
                over["epochs"] = ctx.cfg.prefs.epochs  # one DPO epoch per drawn set of pairs
        else:
            over["data"] = str(_dataset(ctx, "train"))
    s = resolve(kind, overrides=over)

    # the run folder's own resume: a killed run continues from its last checkpoint; a finished
    # one with other settings (the stage's fingerprint changed) starts again
    def go(overwrite: bool) -> dict[str, Any]:
        return run_sft(s, overwrite=overwrite) if kind == "sft" else run_dpo(s, overwrite=overwrite)

    try:
        res = go(False)
    except KyokanError as e:
        if "different settings" not in str(e) and "other settings" not in str(e):
            raise
        res = go(True)
    ctx.provenance.update({"preset": sec.preset, "report_to": s.report_to,
                           "tracker_run": s.run_name if s.report_to not in ("none", [], ["none"]) else None})
    ctx.used_model("trained", sec.model, label=kind, adapter=str(ctx.dir / "run" / "adapter"))
    gc.collect()
    keep = ("steps", "train_loss", "seconds", "adapter", "global_step", "train_runtime")
    return {k: res[k] for k in keep if k in res} | {"run": str(ctx.dir / "run")}


@stage("sft", needs=("validate", "split"), title="SFT (TRL + PEFT)")
def sft_stage(ctx: StageContext) -> dict[str, Any]:
    return _train(ctx, "sft")


@stage("dpo", needs=("sft", "prefs"), title="DPO (TRL + PEFT)")
def dpo_stage(ctx: StageContext) -> dict[str, Any]:
    return _train(ctx, "dpo")


def system_models(ctx: StageContext) -> list[tuple[str, str, str | None]]:
    """(label, model spec, adapter folder) for each generate system."""
    from kyokan.models import PACKAGED

    sec = ctx.cfg.generate
    assert sec is not None
    base = sec.model or (ctx.cfg.sft.model if ctx.cfg.sft else None) or (ctx.cfg.dpo.model if ctx.cfg.dpo else None)
    out: list[tuple[str, str, str | None]] = []
    # a local folder is shown by its name; specs and hub ids as typed
    name = Path(base).name if base and ("/" in base and Path(base).exists()) else base
    for s in sec.systems:
        if s in ("base", "sft", "dpo"):
            if base is None:
                raise KyokanError(f"generate.systems: {s!r} needs generate.model or a training stage")
            spec = base if ":" in base or base in PACKAGED else f"hf:{base}"
            if s == "base":
                out.append((f"{name}", spec, None))
            else:
                adapter = ctx.stage_dir(s) / "run" / "adapter"
                if not adapter.exists():
                    raise KyokanError(f"generate.systems: {s!r} needs the {s} stage's adapter ({adapter})")
                out.append((f"{name}+sft" if s == "sft" else f"{name}+sft+dpo", spec, str(adapter)))
        else:
            out.append((s, s, None))
    return out


def _local_kw(spec: str, batch_size: int | None) -> dict[str, Any]:
    """Backend options that only local (transformers) models take."""
    if batch_size is None or spec.startswith(("openai:", "vllm:")):
        return {}
    return {"batch_size": batch_size}


def _folder(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in label)


@stage("generate", needs=("sample", "sft", "dpo"), title="generate")
def generate_stage(ctx: StageContext) -> dict[str, Any]:
    from kyokan.generate import GenerateConfig, generate_file
    from kyokan.models import load_model

    sec = ctx.cfg.generate
    assert sec is not None
    src = _eval_set(ctx)
    records = _jsonl_rows(src)
    cfg = GenerateConfig(task=sec.task, lang=ctx.cfg.run.lang, max_new_tokens=sec.max_new_tokens,
                         temperature=sec.temperature, seed=ctx.seed, taxonomy=ctx.cfg.data.taxonomy, **sec.options)
    results = {}
    systems = system_models(ctx)
    for i, (label, spec, adapter) in enumerate(systems):
        ctx.progress(i, len(systems), label)
        model = load_model(spec, base_url=sec.base_url, adapter=adapter, concurrency=sec.concurrency,
                           **_local_kw(spec, sec.batch_size))
        model.spec = label  # rows and summaries are keyed by the system, details stay in model_info
        out = ctx.dir / _folder(label) / "generated.jsonl"
        summ = generate_file(records, model, out, cfg)
        results[label] = {"rows": summ.total, "format_ok": getattr(summ, "format_ok", None), "output": str(out)}
        ctx.used_model("system", spec, label=label, adapter=adapter, info=_info(model))
        del model
        gc.collect()
    ctx.progress(len(systems), len(systems), "")
    return {"systems": results, "eval_set": str(src)}


def _info(model: Any) -> dict[str, Any]:
    try:
        return {k: v for k, v in model.info().items() if isinstance(v, (str, int, float, bool, type(None)))}
    except Exception:  # provenance is best effort; the rows carry model_info too
        return {}


def generated_files(ctx: StageContext) -> list[tuple[str, Path]]:
    from kyokan.records import StageState, read_record

    root = ctx.stage_dir("generate")
    if not (root / "stage.json").exists():
        return []
    systems = read_record(root / "stage.json", StageState).outputs.get("systems", {})
    return [(label, Path(v["output"])) for label, v in systems.items()]


@stage("eval_emotions", needs=("validate", "sample"), title="taxonomy validity")
def eval_emotions_stage(ctx: StageContext) -> dict[str, Any]:
    from kyokan.metrics.emotions import predict_emotions
    from kyokan.metrics.labels import read_predictions, score_labels
    from kyokan.taxonomy import get_taxonomy

    sec = ctx.cfg.eval_emotions
    assert sec is not None
    tax = get_taxonomy(ctx.cfg.data.taxonomy)
    src = _eval_set(ctx)

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total, "predicting")

    from kyokan.models import load_model

    model = load_model(sec.model, base_url=sec.base_url, concurrency=sec.concurrency,
                       **_local_kw(sec.model, sec.batch_size))
    info = predict_emotions(src, sec.model, ctx.dir, taxonomy=tax.name, base_url=sec.base_url,
                            concurrency=sec.concurrency, seed=ctx.seed, limit=sec.limit, progress=progress,
                            model=model)
    rows = read_predictions(ctx.dir / "predictions.jsonl", tax)
    extra = {"prediction_run": info, "stand_in": sec.stand_in}
    s = score_labels(rows, ctx.dir, taxonomy=tax, seed=ctx.seed, source=sec.model, extra=extra)
    ctx.used_model("predictor", sec.model, stand_in=sec.stand_in)
    if s.bertscore is not None and s.bertscore.provenance.get("model"):
        prov = s.bertscore.provenance
        ctx.used_model("encoder", str(prov["model"]), label="label BERTScore",
                       info={k: v for k, v in prov.items() if isinstance(v, str | int | float | bool)})
    return {"accuracy": s.accuracy.mean, "macro_f1": s.macro_f1, "failed": info.get("failed"),
            "summary": str(ctx.dir / "summary.json")}


@stage("eval_responses", needs=("generate",), title="response metrics")
def eval_responses_stage(ctx: StageContext) -> dict[str, Any]:
    from kyokan.metrics.responses import evaluate_responses

    sec = ctx.cfg.eval_responses
    assert sec is not None
    ref = _eval_set(ctx)
    out: dict[str, Any] = {}
    files = generated_files(ctx)
    for i, (label, gen) in enumerate(files):
        ctx.progress(i, len(files), label)
        s = evaluate_responses(gen, ctx.dir / _folder(label), reference=ref, metrics=sec.metrics,
                               lang=ctx.cfg.run.lang, seed=ctx.seed, options=sec.options, source=label,
                               taxonomy=ctx.cfg.data.taxonomy)
        out[label] = {"summary": str(ctx.dir / _folder(label) / "summary.json"), "examples": s.inputs.examples,
                      "truncated": s.inputs.truncated}
        for lic in s.licenses:
            if lic not in ctx.lexicons:
                ctx.lexicons.append(lic)
        bs = s.metrics.get("bertscore")
        if bs is not None and bs.provenance.get("model") and not any(m.role == "encoder" for m in ctx.models):
            ctx.used_model("encoder", str(bs.provenance["model"]), label="BERTScore",
                           info={k: v for k, v in bs.provenance.items() if isinstance(v, str | int | float | bool)})
    return {"systems": out}


@stage("judge", needs=("generate",), title="LLM judge")
def judge_stage(ctx: StageContext) -> dict[str, Any]:
    from kyokan.judge import JudgeConfig, get_rubric, judge_file
    from kyokan.models import load_model

    sec = ctx.cfg.judge
    assert sec is not None
    rows = []
    for label, gen in generated_files(ctx):
        for r in _jsonl_rows(gen)[: sec.limit]:
            # one judged file for every system: ids are made unique by the system's label
            r["meta"] = {**(r.get("meta") or {}), "dialogue_id": r["id"], "system": label}
            r["id"] = f"{label}::{r['id']}"
            rows.append(r)
    inp = ctx.dir / "input.jsonl"
    from kyokan.io import write_jsonl

    write_jsonl(inp, rows)
    model = load_model(sec.model, base_url=sec.base_url, concurrency=sec.concurrency,
                       **_local_kw(sec.model, sec.batch_size))
    cfg = JudgeConfig(lang=sec.lang or ctx.cfg.run.lang, all_in_one=sec.all_in_one, seed=ctx.seed, concurrency=sec.concurrency,
                      **sec.options)
    total = len(rows)

    done = 0

    def on_row(_row: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        ctx.progress(done, total, "judging")

    res = judge_file(inp, ctx.dir / "judged.jsonl", [model], get_rubric(sec.rubric) if sec.rubric else get_rubric(),
                     cfg, cache_path=ctx.dir / "cache.sqlite", on_row=on_row,
                     provenance={"stand_in": sec.stand_in, "judge": sec.model})
    ctx.used_model("judge", sec.model, stand_in=sec.stand_in)
    summary = getattr(res, "summary", {}) or {}
    return {"rows": total, "statuses": summary.get("statuses") or summary.get("status_counts")}


@stage("human", needs=("generate",), title="human-rating packets")
def human_stage(ctx: StageContext) -> dict[str, Any]:
    from kyokan.human.design import build_emplifai, build_empo
    from kyokan.human.packets import items_from_file, write_design
    from kyokan.provenance import provenance

    sec = ctx.cfg.human
    assert sec is not None
    items = []
    by_source: dict[str, list[Any]] = {}
    from kyokan.io import write_jsonl

    skipped: dict[str, int] = {}
    for label, gen in generated_files(ctx):
        # raters see well-formed dialogues only; rows that broke the format already score lowest
        rows = _jsonl_rows(gen)
        ok = [r for r in rows if (r.get("meta") or {}).get("generation", {}).get("format_ok", True) and r.get("turns")]
        skipped[label] = len(rows) - len(ok)
        if not ok:
            continue
        src = ctx.dir / "inputs" / f"{_folder(label)}.jsonl"
        write_jsonl(src, ok)
        got = items_from_file(src, label)
        items += got
        by_source[label] = got
    if not items:
        return {"style": sec.style, "items": 0, "skipped_format_violations": skipped,
                "note": "no well-formed generated dialogue to rate"}
    if sec.style == "emplifai":
        design = build_emplifai(items, seed=ctx.seed, **sec.options)
    else:
        design = build_empo(by_source, seed=ctx.seed, **sec.options)
    prov = provenance("kyokan run: human", {"style": sec.style, **design.params}, ctx.seed)
    # the key unblinds the sources: it stays beside, not inside, the folder handed to raters
    files = write_design(design, ctx.dir / "packets", ctx.dir / "survey.key.json", prov)
    return {"style": sec.style, **{k: v for k, v in design.summary().items() if isinstance(v, (int, str))},
            "files": files, "skipped_format_violations": skipped}


@stage("report", needs=("generate", "eval_emotions", "eval_responses", "judge", "human"), title="report", seeded=False)
def report_stage(ctx: StageContext) -> dict[str, Any]:
    from kyokan.report.html import build_report
    from kyokan.report.tables import ReportOptions

    sec = ctx.cfg.report
    title = sec.title if sec is not None and sec.title else f"kyokan run {ctx.cfg.run.name}"
    opts = ReportOptions(reference=sec.reference if sec else None, order=sec.order if sec else None, seed=ctx.seed)
    info = build_report(ctx.run_dir, ctx.dir / "report.html", tables_dir=ctx.dir / "tables", title=title,
                        options=opts)
    if info["errors"]:
        raise KyokanError("report: " + "; ".join(f"{k}: {v}" for k, v in info["errors"].items()))
    return {"report": str(ctx.dir / "report.html"), **{k: v for k, v in info.items() if isinstance(v, (int, str, list))}}
