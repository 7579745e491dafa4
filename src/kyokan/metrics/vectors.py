"""Word vectors for label cosine (EmplifAI's FastText measure): ja_ginza's chiVe-derived vectors
offline (``spacy.load("ja_ginza")``), or a user's FastText ``.vec`` (text) / ``.bin`` file.

A label's vector is the mean of its tokens' vectors (spaCy's ``Doc.vector`` for ginza — SudachiPy
tokens; whitespace tokens for ``.vec``; FastText's own ``get_sentence_vector`` for ``.bin``).
A label with no known token has no vector, and its pairs have no cosine (reported as coverage).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from kyokan.errors import KyokanError


class WordVectors:
    name = ""

    def vector(self, text: str) -> np.ndarray | None:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        return {"name": self.name}

    def cosine(self, a: str, b: str) -> float | None:
        va, vb = self.vector(a), self.vector(b)
        if va is None or vb is None:
            return None
        na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
        if na == 0 or nb == 0:
            return None
        return float(np.dot(va, vb) / (na * nb))


class GinzaVectors(WordVectors):
    name = "ja_ginza"

    def __init__(self) -> None:
        try:
            import spacy

            self.nlp = spacy.load("ja_ginza", exclude=["parser", "ner", "attribute_ruler", "compound_splitter",
                                                       "bunsetu_recognizer", "morphologizer"])
        except (ImportError, OSError) as e:
            raise KyokanError(f"ja_ginza vectors unavailable ({e}); pip install 'kyokan[metrics]' or pass --vectors") from e
        self._cache: dict[str, np.ndarray | None] = {}

    def vector(self, text: str) -> np.ndarray | None:
        if text not in self._cache:
            doc = self.nlp.make_doc(text)
            vecs = [np.asarray(t.vector, dtype=np.float32) for t in doc if t.has_vector]
            self._cache[text] = np.mean(np.stack(vecs), axis=0) if vecs else None
        return self._cache[text]

    def info(self) -> dict[str, Any]:
        meta = self.nlp.meta
        return {"name": f"ja_ginza {meta.get('version', '?')}", "vectors": meta.get("vectors", {}),
                "tokenizer": "SudachiPy (ginza)", "license": meta.get("license", "MIT")}


class VecFile(WordVectors):
    """FastText text format: a header line ``N DIM`` then ``word v1 … vDIM``. Only the words asked
    for are kept (the file is streamed once per new set of words)."""

    def __init__(self, path: str | Path, words: Iterable[str] = ()) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise KyokanError(f"{self.path}: vector file not found")
        self.name = self.path.name
        self._vecs: dict[str, np.ndarray] = {}
        self._asked: set[str] = set()
        self.preload(words)

    def preload(self, texts: Iterable[str]) -> None:
        want = {w for t in texts for w in t.split()} - self._asked
        if not want:
            return
        self._asked |= want
        with open(self.path, encoding="utf-8", errors="replace") as f:
            first = f.readline().split()
            if len(first) != 2 or not all(x.isdigit() for x in first):
                f.seek(0)
            for line in f:
                w, _, rest = line.rstrip("\n").partition(" ")
                if w in want:
                    self._vecs[w] = np.array(rest.split(), dtype=np.float32)

    def vector(self, text: str) -> np.ndarray | None:
        self.preload([text])
        vecs = [self._vecs[w] for w in text.split() if w in self._vecs]
        return np.mean(vecs, axis=0) if vecs else None

    def info(self) -> dict[str, Any]:
        st = self.path.stat()
        return {"name": self.name, "path": str(self.path), "bytes": st.st_size, "format": "fasttext-vec"}


class BinFile(WordVectors):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            import fasttext
        except ImportError as e:
            raise KyokanError("reading a FastText .bin needs the fasttext package (pip install fasttext-wheel); "
                              "or convert it to .vec") from e
        self.name = self.path.name
        self.model = fasttext.load_model(str(self.path))

    def vector(self, text: str) -> np.ndarray | None:
        return np.asarray(self.model.get_sentence_vector(text), dtype=np.float32)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "format": "fasttext-bin"}


def load_vectors(spec: str | None, lang: str, words: Iterable[str] = ()) -> WordVectors | None:
    """``None``/``ginza``: ja_ginza for Japanese (None for other languages: no offline vectors);
    a path ending in .vec/.txt or .bin: FastText."""
    if spec in (None, "", "ginza", "ja_ginza"):
        if spec is None and not lang.startswith("ja"):
            return None
        return GinzaVectors()
    if spec == "none":
        return None
    p = Path(spec)
    if p.suffix == ".bin":
        return BinFile(p)
    return VecFile(p, words)

