"""DPO on TRL's DPOTrainer, from the SFT model, with a fresh draw of rejected replies every epoch.

Per-epoch redraw: TRL has no hook to swap the dataset between epochs. kyokan gives the trainer
ONE dataset holding every epoch's pairs in order (epoch 0's block, then epoch 1's, ...) and ONE
trainer "epoch" over it, with a sampler that shuffles inside each block only (its order depends
only on (seed, block), like the draws). So pair-epoch k trains on epoch k's freshly drawn pairs,
and the optimizer, the LR schedule (one cosine over all epochs), the step counter and the
checkpoints are the plain Trainer's: a killed run resumes with ``resume_from_checkpoint`` and
skips exactly the batches already seen. (The alternative — one ``train()`` call per epoch on a
swapped dataset — restarts the scheduler unless one patches Trainer internals, and makes
resuming mid-epoch depend on which call was running.) A batch may straddle two blocks when the
number of pairs is not a multiple of the batch size; that is the only mixing.

Reference model: the SFT adapter is merged into the base weights, a new LoRA adapter is
trained on top, and TRL computes the reference log-probabilities with that adapter disabled
(``ref_model=None`` + ``peft_config``) — the SFT model, with no second copy in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kyokan.errors import KyokanError
from kyokan.io import write_json
from kyokan.train.config import TrainSettings
from kyokan.train.run import (
    RunDir,
    data_checksums,
    provenance,
    trainer_kwargs,
    use_step_log,
    weights_dtype,
)

EPOCH_COLUMN = "kyokan_pair_epoch"


class EpochBlockSampler:
    """Indices of block 0 (shuffled by (seed, 0)), then block 1 (shuffled by (seed, 1)), ..."""

    def __init__(self, block_of_row: list[int], seed: int) -> None:
        arr = np.asarray(block_of_row, dtype=np.int64)
        self.blocks = [(int(b), np.nonzero(arr == b)[0]) for b in sorted(set(arr.tolist()))]
        self.seed = seed
        self.n = len(arr)

    def __iter__(self) -> Iterator[int]:
        for b, idx in self.blocks:
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed & 0xFFFFFFFF, 1_000_003, b])))
            yield from idx[rng.permutation(len(idx))].tolist()

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:  # one trainer epoch; the order is fixed by (seed, block)
        pass


def _trainer_class() -> Any:
    from trl import DPOTrainer

    class KyokanDPOTrainer(DPOTrainer):  # type: ignore[misc]
        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            ds: Any = self.train_dataset
            if ds is not None and EPOCH_COLUMN in ds.column_names:
                return EpochBlockSampler(list(ds[EPOCH_COLUMN]), self.args.seed)
            return super()._get_train_sampler(train_dataset)

    return KyokanDPOTrainer


def load_pairs(s: TrainSettings, run: RunDir) -> tuple[list[list[dict[str, Any]]], Path]:
    """Every epoch's pairs: from --pairs DIR, or built from --data into RUN/pairs (deterministic
    in the data and the seed). Under several processes every rank builds the same pairs itself —
    no rank waits for or reads another's files, so each epoch's draw is identical on every rank by
    construction — and only rank 0 writes them."""
    from kyokan.train.config import data_path
    from kyokan.train.run import is_main_process

    if s.pairs:
        pdir = data_path(s.pairs, "--pairs")
        return _read_pair_epochs(s, pdir), pdir
    from kyokan.data import load_dialogues
    from kyokan.prefs import build_pairs, write_pairs
    from kyokan.taxonomy import get_taxonomy

    assert s.data is not None
    src = data_path(s.data)
    dialogues = load_dialogues(src, fmt=s.data_format, taxonomy=s.taxonomy)
    tax = get_taxonomy(s.taxonomy or ("ed32" if (s.data_format == "ed") else "goemotions28"))
    ps = build_pairs(dialogues, tax, epochs=s.epochs, seed=s.seed, strategy=s.strategy, system=s.system)
    pdir = run.path / "pairs"
    if is_main_process():
        write_pairs(pdir, ps, epochs=s.epochs, data={"path": s.data})
    epochs = [ps.rows(k) for k in range(s.epochs)]
    for k, rows in enumerate(epochs):
        if not rows:
            raise KyokanError(f"{s.data}: no pairs for DPO epoch {k}")
    return epochs, pdir


def _read_pair_epochs(s: TrainSettings, pdir: Path) -> list[list[dict[str, Any]]]:
    epochs = []
    for k in range(s.epochs):
        f = pdir / f"epoch-{k}.jsonl"
        if not f.is_file():
            raise KyokanError(f"{pdir}: no {f.name} for DPO epoch {k} (build the pairs with --epochs {s.epochs})")
        with open(f, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        if not rows:
            raise KyokanError(f"{f}: no pairs")
        epochs.append(rows)
    return epochs


def resolve_base(s: TrainSettings) -> tuple[Path, dict[str, Any], Path | None, str | None]:
    """(base model folder, its info, SFT adapter folder or None, chat template choice)."""
    from kyokan.train.modeling import resolve_model_path

    sft_adapter = None
    template = s.chat_template
    model_spec = s.model
    if s.sft:
        sdir = Path(s.sft)
        cfg_p = sdir / "config.json"
        if not (sdir / "result.json").is_file() or not cfg_p.is_file():
            raise KyokanError(f"{sdir}: not a finished `kyokan train sft` run (no result.json)")
        scfg = json.loads(cfg_p.read_text(encoding="utf-8"))
        if model_spec and model_spec != scfg.get("model"):
            raise KyokanError(f"--model {model_spec!r} differs from the SFT run's model {scfg.get('model')!r}")
        model_spec = scfg["model"]
        sft_adapter = sdir / "adapter"
    assert model_spec is not None
    path, info = resolve_model_path(model_spec)
    if sft_adapter is not None:
        info["sft_adapter"] = str(sft_adapter)
    return path, info, sft_adapter, template


def build_dpo_trainer(s: TrainSettings, run: RunDir, *, callbacks: list[Any] | None = None,
                      epochs: list[list[dict[str, Any]]] | None = None) -> tuple[Any, dict[str, Any]]:
    from datasets import Dataset
    from transformers import set_seed
    from trl import DPOConfig

    from kyokan.train.modeling import load_causal_lm, load_tokenizer, merge_adapter
    from kyokan.train.sft import lora_config

    path, info, sft_adapter, template = resolve_base(s)
    # the SFT run saved its tokenizer with the chat template it trained with
    tok, source = load_tokenizer(sft_adapter if sft_adapter is not None else path, template)
    info["chat_template"] = source
    set_seed(s.seed)  # the new adapter's random init, before TRL attaches it (see build_sft_trainer)
    model = load_causal_lm(path, weights_dtype(s))
    if sft_adapter is not None:
        model = merge_adapter(model, sft_adapter)
    if epochs is None:
        epochs, _ = load_pairs(s, run)
    rows = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"], EPOCH_COLUMN: k}
            for k, ep in enumerate(epochs) for r in ep]
    ds = Dataset.from_list(rows)
    kw = trainer_kwargs(s, run)
    # one trainer epoch over all pair-epoch blocks (see the module docstring)
    kw["num_train_epochs"] = 1
    args = DPOConfig(**kw, beta=s.beta)
    cls = _trainer_class()
    trainer = cls(model=model, ref_model=None, args=args, train_dataset=ds, processing_class=tok,
                  peft_config=lora_config(s), callbacks=callbacks)
    use_step_log(trainer, "dpo", run)
    kept = list(trainer.train_dataset[EPOCH_COLUMN])
    info["pairs_per_epoch"] = [len(ep) for ep in epochs]
    info["pairs_kept_per_epoch"] = [kept.count(k) for k in range(len(epochs))]
    if not kept:
        raise KyokanError(f"every prompt is longer than max_length={s.max_length} tokens: no pair left to train on")
    return trainer, info


def run_dpo(s: TrainSettings, *, callbacks: list[Any] | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train (or resume, or return a finished run); inputs are read before anything is written,
    only rank 0 writes (see :func:`kyokan.train.sft.run_sft`)."""
    from kyokan.train.run import is_main_process
    from kyokan.train.sft import finish

    run = RunDir(s.output or "")
    if not overwrite and run.check(s):
        res: dict[str, Any] = json.loads(run.result.read_text(encoding="utf-8"))
        res["already_complete"] = True
        return res
    if overwrite:
        run.clear()  # before the pairs are written into RUN/pairs
    epochs, pdir = load_pairs(s, run)
    trainer, info = build_dpo_trainer(s, run, callbacks=callbacks, epochs=epochs)
    run.prepare(s)
    if is_main_process():
        write_json(run.path / "trainer_args.json", json.loads(trainer.args.to_json_string()))
        write_json(run.path / "provenance.json",
                   provenance(s, info, data_checksums(s.data, pdir),
                              {"reference_model": "the SFT model (adapter disabled, ref_model=None)",
                               "pairs_dir": str(pdir)}))
    ckpt = None if overwrite else run.last_checkpoint()
    out = trainer.train(resume_from_checkpoint=ckpt)
    # which pair-epoch each optimizer step trained on
    kept = info["pairs_kept_per_epoch"]
    per_step = trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps * trainer.args.world_size
    bounds = np.cumsum(kept)

    def epoch_of_step(step: int) -> int:
        first_sample = max(0, (step - 1) * per_step)
        return int(np.searchsorted(bounds, first_sample, side="right"))

    result = finish(s, run, trainer, out, resumed_from=ckpt, epoch_of_step=epoch_of_step,
                    extra={"pairs_per_epoch": kept, "reference": "sft-adapter-disabled"}, write_result=False)
    if trainer.is_world_process_zero():
        _write_stacked_adapter(run, info, result)
    trainer.accelerator.wait_for_everyone()  # every rank returns once the run folder is complete
    return result


