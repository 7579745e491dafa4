"""Metric definitions against hand-computed values on small inputs (no encoders needed)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from kyokan.errors import InputError, KyokanError
from kyokan.metrics import build_table, response_tries
from kyokan.metrics.lexicons import intensity_lexicon, nrc_intensity, warriner
from kyokan.metrics.nidf import CountTable, score_tokens
from kyokan.metrics.registry import Example, MetricContext, get_metric
from kyokan.metrics.vectors import VecFile
from kyokan.stats import bootstrap_mean
from metrics_util import dialogue, read_jsonl, write_jsonl


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    vals = [0.0, 1.0, 1.0, 0.0, 1.0, None]
    a = bootstrap_mean(vals, seed=3, resamples=500)
    b = bootstrap_mean(vals, seed=3, resamples=500)
    assert a == b
    assert a["mean"] == pytest.approx(0.6) and a["n"] == 5 and a["missing"] == 1
    assert a["ci_low"] <= 0.6 <= a["ci_high"]
    # independent computation of the same percentile bootstrap
    rng = np.random.Generator(np.random.PCG64(3))
    arr = np.array([0, 1, 1, 0, 1], dtype=float)
    means = arr[rng.integers(0, 5, size=(500, 5))].mean(axis=1)
    assert a["ci_low"] == pytest.approx(np.quantile(means, 0.025))
    assert a["ci_high"] == pytest.approx(np.quantile(means, 0.975))
    assert bootstrap_mean([None])["mean"] is None


def test_nidf_hand_computed() -> None:
    corpus = ["the cat sat", "the dog sat", "the cat ran", "a bird"]
    t = build_table(corpus, "en", source="test")
    assert t.counts == {"the": 3, "cat": 2, "sat": 2, "dog": 1, "ran": 1, "a": 1, "bird": 1}
    den = math.log(3) - math.log(1)
    assert t.nidf("the") == pytest.approx(0.0)
    assert t.nidf("cat") == pytest.approx((math.log(3) - math.log(2)) / den)
    assert t.nidf("dog") == pytest.approx(1.0)
    # unique tokens: the, cat, zebra(not in table) -> mean over 2, coverage 2/3
    score, cov = score_tokens(t, ["the", "cat", "the", "zebra"])
    assert score == pytest.approx((0 + (math.log(3) - math.log(2)) / den) / 2)
    assert cov == pytest.approx(2 / 3)


def test_nidf_table_roundtrip_checksum_and_tamper(tmp_path) -> None:
    t = build_table(["今日はとても嬉しい", "今日は悲しい"], "ja")
    assert t.counts["今日"] == 2 and "嬉しい" in t.counts  # fugashi tokens
    p = tmp_path / "counts.json"
    t.save(p)
    t2 = CountTable.load(p)
    assert t2.sha256 == t.sha256 and t2.counts == t.counts
    d = json.loads(p.read_text(encoding="utf-8"))
    d["counts"]["今日"] = 5
    p.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(KyokanError, match="checksum"):
        CountTable.load(p)


def test_tries_hand_computed() -> None:
    toks = [["i", "am", "so", "sorry"], ["i", "am", "so", "sorry"], ["i", "am", "happy"], ["oh", "no"]]
    st = response_tries(toks)
    # trie before: i-am-so-sorry (4) + happy (1) + oh-no (2) = 7 nodes
    assert st.nodes_before == 7 and st.templates == 3 and st.unique_start_words == 2
    # n-grams (count>=2): "i am so sorry" n=4 c=2 -> w=8 wins over "i am" (n=2 c=3, w=6);
    # after folding: [S1],[S1],[i,am,happy],[oh,no]; "i am" now occurs once -> stop
    assert st.folds == 1
    assert st.total_nodes == 1 + 3 + 2 and st.span_nodes == 1 and st.root_children == 3
    assert st.compression_ratio == pytest.approx(6 / 7)
    # deterministic
    assert response_tries(toks) == st


def test_tries_nested_folds_and_ties() -> None:
    toks = [["a", "b", "c"], ["a", "b", "c"], ["a", "b", "d"], ["a", "b", "d"]]
    st = response_tries(toks)
    # "a b" n=2 c=4 w=8 beats "a b c"/"a b d" (w=6): fold -> [S,c],[S,c],[S,d],[S,d];
    # then (S,c) and (S,d) tie at w=4, n=2: S c first (c<d), then S d -> 2 more folds
    assert st.folds == 3
    assert st.total_nodes == 2 and st.span_nodes == 2 and st.root_children == 2
    assert st.nodes_before == 4


def test_length_and_lexicon_iva_english_hand_computed() -> None:
    inten = intensity_lexicon().scores
    val, aro = (x.scores for x in warriner())
    assert inten["outraged"] == pytest.approx(max(nrc_intensity()["outraged"].values()))
    ctx_text, resp = "I am outraged and scared", "That is awful, stay calm"
    exs = [Example("1", resp, ctx_text, lang="en")]
    out = get_metric("iva").compute(exs, MetricContext(lang="en"))
    row = out.per_example[0]

    def mx(lex, words):
        v = [lex[w] for w in words if w in lex]
        return max(v) if v else None

    cw = ["i", "am", "outraged", "and", "scared"]
    rw = ["that", "is", "awful", "stay", "calm"]
    for d, lex in (("intensity", inten), ("valence", val), ("arousal", aro)):
        c, r = mx(lex, cw), mx(lex, rw)
        assert row[f"{d}_context"] == pytest.approx(c)
        assert row[f"{d}_response"] == pytest.approx(r)
        assert row[f"{d}_diff"] == pytest.approx(c - r)
        assert row[f"{d}_abs"] == pytest.approx(abs(c - r))
    assert any("research" in lic["license"] for lic in out.licenses)
    ln = get_metric("length").compute([Example("1", "今日は晴れ。", "x", lang="ja")], MetricContext(lang="ja"))
    assert ln.per_example[0] == {"chars": 6, "tokens": 3}  # 今日 / は / 晴れ (。 dropped)


def test_iva_japanese_mlask() -> None:
    import mlask_official

    coords = mlask_official.RUSSELL_COORDS
    exs = [Example("1", "それは嬉しいですね！", "試験に落ちてとても悲しい。", lang="ja"),
           Example("2", "そうですか。", "明日は月曜日です。", lang="ja")]
    out = get_metric("iva").compute(exs, MetricContext(lang="ja"))
    r = out.per_example[0]
    assert r["valence_response"] == pytest.approx((coords["yorokobi"][0] + 1) / 2)
    assert r["valence_context"] == pytest.approx((coords["aware"][0] + 1) / 2)
    assert r["valence_diff"] == pytest.approx(r["valence_context"] - r["valence_response"])
    assert out.per_example[1]["valence_diff"] is None  # no emotion words: missing, not zero
    assert out.system["coverage"]["valence"] == 0.5


def test_vec_file_cosine(tmp_path) -> None:
    p = tmp_path / "v.vec"
    p.write_text("3 2\njoy 1 0\nhappy 1 1\nsad -1 0\n", encoding="utf-8")
    v = VecFile(p)
    assert v.cosine("joy", "happy") == pytest.approx(1 / math.sqrt(2))
    assert v.cosine("joy", "sad") == pytest.approx(-1.0)
    assert v.cosine("joy", "unknown") is None


def test_labels_classification_hand_computed(tmp_path) -> None:
    from kyokan.metrics.labels import read_predictions, score_labels
    from kyokan.taxonomy import get_taxonomy

    tax = get_taxonomy()
    rows = [{"id": "1", "gold": "joy", "predicted": "喜び"},       # correct (Japanese name)
            {"id": "2", "gold": "joy", "predicted": "sadness"},    # wrong
            {"id": "3", "gold": "sadness", "predicted": "悲しみを感じる"},  # off list -> sadness, correct
            {"id": "4", "gold": "fear", "predicted": "zzzz"}]      # nothing near -> unmatched
    p = write_jsonl(tmp_path / "p.jsonl", rows)
    s = score_labels(read_predictions(p, tax, "ja"), tmp_path / "out", bertscore=False, vectors="none").to_json()
    assert s["accuracy"]["mean"] == pytest.approx(0.5)
    assert s["off_list"] == 2 and s["unmatched"] == 1
    # per label: joy P=1/1 R=1/2 F=2/3; sadness P=1/2 R=1/1 F=2/3; fear P=0 R=0 F=0
    pl = s["per_label"]
    assert pl["joy"]["f1"] == pytest.approx(2 / 3) and pl["sadness"]["precision"] == pytest.approx(0.5)
    assert s["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    conf = s["confusion"]
    assert conf["labels"][-1] == "(none)"
    i = conf["labels"].index
    assert conf["matrix"][tax.ids.index("fear")][i("(none)")] == 1
    assert conf["matrix"][tax.ids.index("joy")][i("sadness")] == 1
    per = read_jsonl(tmp_path / "out" / "per_example.jsonl")
    assert per[2]["predicted"] == "sadness" and per[2]["off_list"] is True


def test_labels_bad_input_is_an_input_error(tmp_path) -> None:
    from kyokan.metrics.labels import read_predictions
    from kyokan.taxonomy import get_taxonomy

    p = write_jsonl(tmp_path / "p.jsonl", [{"id": "1", "gold": "not-a-label", "predicted": "joy"}])
    with pytest.raises(InputError) as e:
        read_predictions(p, get_taxonomy())
    assert "p.jsonl:1: gold" in str(e.value)
    r = subprocess.run([sys.executable, "-m", "kyokan.cli", "eval", "labels", str(p), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "gold" in r.stderr


def test_eval_responses_without_encoder(tmp_path) -> None:
    """NIDF, IVA, tries and length end to end through the runner (English)."""
    from kyokan.metrics import evaluate_responses

    ref = write_jsonl(tmp_path / "ref.jsonl", [
        dialogue("a", "joy", "en", ["I got the job!", "Congratulations, you earned it."]),
        dialogue("b", "sadness", "en", ["My dog died.", "I am so sorry for your loss."]),
        dialogue("c", "fear", "en", ["I am scared of the surgery.", "That is a scary thing to face."]),
    ])
    gen = write_jsonl(tmp_path / "gen.jsonl", [{"id": "a", "response": "I am so sorry."},
                                               {"id": "b", "response": "I am so sorry."},
                                               {"id": "c", "response": "You will be fine."}])
    s = evaluate_responses(gen, tmp_path / "out", reference=ref, metrics=["nidf", "iva", "tries", "length"]).to_json()
    per = read_jsonl(tmp_path / "out" / "per_example.jsonl")
    assert [r["id"] for r in per] == ["a", "b", "c"] and {r["source"] for r in per} == {"out"}
    table = CountTable.load(tmp_path / "out" / "nidf_counts.json")
    assert table.n_utterances == 6 and s["metrics"]["nidf"]["info"]["table"]["sha256"] == table.sha256
    expect_b = np.mean([table.nidf(w) for w in {"i", "am", "so", "sorry"} if w in table.counts])
    assert per[1]["values"]["nidf"]["nidf"] == pytest.approx(expect_b)
    assert s["metrics"]["tries"]["values"]["templates"] == 2
    assert s["metrics"]["length"]["means"]["chars"]["mean"] == pytest.approx((14 + 14 + 17) / 3)
    assert s["licenses"] and "research" in s["license_note"]
    # unknown id in GEN -> input error naming the line
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "zz", "response": "x"}])
    with pytest.raises(InputError, match=r"bad\.jsonl:1: id"):
        evaluate_responses(bad, tmp_path / "o2", reference=ref, metrics=["length"])
