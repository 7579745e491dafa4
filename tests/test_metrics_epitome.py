"""EPITOME training on made-up rows with a tiny random encoder, then DIFF-EPITOME."""

from __future__ import annotations

import csv
import random

import pytest

import metrics_util  # noqa: F401 - offline env
from kyokan.metrics.epitome import (
    EPITOME_FILES,
    EpitomeClassifiers,
    TrainConfig,
    diff_epitome,
    train_epitome,
)
from metrics_util import dialogue, read_jsonl, write_jsonl


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    from transformers import AutoTokenizer, BertConfig, BertModel

    from kyokan.testing import packaged_tokenizer_dir

    d = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(str(packaged_tokenizer_dir()))
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id or 0)
    BertModel(cfg).save_pretrained(str(d))
    tok.save_pretrained(str(d))
    return d


def _csvs(folder):
    rng = random.Random(0)
    posts = ["I feel so alone lately", "My exam went badly", "I can't sleep at night", "Work is too much"]
    replies = {0: ["ok", "go outside", "whatever"], 1: ["that sounds hard", "I hear you"],
               2: ["I understand, I felt the same when I lost my job", "that must be exhausting, I have been there"]}
    for name in EPITOME_FILES.values():
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, ["sp_id", "rp_id", "seeker_post", "response_post", "level", "rationale_labels"])
            w.writeheader()
            for i in range(24):
                lvl = i % 3
                w.writerow({"sp_id": i, "rp_id": i, "seeker_post": rng.choice(posts),
                            "response_post": rng.choice(replies[lvl]), "level": lvl, "rationale_labels": ""})
    return folder


def test_diff_epitome_hand_computed() -> None:
    rows = diff_epitome({"er": [2, 0], "ex": [1, 1], "ip": [0, 2]}, {"er": [0, 0], "ex": [1, 2], "ip": [2, 2]})
    assert rows[0]["diff_er"] == 4 and rows[0]["diff_ex"] == 0 and rows[0]["diff_ip"] == 4
    assert rows[0]["mean"] == pytest.approx(8 / 3)
    assert rows[1]["mean"] == pytest.approx(1 / 3)


@pytest.mark.slow
def test_train_and_diff_epitome_end_to_end(tmp_path, tiny_encoder) -> None:
    from kyokan.metrics import evaluate_responses

    data = _csvs(tmp_path)
    out = tmp_path / "epitome"
    cfg = TrainConfig(base_model=str(tiny_encoder), epochs=1, batch_size=8, max_length=64, learning_rate=1e-3)
    summary = train_epitome(data, cfg, out)
    assert set(summary) == {"er", "ex", "ip"}
    assert summary["er"]["rows"] == 24 and summary["er"]["dev"]["n"] == 2 and summary["er"]["steps"] == 3
    clfs = EpitomeClassifiers(out)
    lv = clfs.levels(["I feel so alone lately"], ["I hear you"])
    assert all(v[0] in (0, 1, 2) for v in lv.values())
    # deterministic by seed: retraining gives the same predictions
    train_epitome(data, cfg, tmp_path / "again")
    assert EpitomeClassifiers(tmp_path / "again").levels(["I feel so alone lately"], ["I hear you"]) == lv

    ref = write_jsonl(tmp_path / "ref.jsonl", [dialogue("a", "sadness", "en", ["My dog died.", "I am so sorry."]),
                                               dialogue("b", "joy", "en", ["I passed!", "Great news!"])])
    gen = write_jsonl(tmp_path / "gen.jsonl", [{"id": "a", "response": "ok"}, {"id": "b", "response": "Great news!"}])
    s = evaluate_responses(gen, tmp_path / "auto", reference=ref, metrics=["diff_epitome"],
                           options={"epitome": str(out)})
    per = read_jsonl(tmp_path / "auto" / "per_example.jsonl")
    g = clfs.levels(["My dog died.", "I passed!"], ["ok", "Great news!"])
    r = clfs.levels(["My dog died.", "I passed!"], ["I am so sorry.", "Great news!"])
    expect = diff_epitome(g, r)
    # per_example rows are kyokan.records.ResponseExample: metric values under "values"
    assert per[0]["values"]["diff_epitome"]["mean"] == pytest.approx(expect[0]["mean"])
    assert per[1]["values"]["diff_epitome"]["mean"] == 0  # identical reply
    assert s.metrics["diff_epitome"].means["mean"].mean == pytest.approx((expect[0]["mean"] + expect[1]["mean"]) / 2)


def test_epitome_csv_errors_name_the_line(tmp_path) -> None:
    from kyokan.errors import InputError
    from kyokan.metrics.epitome import read_epitome_csv

    p = tmp_path / "x.csv"
    p.write_text("seeker_post,response_post,level\na,b,1\nc,d,7\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"x\.csv:3: level"):
        read_epitome_csv(p)
