"""Rubrics: metrics with a definition and an anchored description for every point of the scale, in
Japanese and English, versioned by the hash of their content.

A rubric is a JSON file (see ``rubrics/emplifai7.json`` and docs/judge.md). Built-in rubrics live in
``kyokan/judge/rubrics/``; a user adds one by passing its path (``--rubric my.json``) or by putting
it in a folder named by ``KYOKAN_RUBRIC_PATH``. ``{language}`` in a name, definition or anchor is
replaced by the dialogue's language (日本語/Japanese, English, ...) when prompts are built.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from kyokan.errors import InputError, KyokanError, Problem

DEFAULT_RUBRIC = "emplifai7"
#: metric ids of the EmplifAI rubric, in the paper's order (Table 3)
EMPLIFAI_METRICS = (
    "content_comprehensibility",
    "general_empathy",
    "emotion_specific_empathy",
    "consistency",
    "fluency",
    "harmlessness",
    "sense_of_security",
)
LANGS = ("ja", "en")

_LANGUAGE_NAMES = {
    "ja": {"ja": "日本語", "en": "英語", "zh": "中国語", "ko": "韓国語"},
    "en": {"ja": "Japanese", "en": "English", "zh": "Chinese", "ko": "Korean"},
}


def language_name(code: str, in_lang: str) -> str:
    """How the rubric's ``{language}`` placeholder reads: the dialogue language named in the prompt
    language (``ja``, ``en`` → 日本語 / Japanese)."""
    base = code.split("-")[0].lower()
    return _LANGUAGE_NAMES.get(in_lang, _LANGUAGE_NAMES["en"]).get(base, code)


@dataclass(frozen=True)
class Metric:
    id: str
    name: dict[str, str]
    definition: dict[str, str]
    #: lang -> point (as int) -> description
    anchors: dict[str, dict[int, str]]

    def text(self, what: str, lang: str, language: str) -> str:
        src = {"name": self.name, "definition": self.definition}[what]
        return src[lang].replace("{language}", language)

    def anchor(self, point: int, lang: str, language: str) -> str:
        return self.anchors[lang][point].replace("{language}", language)


@dataclass(frozen=True)
class Rubric:
    name: str
    metrics: tuple[Metric, ...]
    scale_min: int
    scale_max: int
    #: content hash (sha256 of the canonical JSON of the file's content, first 12 hex digits)
    hash: str
    title: dict[str, str]
    source: str = ""
    path: str | None = None

    @property
    def version(self) -> str:
        """``name@hash``: goes into every result and every cache key."""
        return f"{self.name}@{self.hash}"

    @property
    def metric_ids(self) -> list[str]:
        return [m.id for m in self.metrics]

    @property
    def points(self) -> list[int]:
        return list(range(self.scale_min, self.scale_max + 1))

    def metric(self, metric_id: str) -> Metric:
        for m in self.metrics:
            if m.id == metric_id:
                return m
        raise KyokanError(f"rubric {self.name} has no metric {metric_id!r}; it has {', '.join(self.metric_ids)}")

    def select(self, metric_ids: list[str]) -> Rubric:
        """The same rubric restricted to some metrics (the hash stays the file's: the version names
        the full rubric, the row's ``scores`` keys name the subset)."""
        chosen = tuple(self.metric(m) for m in metric_ids)
        return Rubric(self.name, chosen, self.scale_min, self.scale_max, self.hash, self.title,
                      self.source, self.path)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "hash": self.hash,
                "metrics": self.metric_ids, "scale": [self.scale_min, self.scale_max],
                "path": self.path}


def content_hash(data: Any) -> str:
    canon = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:12]


