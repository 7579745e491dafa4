"""Readers for EmPO's public release (github.com/justtherightsize/empo), in its own layouts.

- ``predictions/preds_*_epi.txt``: ``~``-separated CSV, ``"``-quoted fields that span lines, a
  leading unnamed index column (two in the length-controlled file). Columns: ``chat_templates``
  (the prompt in Zephyr's chat template), ``gen_targets`` (gold listener reply), ``prevs`` (last
  speaker turn), ``emotions`` (ED label), ``gens`` (system reply), the EPITOME levels
  ``pred_{IP,EX,ER}_scores`` (reply) and ``gt_*`` (gold), ``diff_*`` (squared differences); any
  other column is kept in ``extra``.
- ``data/he_data.csv``: human ratings, one row per (annotator, item): ``Dim1``–``Dim4`` sliders
  0–100, ``Dim5`` checkbox, ``annotator``, ``ED_index`` (the test example), ``model`` (the source).
- ``notebooks/he_score_effsize.ipynb``: EmPO's own Table 7 computation; its saved output prints
  the effect sizes of the pairs with p < 0.05 (``read_effsize_notebook``), evidence for Table 7
  cells the paper prints differently.
- ``data/empathy_datasets/epitome/{train,val,test}.csv``: EPITOME with ``seeker_post``,
  ``response_post``, ``{ER,EX,IP}_level`` (kyokan.metrics.epitome reads them).

Bad rows raise ``InputError`` with ``file:line: field: what is wrong``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyokan.errors import InputError, Problem

#: the released prediction files, by kyokan's system name (EmPO Table 2/4/5 rows)
SYSTEM_FILES: dict[str, str] = {
    "baseline": "preds_dlrxxx_zephyr-7b-sft-full_epi.txt",
    "lenctl": "preds_dlrxxx30x_zephyr-7b-sft-full_epi.txt",
    "sft": "preds_dlr1e6m1000_zephyr-7b-sft-full124_epi.txt",
    "dpo": "preds_dlr1e6m1000_zephyr-7b-sft-full124_d270_epi.txt",
}
#: ``he_data.csv``'s ``model`` values → system names
HE_SOURCES: dict[str, str] = {"zephyr_base": "baseline", "zephyr_base_output_limit": "lenctl", "SFT": "sft",
                              "zephyr_dpo": "dpo", "human_targets": "human"}
SYSTEM_LABELS: dict[str, str] = {"human": "Human Response", "baseline": "baseline: Zephyr-7B-sft-full",
                                 "lenctl": "length-controlled baseline", "sft": "Zephyr-7B + SFT",
                                 "dpo": "Zephyr-7B + SFT + DPO"}
MECHANISMS = ("er", "ex", "ip")
REQUIRED = ("chat_templates", "gen_targets", "prevs", "emotions", "gens")
# a role tag opens a line and is followed by a newline (the system prompt mentions the tags inline)
_ZEPHYR = re.compile(r"(?:^|\n)<\|(system|user|assistant)\|>(?:\n|$)")


@dataclass
class Prediction:
    """One row of a release prediction file."""

    path: str
    line: int
    index: int
    prompt: str
    turns: list[dict[str, str]]
    system_prompt: str
    gold: str
    context: str
    emotion: str
    reply: str
    #: mechanism → (level of the reply, level of the gold reply); None when the file has none
    levels: dict[str, tuple[int, int]] | None
    extra: dict[str, str] = field(default_factory=dict)

    def generation_row(self, system: str) -> dict[str, Any]:
        """The row ``kyokan eval responses`` reads (GEN) with the gold reply and the levels."""
        row: dict[str, Any] = {"id": f"ed-test-{self.index}", "response": self.reply, "context": self.context,
                               "reference": self.gold, "emotion": self.emotion, "lang": "en", "history": self.turns,
                               "source": system}
        if self.levels is not None:
            row["epitome_levels"] = {m: {"generated": g, "reference": r} for m, (g, r) in self.levels.items()}
        return row


def parse_zephyr(prompt: str) -> tuple[str, list[dict[str, str]]]:
    """Zephyr's chat template → (system prompt, turns); user turns are the speaker's, assistant
    turns the listener's; the trailing empty assistant slot (where the reply goes) is dropped."""
    parts = _ZEPHYR.split(prompt)
    system = ""
    turns: list[dict[str, str]] = []
    for i in range(1, len(parts) - 1, 2):
        role, text = parts[i], parts[i + 1]
        text = text.strip()
        if text.endswith("</s>"):
            text = text[:-4].rstrip()
        if role == "system":
            system = text
        elif text:
            turns.append({"role": "speaker" if role == "user" else "listener", "text": text})
    return system, turns


