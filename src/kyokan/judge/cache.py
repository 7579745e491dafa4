"""A persistent answer cache (SQLite) keyed by judge model, generation parameters, rubric version
and the exact messages. Each answer is committed as soon as it arrives, so a killed run loses no
paid call, and a rerun (or a resumed run) asks the model only what it has not answered yet.

Only answers are stored; transport failures are not (they are retried on the next run). The base
URL is not in the key: the same model behind another address answers from the same cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    judge_model TEXT NOT NULL,
    rubric_version TEXT NOT NULL,
    text TEXT NOT NULL,
    response_model TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    extra TEXT
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""
CACHE_SCHEMA_VERSION = "1"


def cache_key(judge_model: str, params: dict[str, Any], rubric_version: str, messages: list[dict[str, str]]) -> str:
    blob = json.dumps({"model": judge_model, "params": params, "rubric": rubric_version, "messages": messages},
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    text: str
    response_model: str | None
    prompt_tokens: int
    completion_tokens: int
    #: what else the answer came with: ``logprobs`` ([token, logprob, [[alt, logprob], ...]] per
    #: token), ``constrained``, ``finish_reason`` (JSON in the ``extra`` column)
    extra: dict[str, Any] | None = None


class AnswerCache:
    """``get``/``put`` by key; ``hits`` and ``misses`` count this process's lookups."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            cols = {r[1] for r in self._db.execute("PRAGMA table_info(answers)")}
            if "extra" not in cols:  # a cache written before log-probs were kept: add the column
                self._db.execute("ALTER TABLE answers ADD COLUMN extra TEXT")
            row = self._db.execute("SELECT v FROM meta WHERE k='schema'").fetchone()
            if row is None:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (CACHE_SCHEMA_VERSION,))
            elif row[0] != CACHE_SCHEMA_VERSION:
                raise KyokanError(f"{self.path}: judge cache schema {row[0]}, this kyokan reads {CACHE_SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            raise KyokanError(f"{self.path}: not a kyokan judge cache ({e})") from None
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> CachedAnswer | None:
        row = self._db.execute(
            "SELECT text, response_model, prompt_tokens, completion_tokens, extra FROM answers WHERE key=?", (key,)
        ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        extra = json.loads(row[4]) if row[4] else None
        return CachedAnswer(row[0], row[1], int(row[2]), int(row[3]), extra)

    def put(self, key: str, judge_model: str, rubric_version: str, answer: CachedAnswer) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO answers (key, judge_model, rubric_version, text, response_model, prompt_tokens, "
            "completion_tokens, created, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, judge_model, rubric_version, answer.text, answer.response_model, answer.prompt_tokens,
             answer.completion_tokens, time.time(),
             json.dumps(answer.extra, ensure_ascii=False) if answer.extra else None),
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
