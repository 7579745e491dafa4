"""EmPO's released EPITOME classifiers: AdapterHub bottleneck adapters on roberta-base
(``data/trained_adapters/epitome_{ER,EX,IP}_level/final_adapter`` in EmPO's repository).

Each folder holds ``adapter_config.json`` (a ``seq_bn`` — Pfeiffer — bottleneck after every
layer's feed-forward output: reduction factor 16, ReLU, residual before the layer norm, the
layer's own LayerNorm before and after), ``pytorch_adapter.bin`` (the down/up projections per
layer), ``head_config.json`` and ``pytorch_model_head.bin`` (a 2-layer tanh classification head on
the first token, 3 labels = levels 0/1/2). The input is EmPO's ``pre_tokenize_input`` column:
``<speaker> {seeker post} </speaker> <target> {response} </target>``.

The ``adapters`` package that wrote them pins transformers 4.57 and cannot be installed beside
kyokan's transformers 5, so kyokan applies them itself on transformers' ``RobertaModel``: the
adapter arithmetic of ``adapters``' ``BottleneckLayer`` for this configuration, the weights read
with ``torch.load(weights_only=True)`` (tensors only, no code). Any configuration other than the
released one is refused rather than guessed. ``tests/test_metrics_epitome_adapters.py`` checks the
loading path on a randomly initialised roberta-base-shaped model with adapter files of the same
layout; docs/metrics.md records the check against the ``adapters`` package itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError

MECHANISMS = ("er", "ex", "ip")
#: the configuration of EmPO's released adapters; anything else is refused
SUPPORTED = {"mh_adapter": False, "output_adapter": True, "original_ln_before": True, "original_ln_after": True,
             "residual_before_ln": True, "adapter_residual_before_ln": False, "ln_before": False, "ln_after": False,
             "use_gating": False, "is_parallel": False, "non_linearity": "relu", "phm_layer": False}


def pair_text(seeker: str, response: str) -> str:
    """EmPO's ``pre_tokenize_input`` for an EPITOME pair."""
    return f"<speaker> {seeker} </speaker> <target> {response} </target>"


def _folder(root: Path, mech: str) -> Path:
    for cand in (root / f"epitome_{mech.upper()}_level" / "final_adapter", root / f"epitome_{mech.upper()}_level", root):
        if (cand / "adapter_config.json").exists():
            return cand
    raise KyokanError(f"{root}: no adapter for {mech.upper()} (epitome_{mech.upper()}_level/final_adapter/adapter_config.json)")


