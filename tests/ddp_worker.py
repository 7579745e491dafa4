"""Run under ``torchrun --nproc_per_node 2`` by tests/test_train_ddp.py (CPU, gloo): SFT, then DPO
uninterrupted, then DPO stopped after step 2 and run again (resume) — each rank records what it
saw (the pair epochs, the sampler's order) and every file it opened for writing (an audit hook)
into ``REPORT/rank-N.json``, outside the run folders."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

RANK = int(os.environ.get("RANK", "0"))
WRITES: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and len(args) >= 2 and isinstance(args[0], (str, bytes, os.PathLike)):
        mode = args[1] if isinstance(args[1], str) else ""
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        if any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            WRITES.append(os.fsdecode(args[0]))
    elif event in ("os.rename", "os.replace") and args:
        WRITES.append(os.fsdecode(args[1]))
    elif event == "os.mkdir" and args:
        WRITES.append(os.fsdecode(args[0]) + "/")


def main() -> None:
    import torch

    from kyokan.train import build_dpo_trainer, run_dpo, run_sft
    from kyokan.train.dpo import EPOCH_COLUMN
    from train_util import settings

    torch.set_num_threads(1)
    tmp, report = Path(sys.argv[1]), Path(sys.argv[2])
    data = tmp / "dialogues.jsonl"
    common = {"batch_size": 2, "per_device_batch_size": 1, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
    sys.addaudithook(_audit)
    seen: dict[str, Any] = {"rank": RANK, "world": int(os.environ["WORLD_SIZE"])}

    sft = run_sft(settings("sft", tmp / "sft-2p", data=str(data), max_steps=4, seed=3, **common))
    seen["sft_steps"] = sft["global_step"]

    # two dialogues per label: the rejected reply is a real draw, different in each epoch
    dkw = {"data": str(tmp / "pairs-data" / "dialogues.jsonl"), "sft": str(tmp / "sft-2p"), "model": None, "epochs": 2, "save_steps": 1, "seed": 5, **common}
    s = settings("dpo", tmp / "dpo-2p", **dkw)
    # what this rank trains from: each pair epoch's rows, and the order the sampler deals them in
    trainer, _ = build_dpo_trainer(s, __import__("kyokan.train", fromlist=["RunDir"]).RunDir(tmp / "probe"))
    ds = trainer.train_dataset
    blocks: dict[int, list[str]] = {}
    for k, p, c, r in zip(ds[EPOCH_COLUMN], ds["prompt"], ds["chosen"], ds["rejected"], strict=True):
        blocks.setdefault(int(k), []).append(json.dumps([p, c, r], sort_keys=True))
    seen["pair_epochs"] = {str(k): hashlib.sha256("\n".join(v).encode()).hexdigest() for k, v in blocks.items()}
    seen["rejected_epoch0"] = [json.loads(x)[2] for x in blocks[0]][:2]
    seen["sampler_order"] = list(trainer._get_train_sampler())
    del trainer

    full = run_dpo(s)
    seen["dpo_steps"] = full["global_step"]

    from transformers import TrainerCallback

    class StopAfter(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 2:
                raise KeyboardInterrupt("stopped after step 2")

    cut = settings("dpo", tmp / "dpo-2p-cut", **dkw)
    try:
        run_dpo(cut, callbacks=[StopAfter()])
        seen["stopped"] = False
    except KeyboardInterrupt:
        seen["stopped"] = True
    resumed = run_dpo(cut)
    seen["resumed_from"] = resumed.get("resumed_from")
    seen["writes"] = sorted(set(WRITES))
    report.mkdir(parents=True, exist_ok=True)
    (report / f"rank-{RANK}.json").write_text(json.dumps(seen), encoding="utf-8")


if __name__ == "__main__":
    main()