def _read_table(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(start line, cells) of each record of a delimited file whose quoted fields span lines."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError.at(str(path), None, None, f"cannot open: {e.strerror}") from None
    if not raw.strip():
        raise InputError.at(str(path), None, None, "file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError.at(str(path), line, None, "not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    start = 1
    try:
        for cells in reader:
            end = reader.line_num
            if cells and any(c.strip() for c in cells):
                yield start, cells
            start = end + 1
    except csv.Error as e:
        raise InputError.at(str(path), reader.line_num, None, f"malformed CSV: {e}") from None


def _level(path: str, line: int, row: dict[str, str], col: str, problems: list[Problem]) -> int | None:
    raw = row.get(col, "").strip()
    try:
        v = float(raw)
    except ValueError:
        problems.append(Problem(path, line, col, f"not a level: {raw!r}"))
        return None
    if v not in (0.0, 1.0, 2.0):
        problems.append(Problem(path, line, col, f"EPITOME level must be 0, 1 or 2, got {raw!r}"))
        return None
    return int(v)


def read_predictions(path: str | Path) -> list[Prediction]:
    """Every row of one release prediction file (see the module docstring)."""
    p = Path(path)
    rows = _read_table(p, "~")
    try:
        _, header = next(rows)
    except StopIteration:
        raise InputError.at(str(p), None, None, "file has no header") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError.at(str(p), 1, None, f"not an EmPO prediction file: missing columns {missing} (found {header})")
    has_levels = all(f"{k}_{m.upper()}_scores" in header for k in ("pred", "gt") for m in MECHANISMS)
    out: list[Prediction] = []
    problems: list[Problem] = []
    sp = str(p)
    for line, cells in rows:
        if len(cells) != len(header):
            problems.append(Problem(sp, line, None, f"row has {len(cells)} fields, header has {len(header)}"))
            continue
        row = dict(zip(header, cells, strict=True))
        idx_raw = cells[0].strip()
        try:
            index = int(idx_raw)
        except ValueError:
            problems.append(Problem(sp, line, header[0] or "(index)", f"not a row index: {idx_raw!r}"))
            continue
        levels: dict[str, tuple[int, int]] | None = None
        if has_levels:
            got = {m: (_level(sp, line, row, f"pred_{m.upper()}_scores", problems),
                       _level(sp, line, row, f"gt_{m.upper()}_scores", problems)) for m in MECHANISMS}
            if any(g is None or r is None for g, r in got.values()):
                continue
            levels = {m: (int(g), int(r)) for m, (g, r) in got.items()}  # type: ignore[arg-type]
        system, turns = parse_zephyr(row["chat_templates"])
        known = set(REQUIRED) | {c for c in header if re.fullmatch(r"(pred|gt|diff)_(IP|EX|ER)_scores", c)}
        extra = {k: v for k, v in row.items() if k not in known and k and not k.startswith("Unnamed")}
        out.append(Prediction(sp, line, index, row["chat_templates"], turns, system, row["gen_targets"],
                              row["prevs"], row["emotions"].strip(), row["gens"], levels, extra))
    if problems:
        raise InputError(problems[:50], len(problems))
    if not out:
        raise InputError.at(sp, None, None, "no prediction rows")
    seen: dict[int, int] = {}
    for r in out:
        if r.index in seen:
            problems.append(Problem(sp, r.line, header[0] or "(index)", f"row index {r.index} repeats line {seen[r.index]}"))
        seen[r.index] = r.line
    if problems:
        raise InputError(problems[:50], len(problems))
    return out


@dataclass
class HumanRating:
    """One row of ``he_data.csv``: an annotator's ratings of one (ED_index, source) item."""

    path: str
    line: int
    annotator: str
    ed_index: int
    model: str
    source: str
    scores: dict[str, float]
    reply: str
    emotion: str
    context: str


#: he_data.csv columns → kyokan scale names (kyokan.human.scales.EMPO_DIMENSIONS)
HE_DIMENSIONS: dict[str, str] = {"Dim1": "emotion_understanding", "Dim2": "situational_appropriateness",
                                 "Dim3": "contextual_naturalness", "Dim4": "conversational_engagingness",
                                 "Dim5": "understandable_consistent"}


def read_he_data(path: str | Path, allow_repeats: bool = False) -> list[HumanRating]:
    """Every rating row of EmPO's ``he_data.csv``; sliders must be 0–100, the checkbox 0/1, the
    model one of ``HE_SOURCES``; an (annotator, ED_index, model) twice is an error unless
    ``allow_repeats`` (the reproduction averages every row, as EmPO's groupby-mean did)."""
    p = Path(path)
    sp = str(p)
    rows = _read_table(p, ",")
    try:
        _, header = next(rows)
    except StopIteration:
        raise InputError.at(sp, None, None, "file has no header") from None
    need = ["annotator", "ED_index", "model", *HE_DIMENSIONS]
    missing = [c for c in need if c not in header]
    if missing:
        raise InputError.at(sp, 1, None, f"not EmPO's he_data.csv: missing columns {missing}")
    out: list[HumanRating] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, int, str], int] = {}
    for line, cells in rows:
        if len(cells) != len(header):
            problems.append(Problem(sp, line, None, f"row has {len(cells)} fields, header has {len(header)}"))
            continue
        row = dict(zip(header, cells, strict=True))
        bad = len(problems)
        model = row["model"].strip()
        if model not in HE_SOURCES:
            problems.append(Problem(sp, line, "model", f"unknown source {model!r}; expected one of {sorted(HE_SOURCES)}"))
        try:
            ed = int(row["ED_index"].strip())
        except ValueError:
            problems.append(Problem(sp, line, "ED_index", f"not an integer: {row['ED_index']!r}"))
            ed = -1
        ann = row["annotator"].strip()
        if not ann:
            problems.append(Problem(sp, line, "annotator", "missing"))
        scores: dict[str, float] = {}
        for col, name in HE_DIMENSIONS.items():
            raw = row[col].strip()
            try:
                v = float(raw)
            except ValueError:
                problems.append(Problem(sp, line, col, f"not a number: {raw!r}"))
                continue
            hi = 1.0 if col == "Dim5" else 100.0
            if not 0.0 <= v <= hi or (col == "Dim5" and v not in (0.0, 1.0)):
                problems.append(Problem(sp, line, col, f"{raw} is outside {'0/1' if col == 'Dim5' else '0-100'}"))
                continue
            scores[name] = v
        if len(problems) > bad:
            continue
        key = (ann, ed, model)
        if key in seen and not allow_repeats:
            problems.append(Problem(sp, line, "annotator", f"annotator {ann} rated ED_index {ed} of {model} already at line {seen[key]}"))
            continue
        seen[key] = line
        out.append(HumanRating(sp, line, ann, ed, model, HE_SOURCES[model], scores, row.get("gens", ""),
                               row.get("emotions", "").strip(), row.get("prevs", "")))
    if problems:
        raise InputError(problems[:50], len(problems))
    if not out:
        raise InputError.at(sp, None, None, "no rating rows")
    return out