class AdapterClassifier:
    """One EPITOME adapter + head applied to a base RobertaModel (shared between the three)."""

    def __init__(self, folder: Path, base: Any) -> None:
        import torch

        self.folder = folder
        cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
        head = json.loads((folder / "head_config.json").read_text(encoding="utf-8"))
        c = cfg.get("config", {})
        bad = {k: c.get(k) for k, v in SUPPORTED.items() if k in c and c.get(k) != v}
        if bad:
            raise KyokanError(f"{folder}: adapter configuration {bad} is not the released seq_bn layout kyokan applies")
        hc = head.get("config", {})
        if hc.get("head_type") != "classification" or hc.get("use_pooler") or int(hc.get("layers", 0)) != 2:
            raise KyokanError(f"{folder}: head {hc} is not a 2-layer classification head on the first token")
        self.name = str(cfg.get("name") or folder.parent.name)
        self.scaling = float(c.get("scaling", 1.0))
        self.num_labels = int(hc.get("num_labels", 3))
        sd = torch.load(folder / "pytorch_adapter.bin", map_location="cpu", weights_only=True)
        hd = torch.load(folder / "pytorch_model_head.bin", map_location="cpu", weights_only=True)
        n_layers = base.config.num_hidden_layers
        self.down: list[tuple[Any, Any]] = []
        self.up: list[tuple[Any, Any]] = []
        for i in range(n_layers):
            pre = f"roberta.encoder.layer.{i}.output.adapters.{self.name}."
            try:
                self.down.append((sd[pre + "adapter_down.0.weight"], sd[pre + "adapter_down.0.bias"]))
                self.up.append((sd[pre + "adapter_up.weight"], sd[pre + "adapter_up.bias"]))
            except KeyError as e:
                raise KyokanError(f"{folder}/pytorch_adapter.bin: missing {e.args[0]}") from None
        hp = f"heads.{self.name}."
        try:
            self.head = (hd[hp + "1.weight"], hd[hp + "1.bias"], hd[hp + "4.weight"], hd[hp + "4.bias"])
        except KeyError as e:
            raise KyokanError(f"{folder}/pytorch_model_head.bin: missing {e.args[0]}") from None
        if self.down and self.down[0][0].shape[1] != base.config.hidden_size:
            raise KyokanError(f"{folder}: adapter hidden size {self.down[0][0].shape[1]} != base model's {base.config.hidden_size}")

    def logits(self, base: Any, enc: Any) -> Any:
        import torch
        import torch.nn.functional as F

        layers = base.encoder.layer
        handles: list[Any] = []

        def make(i: int) -> Any:
            def forward(out_mod: Any, hidden_states: Any, input_tensor: Any) -> Any:
                h = out_mod.dropout(out_mod.dense(hidden_states))
                residual = h  # residual_before_ln: the feed-forward output, before the sublayer's LayerNorm
                x = out_mod.LayerNorm(h + input_tensor)  # original_ln_before
                wd, bd = self.down[i]
                wu, bu = self.up[i]
                a = F.linear(torch.relu(F.linear(x, wd, bd)), wu, bu) * self.scaling
                return out_mod.LayerNorm(a + residual + input_tensor)  # residual, then original_ln_after
            return forward

        for i, layer in enumerate(layers):
            mod = layer.output
            f = make(i)
            # an instance attribute shadows the class's forward while the adapter is applied
            mod.forward = lambda hs, it, *a, _m=mod, _f=f, **k: _f(_m, hs, it)
            handles.append(mod)
        try:
            hidden = base(**enc).last_hidden_state[:, 0]
        finally:
            for mod in handles:
                del mod.forward
        w1, b1, w2, b2 = self.head
        return F.linear(torch.tanh(F.linear(hidden, w1, b1)), w2, b2)


class EpitomeAdapters:
    """ER/EX/IP levels from EmPO's adapters on a base roberta (``base``: hub id or local folder;
    default roberta-base, which must be in the local Hugging Face cache offline)."""

    def __init__(self, root: str | Path, base: str | None = None, batch_size: int = 16, max_length: int = 512,
                 base_model: Any = None, tokenizer: Any = None) -> None:
        self.root = Path(root)
        self.base_name = base or "roberta-base"
        if base_model is None:
            from transformers import AutoTokenizer, RobertaModel

            try:
                base_model = RobertaModel.from_pretrained(self.base_name, add_pooling_layer=False)
                tokenizer = AutoTokenizer.from_pretrained(self.base_name)
            except OSError as e:
                raise KyokanError(f"EmPO's adapters need their base model {self.base_name!r} (pass --epitome-base with a "
                                  f"local copy of roberta-base): {e}") from None
        self.base = base_model.eval()
        self.tok = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.clf = {m: AdapterClassifier(_folder(self.root, m), self.base) for m in MECHANISMS}

    def predict(self, mech: str, seekers: Sequence[str], responses: Sequence[str]) -> list[int]:
        import torch

        out: list[int] = []
        texts = [pair_text(s, r) for s, r in zip(seekers, responses, strict=True)]
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                enc = self.tok(texts[i:i + self.batch_size], truncation=True, max_length=self.max_length,
                               padding=True, return_tensors="pt")
                logits = self.clf[mech].logits(self.base, dict(enc))
                out.extend(int(x) for x in logits.argmax(dim=-1).tolist())
        return out

    def levels(self, seekers: Sequence[str], responses: Sequence[str]) -> dict[str, list[int]]:
        return {m: self.predict(m, seekers, responses) for m in MECHANISMS}

    def info(self) -> dict[str, Any]:
        from kyokan.provenance import sha256_file

        return {"kind": "empo-adapters", "root": str(self.root), "base": self.base_name,
                **{m: {"folder": str(c.folder), "adapter_sha256": sha256_file(c.folder / "pytorch_adapter.bin"),
                       "head_sha256": sha256_file(c.folder / "pytorch_model_head.bin")} for m, c in self.clf.items()}}