def _write_stacked_adapter(run: RunDir, info: dict[str, Any], result: dict[str, Any]) -> None:
    """With an SFT adapter: RUN/adapter becomes ONE adapter equal to SFT then DPO on the base model
    (loadable as ``hf:<base>`` + ``adapter=RUN/adapter``); the DPO-only adapter (relative to the
    SFT-merged model) is kept in RUN/adapter-dpo-only."""
    import shutil

    from kyokan.train.modeling import combine_lora

    sft = info.get("sft_adapter")
    if not sft:
        result["adapter_kind"] = "dpo (on the base model)"
        write_json(run.result, result)
        return
    dpo_only = run.path / "adapter-dpo-only"
    if dpo_only.exists():
        shutil.rmtree(dpo_only)
    run.adapter.rename(dpo_only)
    tmp = run.path / ".stacked.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    if combine_lora(Path(sft), dpo_only, tmp, str(info["path"])):
        for f in dpo_only.iterdir():  # tokenizer files
            if f.name not in ("adapter_model.safetensors", "adapter_config.json", "README.md"):
                shutil.copy2(f, tmp / f.name)
        tmp.rename(run.adapter)
        result["adapter_kind"] = "sft+dpo combined (exact rank concatenation)"
        result["adapter_dpo_only"] = str(dpo_only)
    else:
        result["adapter"] = str(dpo_only)
        result["adapter_kind"] = ("dpo only, on the SFT-merged model (adapters not combinable: "
                                  "use --merge for a standalone model)")
    write_json(run.result, result)
