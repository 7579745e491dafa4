"""Metric profiles: the lee2024 rules (Lee et al. 2024's code as EmPO ran it) against reference
outputs and hand-worked cases, and the kyokan profile unchanged."""

from __future__ import annotations

import io
import json
import math
import pickle
from collections import Counter

import pytest

from kyokan.metrics.nidf import CountTable, read_count_pickle, score_tokens
from kyokan.metrics.profiles import MetricProfile, available_profiles, get_profile, register_profile

COUNTS = "data/empathy_datasets/empathetic_dialogues/ed_counts.pkl"
BASELINE = "predictions/preds_dlrxxx_zephyr-7b-sft-full_epi.txt"
LENCTL = "predictions/preds_dlrxxx30x_zephyr-7b-sft-full_epi.txt"


def test_registry_has_both_profiles_and_names_rules():
    assert {"kyokan", "lee2024"} <= set(available_profiles())
    lee = get_profile("lee2024").describe()
    assert lee["nidf_unknown_token"] == 1.0 and lee["lexicon_miss"] == 0.0 and lee["intensity_rule"] == "last"
    assert get_profile().name == "kyokan" and get_profile("kyokan").describe()["nidf_unknown_token"] is None
    with pytest.raises(Exception, match="unknown metric profile"):
        get_profile("nope")


def test_a_new_profile_is_one_registration():
    base = get_profile("kyokan")
    p = register_profile(MetricProfile(**{**base.__dict__, "name": "test-unknown-half", "nidf_unknown": 0.5}))
    assert get_profile("test-unknown-half") is p


def test_word_tokenize_matches_nltk_documented_output():
    from kyokan.metrics.treebank import word_tokenize

    # nltk.tokenize's module docstring (word_tokenize with the English Punkt model)
    s = "Good muffins cost $3.88\nin New York.  Please buy me\ntwo of them.\n\nThanks."
    assert list(word_tokenize(s)) == ['Good', 'muffins', 'cost', '$', '3.88', 'in', 'New', 'York', '.', 'Please',
                                      'buy', 'me', 'two', 'of', 'them', '.', 'Thanks', '.']
    # Punkt's abbreviation table keeps "Mr." whole; contractions split as Treebank does
    assert list(word_tokenize("I don't know Mr. Smith. He's nice!")) == [
        "I", "do", "n't", "know", "Mr.", "Smith", ".", "He", "'s", "nice", "!"]
    # nltk 3.8.1 rules (EmPO's version): no whitespace normalisation before the contraction rules
    assert "don't" in word_tokenize("I don't\nknow")


def test_count_pickle_is_read_without_running_code(tmp_path):
    p = tmp_path / "counts.pkl"
    p.write_bytes(pickle.dumps({"word_counts": Counter({"a": 3, "b": 1}), "num_sents": {"a": 3, "b": 1}}))
    t = read_count_pickle(p)
    assert t.counts == {"a": 3, "b": 1} and t.c_max == 3

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"word_counts": Evil()}))
    with pytest.raises(Exception, match=r"refused global builtins\.print"):
        read_count_pickle(bad)
    shaped = tmp_path / "shape.pkl"
    shaped.write_bytes(pickle.dumps({"word_counts": {"a": "x"}}))
    with pytest.raises(Exception, match="positive count"):
        read_count_pickle(shaped)


def test_nidf_unknown_token_rule_hand_worked():
    t = CountTable({"a": 1, "b": 10, "c": 100}, 100, "en", "test")
    # NIDF: a = 1, b = 0.5, c = 0; "zz" is unknown
    assert score_tokens(t, ["a", "b", "zz"]) == (0.75, pytest.approx(2 / 3))
    assert score_tokens(t, ["a", "b", "zz"], unknown=1.0)[0] == pytest.approx(2.5 / 3)


def test_lee2024_nidf_equals_empo_reference_outputs(empo_release):
    """Per-reply NIDF of Lee's specificity.py as EmPO ran it (printed in EmPO's
    notebooks/compare_specificity.ipynb for rows 0-4: df3 = baseline, df4 = human, df7 = length-controlled)."""
    from kyokan.data.empo import read_predictions

    table = CountTable.load(empo_release / COUNTS)
    prof = get_profile("lee2024")
    want = {"baseline": [0.329744, 0.258448, 0.325729, 0.266352, 0.273491],
            "human": [0.303654, 0.220178, 0.349959, 0.305621, 0.340205],
            "lenctl": [0.276462, 0.202111, 0.322940, 0.375627, 0.224087]}
    base = read_predictions(empo_release / BASELINE)
    lenctl = read_predictions(empo_release / LENCTL)
    texts = {"baseline": [p.reply for p in base[:5]], "human": [p.gold for p in base[:5]],
             "lenctl": [p.reply for p in lenctl[:5]]}
    for system, ws in want.items():
        got = [score_tokens(table, prof.tokens(t, "en"), prof.nidf_unknown)[0] for t in texts[system]]
        assert got == pytest.approx(ws, abs=5e-7), system
    # kyokan's profile (lower-cased regex tokens, unknowns left out) gives other numbers on the same table
    k = get_profile("kyokan")
    assert score_tokens(table, k.tokens(texts["human"][0], "en"), k.nidf_unknown)[0] != pytest.approx(want["human"][0], abs=1e-3)


