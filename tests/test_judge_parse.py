"""The tolerant answer parser: reads what is there, never invents a score."""

from __future__ import annotations

import pytest

from kyokan.judge import parse_score, parse_scores, parse_winner, parse_winners


@pytest.mark.parametrize("text, score, via", [
    ('{"rationale": "良い", "score": 4}', 4, "json"),
    ('```json\n{"rationale": "ok", "score": 5}\n```', 5, "json"),
    ('Let me think. The reply is warm.\n{"rationale": "warm", "score": 3}', 3, "json-in-text"),
    ('{"score": "４"}', 4, "json"),                       # full-width digit in a string
    ('{"score": 2.0}', 2, "json"),
    ('{"score": "4/5"}', 4, "json"),
    ("応答者は丁寧です。評価は [[3]]", 3, "brackets"),
    ("評価：［［５］］", 5, "brackets"),                      # full-width brackets and digit
    ("Rationale: kind.\nScore: 2", 2, "label"),
    ("スコア：4", 4, "label"),
    ('First draft {"score": 2} then final {"rationale": "x", "score": 4}', 4, "json-in-text"),
])
def test_reads_scores(text: str, score: int, via: str) -> None:
    p = parse_score(text)
    assert (p.score, p.via) == (score, via)


@pytest.mark.parametrize("text", [
    "", "   ", "I think the responder did fine.", "The patient has had dialysis for 25 years, 3 times a week.",
    '{"score": 7}', '{"score": 0}', '{"score": 3.5}', '{"score": true}', '{"score": null}', '{"score": "good"}',
    "[[6]]", '{"rationale": "no score here"}',
])
def test_unreadable_is_none_never_a_score(text: str) -> None:
    p = parse_score(text)
    assert p.score is None and not p.ok and p.error


def test_out_of_range_says_so() -> None:
    assert parse_score('{"score": 7}').error == "score 7 is outside 1-5"
    assert parse_score("[[0]]", 0, 2).score == 0  # other scales


def test_all_in_one_reads_each_metric_and_marks_missing_ones() -> None:
    ids = ["a_metric", "b_metric", "c_metric"]
    text = '{"scores": {"a_metric": {"rationale": "x", "score": 5}, "b_metric": 2, "c_metric": {"score": 9}}}'
    got = parse_scores(text, ids)
    assert got["a_metric"].score == 5 and got["a_metric"].rationale == "x"
    assert got["b_metric"].score == 2
    assert got["c_metric"].score is None and "outside" in (got["c_metric"].error or "")
    lines = "a_metric: [[4]]\n**b_metric**: 3\nno c here"
    got = parse_scores(lines, ids)
    assert (got["a_metric"].score, got["b_metric"].score, got["c_metric"].score) == (4, 3, None)
    assert got["c_metric"].error == "metric missing from the answer"


def test_winners() -> None:
    assert parse_winner('{"rationale": "r", "winner": "B"}').winner == "B"
    assert parse_winner("A is warmer. [[A]]").winner == "A"
    assert parse_winner("Both are equal [[C]]").winner == "tie"
    assert parse_winner('{"winner": "both"}').winner is None
    assert parse_winner("no idea").winner is None
    got = parse_winners('{"winners": {"m1": {"winner": "a"}, "m2": "tie"}}', ["m1", "m2", "m3"])
    assert (got["m1"].winner, got["m2"].winner, got["m3"].winner) == ("A", "tie", None)