def per_item_means(ratings: list[HumanRating]) -> dict[str, dict[int, dict[str, float]]]:
    """source → ED_index → scale → mean over its annotators (EmPO's ``groupby(model, ED_index).mean()``)."""
    acc: dict[str, dict[int, dict[str, list[float]]]] = {}
    for r in ratings:
        item = acc.setdefault(r.source, {}).setdefault(r.ed_index, {})
        for k, v in r.scores.items():
            item.setdefault(k, []).append(v)
    return {s: {i: {k: sum(v) / len(v) for k, v in sc.items()} for i, sc in items.items()}
            for s, items in acc.items()}


def find_release_files(root: str | Path) -> dict[str, Path | None]:
    """Where the release files are under an EmPO checkout (None for those absent)."""
    r = Path(root)
    found: dict[str, Path | None] = {}
    for system, name in SYSTEM_FILES.items():
        f = r / "predictions" / name
        found[system] = f if f.exists() else None
    cand = {"he_data": [r / "data" / "he_data.csv"],
            "nidf_counts": [r / "data" / "empathy_datasets" / "empathetic_dialogues" / "ed_counts.pkl"],
            "nrc_vad": [r / "data" / "misc" / "NRC-VAD-Lexicon.txt", r / "data" / "misc" / "VAD.json"],
            "intensity": [r / "data" / "misc" / "intensity.txt"],
            "epitome": [r / "data" / "empathy_datasets" / "epitome"],
            "effsize_notebook": [r / "notebooks" / "he_score_effsize.ipynb"],
            "adapters": [r / "data" / "trained_adapters"]}
    for k, paths in cand.items():
        found[k] = next((p for p in paths if p.exists()), None)
    return found


