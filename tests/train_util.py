"""Helpers for the training tests: the tiny random Llama, short dialogues, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kyokan.data import Dialogue, Turn, write_dialogues
from kyokan.testing import tiny_causal_lm
from kyokan.train import TrainSettings, resolve

#: mutually opposite ed32 labels
LABELS = ("afraid", "angry", "sad", "joyful")
SPEAKER = {"afraid": "I heard a noise downstairs.", "angry": "They cancelled my shift again.",
           "sad": "My old dog passed away.", "joyful": "I got the job!"}
LISTENER = {"afraid": ["Stay calm, call someone.", "That sounds scary."],
            "angry": ["That is so unfair.", "I would be mad too."],
            "sad": ["I am so sorry.", "He had a good life."],
            "joyful": ["Congratulations!", "You earned it."]}


def tiny_model() -> str:
    return str(tiny_causal_lm())


def short_dialogues(tmp: Path, per_label: int = 2) -> Path:
    """Short two-exchange English dialogues (keeps the tiny model's 49k-vocab head cheap)."""
    ds = []
    for lab in LABELS:
        for k in range(per_label):
            ds.append(Dialogue(id=f"{lab}-{k}", situation_id=f"s-{lab}", emotion=lab, lang="en", situation="…",
                               turns=[Turn("speaker", SPEAKER[lab]), Turn("listener", LISTENER[lab][0]),
                                      Turn("speaker", f"Yes, {k}."), Turn("listener", LISTENER[lab][1])]))
    p = tmp / "dialogues.jsonl"
    write_dialogues(p, ds)
    return p


def settings(stage: str, out: Path, **kw: Any) -> TrainSettings:
    base: dict[str, Any] = {"preset": "cpu-tiny", "model": tiny_model(), "output": str(out), "max_length": 96,
                            "taxonomy": "ed32", "system": "Listen.", "save_steps": 2, "logging_steps": 1,
                            "batch_size": 2, "per_device_batch_size": 2}
    base.update(kw)
    return resolve(stage, overrides=base)
