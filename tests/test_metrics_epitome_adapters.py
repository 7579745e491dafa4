"""EmPO's AdapterHub EPITOME adapters applied by kyokan (kyokan.metrics.epitome_adapters).

The reference logits below were computed once by the ``adapters`` package itself (adapters 1.3.0
on transformers 4.57.6, in a separate environment: it cannot be installed beside transformers 5)
for the same deterministic tiny RoBERTa and adapter weights this test builds; kyokan must give
the same numbers. A second test runs the whole loading path on a randomly initialised
roberta-base-shaped model with adapter files in the released layout."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

CFG = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
           max_position_embeddings=40, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
IDS = [[0, 5, 10, 20, 30, 40, 2], [0, 17, 18, 19, 20, 2, 1]]
ATT = [[1] * 7, [1] * 6 + [0]]
#: RobertaAdapterModel.load_adapter(..., with_head=True) on the same weights (adapters 1.3.0)
ADAPTERS_LOGITS = [[-0.1711912453174591, -0.06240871176123619, -0.09561343491077423],
                   [-0.1688900887966156, -0.0675600990653038, -0.09204716980457306]]
#: EmPO's released adapter_config.json / head_config.json (epitome_ER_level), hidden size aside
ADAPTER_CONFIG = {"adapter_residual_before_ln": False, "cross_adapter": False, "factorized_phm_W": True,
                  "factorized_phm_rule": False, "hypercomplex_nonlinearity": "glorot-uniform", "init_weights": "bert",
                  "inv_adapter": None, "inv_adapter_reduction_factor": None, "is_parallel": False, "learn_phm": True,
                  "leave_out": [], "ln_after": False, "ln_before": False, "mh_adapter": False, "non_linearity": "relu",
                  "original_ln_after": True, "original_ln_before": True, "output_adapter": True, "phm_bias": True,
                  "phm_c_init": "normal", "phm_dim": 4, "phm_init_range": 0.0001, "phm_layer": False, "phm_rank": 1,
                  "reduction_factor": 16, "residual_before_ln": True, "scaling": 1.0, "shared_W_phm": False,
                  "shared_phm_rule": True, "use_gating": False}
HEAD_CONFIG = {"activation_function": "tanh", "bias": True, "dropout_prob": None, "head_type": "classification",
               "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}, "layers": 2, "num_labels": 3, "use_pooler": False}


def fill(name: str, shape: tuple[int, ...]):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return torch.tensor(rng.normal(0, 0.2, size=shape), dtype=torch.float32)


def adapter_files(folder: Path, name: str = "epitome_ER_level", hidden: int = 32, layers: int = 2,
                  random: bool = False, **config_changes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    d = hidden // 16
    gen = (lambda n, s: torch.randn(*s) * 0.02) if random else fill
    sd = {}
    for i in range(layers):
        p = f"roberta.encoder.layer.{i}.output.adapters.{name}."
        sd[p + "adapter_down.0.weight"] = gen(p + "dw", (d, hidden))
        sd[p + "adapter_down.0.bias"] = gen(p + "db", (d,))
        sd[p + "adapter_up.weight"] = gen(p + "uw", (hidden, d))
        sd[p + "adapter_up.bias"] = gen(p + "ub", (hidden,))
    torch.save(sd, folder / "pytorch_adapter.bin")
    h = f"heads.{name}."
    torch.save({h + "1.weight": gen(h + "1w", (hidden, hidden)), h + "1.bias": gen(h + "1b", (hidden,)),
                h + "4.weight": gen(h + "4w", (3, hidden)), h + "4.bias": gen(h + "4b", (3,))},
               folder / "pytorch_model_head.bin")
    meta = {"hidden_size": hidden, "model_class": "RobertaAdapterModel", "model_name": "roberta-base",
            "model_type": "roberta", "name": name, "version": "0.1.0"}
    (folder / "adapter_config.json").write_text(json.dumps({"config": {**ADAPTER_CONFIG, **config_changes}, **meta}))
    (folder / "head_config.json").write_text(json.dumps({"config": HEAD_CONFIG, **meta}))


def tiny_base():
    from transformers import RobertaConfig, RobertaModel

    base = RobertaModel(RobertaConfig(**CFG), add_pooling_layer=False)
    with torch.no_grad():
        for n, p in base.named_parameters():
            p.copy_(fill(n, tuple(p.shape)))
    return base.eval()


def test_logits_equal_the_adapters_package(tmp_path):
    from kyokan.metrics.epitome_adapters import AdapterClassifier

    adapter_files(tmp_path / "er")
    base = tiny_base()
    clf = AdapterClassifier(tmp_path / "er", base)
    with torch.no_grad():
        got = clf.logits(base, {"input_ids": torch.tensor(IDS), "attention_mask": torch.tensor(ATT)})
    np.testing.assert_allclose(got.numpy(), np.array(ADAPTERS_LOGITS), atol=2e-6)
    # the adapter is really applied: without it the logits differ, and the base model is restored after
    clf.scaling = 0.0
    with torch.no_grad():
        off = clf.logits(base, {"input_ids": torch.tensor(IDS), "attention_mask": torch.tensor(ATT)})
    assert float((off - got).abs().max()) > 1e-3
    assert not any("forward" in vars(layer.output) for layer in base.encoder.layer)


def test_unsupported_configuration_is_refused(tmp_path):
    from kyokan.errors import KyokanError
    from kyokan.metrics.epitome_adapters import AdapterClassifier

    adapter_files(tmp_path / "er", mh_adapter=True)
    with pytest.raises(KyokanError, match="mh_adapter"):
        AdapterClassifier(tmp_path / "er", tiny_base())


def _word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<s>", "<pad>", "</s>", "<unk>", "<speaker>", "</speaker>", "<target>", "</target>", "i", "lost",
             "my", "job", "so", "sorry", "to", "hear", "that", "what", "happened", "?", "."]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def test_released_layout_on_a_random_roberta_base_shaped_model(tmp_path):
    """EmpoAdapters finds epitome_{ER,EX,IP}_level/final_adapter, loads the three onto one base
    model (roberta-base's shape, random weights) and returns levels 0-2 per mechanism."""
    from transformers import RobertaConfig, RobertaModel

    from kyokan.metrics.epitome_adapters import EpitomeAdapters, pair_text

    torch.manual_seed(0)
    cfg = RobertaConfig()  # roberta-base: 12 layers, hidden 768
    base = RobertaModel(cfg, add_pooling_layer=False)
    for m in ("ER", "EX", "IP"):
        adapter_files(tmp_path / f"epitome_{m}_level" / "final_adapter", name=f"epitome_{m}_level", hidden=768,
                      layers=12, random=True)
    ad = EpitomeAdapters(tmp_path, base_model=base, tokenizer=_word_tokenizer())
    seekers = ["i lost my job .", "i lost my job ."]
    levels = ad.levels(seekers, ["so sorry to hear that .", "what happened ?"])
    assert set(levels) == {"er", "ex", "ip"}
    assert all(len(v) == 2 and set(v) <= {0, 1, 2} for v in levels.values())
    info = ad.info()
    assert info["er"]["adapter_sha256"] and info["kind"] == "empo-adapters"
    assert pair_text("a", "b") == "<speaker> a </speaker> <target> b </target>"


def test_diff_epitome_metric_uses_adapters_folder(tmp_path):
    from kyokan.metrics.response.diff_epitome import load_classifiers

    for m in ("ER", "EX", "IP"):
        adapter_files(tmp_path / f"epitome_{m}_level" / "final_adapter", name=f"epitome_{m}_level")
    from kyokan.errors import KyokanError

    # the base model is named; offline without a local roberta-base this is a clear error, not a traceback
    with pytest.raises(KyokanError, match="roberta-base"):
        load_classifiers(str(tmp_path), "roberta-base")
