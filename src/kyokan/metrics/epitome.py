"""EPITOME (Sharma et al. 2020) empathy classifiers and DIFF-EPITOME (Lee et al. 2022).

The EPITOME weights were never released, so kyokan trains them: one sequence-pair classifier per
communication mechanism — ER (emotional reactions), EX (explorations), IP (interpretations) — on
the user's copy of the EPITOME Reddit CSVs (columns ``seeker_post``, ``response_post``, ``level``
with levels 0/1/2). Input is the pair (seeker post, response); output the level with the highest
probability. This is a cross-encoder fine-tune of any Hugging Face encoder (``roberta-base`` as in
the original, or a local path); the original bi-encoder with rationale extraction is not
reproduced, so levels are comparable only between runs of the same trained classifiers.

DIFF-EPITOME for mechanism m: (level_m(context, generated) − level_m(context, reference))²,
averaged over examples; the per-example mean of the three is reported as ``mean``.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kyokan.errors import InputError, KyokanError, Problem
from kyokan.io import write_json
from kyokan.provenance import sha256_file

MECHANISMS = ("er", "ex", "ip")
#: the file names of the EPITOME release (https://github.com/behavioral-data/Empathy-Mental-Health)
EPITOME_FILES = {"er": "emotional-reactions-reddit.csv", "ex": "explorations-reddit.csv",
                 "ip": "interpretations-reddit.csv"}
LEVELS = 3


@dataclass
class EpitomeRow:
    seeker: str
    response: str
    level: int


def read_epitome_csv(path: str | Path) -> list[EpitomeRow]:
    p = Path(path)
    if not p.exists():
        raise KyokanError(f"{p}: EPITOME file not found")
    rows: list[EpitomeRow] = []
    problems: list[Problem] = []
    with open(p, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        need = {"seeker_post", "response_post", "level"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise InputError.at(str(p), 1, None, f"EPITOME CSV needs columns {sorted(need)}; found {reader.fieldnames}")
        for i, r in enumerate(reader, 2):
            try:
                lvl = int(str(r["level"]).strip())
            except ValueError:
                problems.append(Problem(str(p), i, "level", f"not an integer: {r['level']!r}"))
                continue
            if lvl not in (0, 1, 2):
                problems.append(Problem(str(p), i, "level", f"must be 0, 1 or 2, got {lvl}"))
                continue
            rows.append(EpitomeRow(str(r["seeker_post"] or "").strip(), str(r["response_post"] or "").strip(), lvl))
    if problems:
        raise InputError(problems[:50], len(problems))
    if not rows:
        raise KyokanError(f"{p}: no rows")
    return rows


@dataclass
class TrainConfig:
    base_model: str
    epochs: int = 3
    learning_rate: float = 2e-5
    batch_size: int = 16
    max_length: int = 256
    seed: int = 0
    dev_fraction: float = 0.1
    weight_decay: float = 0.01


def _seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _encode(tok: Any, seekers: Sequence[str], responses: Sequence[str], max_length: int) -> Any:
    return tok(list(seekers), list(responses), truncation=True, max_length=max_length, padding=True,
               return_tensors="pt")


def _load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def _macro_f1(gold: Sequence[int], pred: Sequence[int]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(list(gold), list(pred), average="macro", labels=list(range(LEVELS)), zero_division=0))


def train_classifier(rows: list[EpitomeRow], cfg: TrainConfig, out: str | Path, *, name: str = "",
                     source: str = "") -> dict[str, Any]:
    """Fine-tune one 3-level classifier; writes the model, tokenizer and ``kyokan_epitome.json``."""
    import torch
    from transformers import AutoModelForSequenceClassification

    _seed_all(cfg.seed)
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    n_dev = round(len(rows) * cfg.dev_fraction) if len(rows) >= 10 else 0
    dev = [rows[i] for i in order[:n_dev]]
    train = [rows[i] for i in order[n_dev:]]
    tok = _load_tokenizer(cfg.base_model)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(cfg.base_model, num_labels=LEVELS)
    except OSError as e:
        raise KyokanError(f"cannot load base model {cfg.base_model!r}: {e}") from e
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    t0 = time.time()
    model.train()
    for _epoch in range(cfg.epochs):
        perm = torch.randperm(len(train), generator=gen).tolist()
        for s in range(0, len(perm), cfg.batch_size):
            batch = [train[i] for i in perm[s:s + cfg.batch_size]]
            enc = _encode(tok, [r.seeker for r in batch], [r.response for r in batch], cfg.max_length)
            labels = torch.tensor([r.level for r in batch])
            out_ = model(**enc, labels=labels)
            out_.loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(float(out_.loss.item()))
    model.eval()
    outp = Path(out)
    outp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(outp))
    tok.save_pretrained(str(outp))
    dev_metrics: dict[str, Any] = {"n": len(dev)}
    if dev:
        clf = EpitomeClassifier(outp)
        pred = clf.predict([r.seeker for r in dev], [r.response for r in dev])
        gold = [r.level for r in dev]
        dev_metrics.update({"accuracy": float(np.mean(np.array(pred) == np.array(gold))),
                            "macro_f1": _macro_f1(gold, pred)})
    info = {"mechanism": name, "config": asdict(cfg), "source": source,
            "source_sha256": sha256_file(source) if source and Path(source).exists() else None,
            "rows": len(rows), "train_rows": len(train), "dev": dev_metrics,
            "label_counts": {str(k): sum(1 for r in rows if r.level == k) for k in range(LEVELS)},
            "final_loss": losses[-1] if losses else None, "steps": len(losses), "seconds": round(time.time() - t0, 2)}
    write_json(outp / "kyokan_epitome.json", info)
    return info


def train_epitome(data_dir: str | Path, cfg: TrainConfig, out: str | Path,
                  mechanisms: Sequence[str] = MECHANISMS) -> dict[str, Any]:
    d = Path(data_dir)
    summary: dict[str, Any] = {}
    for m in mechanisms:
        if m not in EPITOME_FILES:
            raise KyokanError(f"unknown EPITOME mechanism {m!r} (er, ex, ip)")
        src = d / EPITOME_FILES[m]
        rows = read_epitome_csv(src)
        summary[m] = train_classifier(rows, cfg, Path(out) / m, name=m, source=str(src))
    write_json(Path(out) / "kyokan_epitome.json", {"mechanisms": summary})
    return summary


class EpitomeClassifier:
    def __init__(self, path: str | Path, batch_size: int = 32, max_length: int | None = None) -> None:
        from transformers import AutoModelForSequenceClassification

        self.path = Path(path)
        if not (self.path / "config.json").exists():
            raise KyokanError(f"{self.path}: not a trained EPITOME classifier (no config.json)")
        self.tok = _load_tokenizer(str(self.path))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(self.path)).eval()
        meta = self.path / "kyokan_epitome.json"
        self.info: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8")) if meta.exists() else {}
        self.max_length = max_length or int(self.info.get("config", {}).get("max_length", 256))
        self.batch_size = batch_size

    def predict(self, seekers: Sequence[str], responses: Sequence[str]) -> list[int]:
        import torch

        out: list[int] = []
        with torch.no_grad():
            for s in range(0, len(seekers), self.batch_size):
                enc = _encode(self.tok, seekers[s:s + self.batch_size], responses[s:s + self.batch_size], self.max_length)
                logits = self.model(**enc).logits
                out.extend(int(x) for x in logits.argmax(dim=-1).tolist())
        return out


class EpitomeClassifiers:
    """The three classifiers from ``DIR/er``, ``DIR/ex``, ``DIR/ip``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        missing = [m for m in MECHANISMS if not (self.path / m / "config.json").exists()]
        if missing:
            raise KyokanError(f"{self.path}: missing EPITOME classifier(s) {missing} (train with kyokan eval epitome-train)")
        self.clf = {m: EpitomeClassifier(self.path / m) for m in MECHANISMS}

    def levels(self, seekers: Sequence[str], responses: Sequence[str]) -> dict[str, list[int]]:
        return {m: c.predict(seekers, responses) for m, c in self.clf.items()}

    def info(self) -> dict[str, Any]:
        return {"path": str(self.path), **{m: {k: c.info.get(k) for k in ("config", "source_sha256", "dev", "rows")}
                                           for m, c in self.clf.items()}}


def diff_epitome(gen_levels: Mapping[str, Sequence[int]], ref_levels: Mapping[str, Sequence[int]]) -> list[dict[str, float | int | None]]:
    n = len(next(iter(gen_levels.values())))
    rows: list[dict[str, float | int | None]] = []
    for i in range(n):
        row: dict[str, float | int | None] = {}
        diffs = []
        for m in MECHANISMS:
            g, r = int(gen_levels[m][i]), int(ref_levels[m][i])
            d = float((g - r) ** 2)
            row[f"{m}_generated"] = g
            row[f"{m}_reference"] = r
            row[f"diff_{m}"] = d
            diffs.append(d)
        row["mean"] = sum(diffs) / len(diffs)
        rows.append(row)
    return rows