#: a row of the notebook's printed frame: index, dim, model_greater_score, model, p (then `\` when wrapped)
_NB_ROW = re.compile(r"^\s*(\d+)\s+Dim([1-4])\s+(\S+)\s+(\S+)\s+([0-9.eE+-]+)\s*\\?\s*$")
#: a row of the wrapped frame's second part: index, effect_size
_NB_EFFECT = re.compile(r"^\s*(\d+)\s+(-?[0-9.]+)\s*$")


def read_effsize_notebook(path: str | Path) -> dict[tuple[str, str, str], tuple[float, float]]:
    """The effect sizes EmPO's notebook printed: ``(greater, lesser, "dimN") → (d, p)`` as saved in
    the output of its cell listing the pairs with p < 0.05 (rounded there to 2 and 5 decimals).
    The notebook is read as JSON (no code runs); an unreadable file or an output of another shape
    gives an empty mapping — this is evidence for explanations, never an input to a figure."""
    import json

    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = nb.get("cells", []) if isinstance(nb, dict) else []
    except (OSError, ValueError):
        return {}
    out: dict[tuple[str, str, str], tuple[float, float]] = {}
    for cell in cells:
        for o in cell.get("outputs", []) if isinstance(cell, dict) else []:
            text = o.get("text") or (o.get("data") or {}).get("text/plain") if isinstance(o, dict) else None
            text = "".join(text) if isinstance(text, list) else (text or "")
            if "model_greater_score" not in text or "effect_size" not in text:
                continue
            rows: dict[str, tuple[str, str, str, float]] = {}
            effects: dict[str, float] = {}
            after = False
            for line in text.splitlines():
                if line.strip() == "effect_size":
                    after = True
                    continue
                m = _NB_ROW.match(line)
                if m and not after and m.group(3) in HE_SOURCES and m.group(4) in HE_SOURCES:
                    rows[m.group(1)] = (HE_SOURCES[m.group(3)], HE_SOURCES[m.group(4)], f"dim{m.group(2)}",
                                        float(m.group(5)))
                    continue
                e = _NB_EFFECT.match(line)
                if e and after:
                    effects[e.group(1)] = float(e.group(2))
            for idx, (a, b, dim, p) in rows.items():
                if idx in effects:
                    out[(a, b, dim)] = (effects[idx], p)
    return out
