"""Helpers for the metrics tests: small files written in the test's tmp folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
for _k, _v in OFFLINE_ENV.items():
    os.environ.setdefault(_k, _v)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def dialogue(id_: str, emotion: str, lang: str, turns: list[str], situation: str = "s") -> dict[str, Any]:
    roles = ["speaker", "listener"]
    return {"id": id_, "situation_id": f"s-{id_}", "emotion": emotion, "lang": lang, "situation": situation,
            "turns": [{"role": roles[i % 2], "text": t} for i, t in enumerate(turns)], "meta": {}}