def _lexicons(tmp_path):
    vad = tmp_path / "NRC-VAD-Lexicon.txt"
    vad.write_text("happy\t0.960\t0.730\t0.690\ndrunk\t0.210\t0.650\t0.380\nguilty\t0.150\t0.720\t0.320\n", encoding="utf-8")
    inten = tmp_path / "intensity.txt"
    # grouped by emotion as the release's file is; "guilty" is listed twice (fear, then sadness)
    inten.write_text("drunk\tanger\t0.400\nguilty\tfear\t0.700\nhappy\tjoy\t0.800\nguilty\tsadness\t0.300\n", encoding="utf-8")
    return vad, inten


def test_lee2024_iva_rules_hand_worked(tmp_path):
    """vad.py: lower-case, word_tokenize, every token scores (misses 0), max; a word's intensity
    is its last line; kyokan: misses ignored, max over emotions, no lexicon word = missing."""
    from kyokan.metrics.response.iva import EnglishIVA

    vad, inten = _lexicons(tmp_path)
    lee = EnglishIVA(str(vad), get_profile("lee2024"), str(inten))
    ky = EnglishIVA(str(vad), get_profile("kyokan"), str(inten))
    assert lee.scores("I felt GUILTY, they were drunk.") == {"intensity": 0.4, "valence": 0.21, "arousal": 0.72}
    assert ky.scores("I felt GUILTY, they were drunk.") == {"intensity": 0.7, "valence": 0.21, "arousal": 0.72}
    assert lee.scores("Nothing here.") == {"intensity": 0.0, "valence": 0.0, "arousal": 0.0}
    assert ky.scores("Nothing here.") == {"intensity": None, "valence": None, "arousal": None}


def test_eval_responses_lee2024_end_to_end(empo_release, tmp_path, cli):
    """Import a release file, score it under lee2024; the outputs name the profile; DIFF-EPITOME
    comes from the released levels and equals the file's own diff_* columns."""
    import pandas as pd

    gen = tmp_path / "baseline.jsonl"
    r = cli("data", "import", empo_release / BASELINE, "--preset", "empo", "-o", gen)
    assert r.code == 0, r.stderr
    vad, inten = _lexicons(tmp_path)
    out = tmp_path / "ev"
    r = cli("eval", "responses", gen, "--profile", "lee2024", "--nidf-counts", empo_release / COUNTS,
            "--nrc-vad", vad, "--intensity", inten, "--metrics", "nidf,iva,length,diff_epitome", "-o", out)
    assert r.code == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["profile"] == "lee2024" and s["profile_rules"]["nidf_unknown_token"] == 1.0
    assert all(m["profile"] == "lee2024" for m in s["metrics"].values())
    rows = [json.loads(x) for x in (out / "per_example.jsonl").read_text().splitlines()]
    assert all(r["profile"] == "lee2024" for r in rows)
    df = pd.read_csv(empo_release / BASELINE, sep="~")
    for m in ("ER", "EX", "IP"):
        assert s["metrics"]["diff_epitome"]["means"][f"diff_{m.lower()}"]["mean"] == pytest.approx(df[f"diff_{m}_scores"].mean())
    assert s["metrics"]["length"]["means"]["chars"]["mean"] == pytest.approx(df["gens"].str.len().mean())
    nidf = [r["values"]["nidf"]["nidf"] for r in rows]
    assert nidf[:2] == pytest.approx([0.329744, 0.258448], abs=5e-7)
    assert not any(v is None or math.isnan(v) for v in nidf)


def test_lee2024_refuses_japanese(tmp_path, cli):
    gen = tmp_path / "g.jsonl"
    gen.write_text(json.dumps({"id": "1", "response": "大丈夫ですか", "context": "つらい", "lang": "ja"}) + "\n", encoding="utf-8")
    r = cli("eval", "responses", gen, "--profile", "lee2024", "--metrics", "length", "-o", tmp_path / "o")
    assert r.code != 0 and "lee2024" in r.stderr and "Traceback" not in r.stderr


def test_taxonomy_option_accepts_ed_labels(tmp_path, cli):
    ref = tmp_path / "ref.jsonl"
    d = {"id": "d1", "situation_id": "s1", "emotion": "guilty", "lang": "en", "situation": "x",
         "turns": [{"role": "speaker", "text": "I felt guilty."}, {"role": "listener", "text": "Why?"}]}
    ref.write_text(json.dumps(d) + "\n", encoding="utf-8")
    gen = tmp_path / "gen.jsonl"
    gen.write_text(json.dumps({"id": "d1", "response": "Oh no, why?"}) + "\n", encoding="utf-8")
    bad = cli("eval", "responses", gen, "--reference", ref, "--metrics", "length", "-o", tmp_path / "a")
    assert bad.code == 2 and "emotion" in bad.stderr
    ok = cli("eval", "responses", gen, "--reference", ref, "--taxonomy", "ed32", "--metrics", "length", "-o", tmp_path / "b")
    assert ok.code == 0, ok.stderr


def test_nidf_table_converts_the_pickle(empo_release, tmp_path, cli):
    out = tmp_path / "counts.json"
    r = cli("eval", "nidf-table", empo_release / COUNTS, "-o", out)
    assert r.code == 0, r.stderr
    a, b = CountTable.load(out), CountTable.load(empo_release / COUNTS)
    assert a.counts == b.counts and a.sha256 == b.sha256


def test_pickle_reader_needs_no_pickle_load(monkeypatch, empo_release):
    """The count table is built by the restricted unpickler only (pickle.load is never called)."""
    def boom(*a, **k):
        raise AssertionError("pickle.load called")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    t = read_count_pickle(empo_release / COUNTS)
    assert t.counts["I"] > 30000 and len(t.counts) == 21875
    assert isinstance(io.BytesIO, type)