def rubric_from_dict(data: Any, where: str = "<rubric>") -> Rubric:
    """Build and check a rubric; every problem is reported as ``where: field: message``."""
    probs: list[Problem] = []

    def bad(fld: str, msg: str) -> None:
        probs.append(Problem(where, None, fld, msg))

    if not isinstance(data, dict):
        raise InputError(Problem(where, None, None, "a rubric is a JSON object"))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        bad("name", "missing or not a string")
    scale = data.get("scale", {"min": 1, "max": 5})
    lo, hi = (scale.get("min"), scale.get("max")) if isinstance(scale, dict) else (None, None)
    if not (isinstance(lo, int) and isinstance(hi, int) and lo < hi):
        bad("scale", "must be {\"min\": int, \"max\": int} with min < max")
        lo, hi = 1, 5
    metrics_raw = data.get("metrics")
    metrics: list[Metric] = []
    if not isinstance(metrics_raw, list) or not metrics_raw:
        bad("metrics", "must be a non-empty array")
        metrics_raw = []
    seen: set[str] = set()
    for i, m in enumerate(metrics_raw):
        f = f"metrics[{i}]"
        if not isinstance(m, dict):
            bad(f, "must be an object")
            continue
        mid = m.get("id")
        if not isinstance(mid, str) or not mid.isidentifier():
            bad(f"{f}.id", "missing or not an identifier (letters, digits, _)")
            continue
        if mid in seen:
            bad(f"{f}.id", f"duplicate metric id {mid!r}")
        seen.add(mid)
        texts: dict[str, dict[str, str]] = {}
        for key in ("name", "definition"):
            v = m.get(key)
            if not isinstance(v, dict):
                bad(f"{f}.{key}", "must be an object {\"ja\": ..., \"en\": ...}")
                continue
            for lang in LANGS:
                if not isinstance(v.get(lang), str) or not v[lang].strip():
                    bad(f"{f}.{key}.{lang}", "missing or empty")
            texts[key] = {k: str(x) for k, x in v.items()}
        anchors_raw = m.get("anchors")
        anchors: dict[str, dict[int, str]] = {}
        if not isinstance(anchors_raw, dict):
            bad(f"{f}.anchors", "must be an object {\"ja\": {\"1\": ...}, \"en\": {...}}")
        else:
            for lang in LANGS:
                a = anchors_raw.get(lang)
                if not isinstance(a, dict):
                    bad(f"{f}.anchors.{lang}", "missing")
                    continue
                got: dict[int, str] = {}
                for p in range(lo, hi + 1):
                    t = a.get(str(p))
                    if not isinstance(t, str) or not t.strip():
                        bad(f"{f}.anchors.{lang}.{p}", "missing or empty (every point needs an anchor)")
                    else:
                        got[p] = t
                extra = sorted(set(a) - {str(p) for p in range(lo, hi + 1)})
                if extra:
                    bad(f"{f}.anchors.{lang}", f"points outside the scale: {', '.join(extra)}")
                anchors[lang] = got
        if "name" in texts and "definition" in texts:
            metrics.append(Metric(mid, texts["name"], texts["definition"], anchors))
    if probs:
        raise InputError(probs)
    t = data.get("title")
    title: dict[str, str] = {str(k): str(v) for k, v in t.items()} if isinstance(t, dict) else {"ja": str(name), "en": str(name)}
    return Rubric(str(name), tuple(metrics), int(lo), int(hi), content_hash(data), title,
                  str(data.get("source", "")), None)


def load_rubric_file(path: str | os.PathLike[str]) -> Rubric:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise InputError(Problem(str(p), None, None, "no such rubric file")) from None
    except json.JSONDecodeError as e:
        raise InputError(Problem(str(p), e.lineno, None, f"not valid JSON: {e.msg}")) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(Problem(str(p), None, None, f"cannot read: {e}")) from None
    r = rubric_from_dict(data, str(p))
    return Rubric(r.name, r.metrics, r.scale_min, r.scale_max, r.hash, r.title, r.source, str(p))


def _builtin_files() -> dict[str, Path]:
    root = resources.files("kyokan.judge") / "rubrics"
    return {Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(".json")}


def _user_files() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder in filter(None, os.environ.get("KYOKAN_RUBRIC_PATH", "").split(os.pathsep)):
        for p in sorted(Path(folder).glob("*.json")):
            out[p.stem] = p
    return out


def available_rubrics() -> list[str]:
    return sorted({*_builtin_files(), *_user_files()})


@cache
def _load_named(name: str) -> Rubric:
    files = {**_builtin_files(), **_user_files()}
    if name in files:
        return load_rubric_file(files[name])
    if name.endswith(".json") or os.sep in name or Path(name).exists():
        return load_rubric_file(name)
    raise KyokanError(f"unknown rubric {name!r}; available: {', '.join(available_rubrics())} "
                      "(or pass a path to a rubric JSON file)")


def get_rubric(name_or_path: str | os.PathLike[str] = DEFAULT_RUBRIC) -> Rubric:
    """A rubric by built-in/registered name or by path to a JSON file."""
    return _load_named(str(name_or_path))
