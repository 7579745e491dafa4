"""Structure and probabilities in the judge, over real loopback servers: G-Eval expected scores
from an endpoint's top_logprobs (checked by hand), a server that ignores response_format named once
in the summary, and configuration errors (4xx) stopping `kyokan judge` / `kyokan eval emotions`
with exit 1 and the server's message."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from judge_util import fake_score, metric_of, record, write_records
from kyokan.judge.probs import score_distributions
from kyokan.models.base import TokenLogprob
from kyokan.testing.openai_server import OpenAIServer, Reply, split_tokens

#: the judge's probability of each score (before the server rounds them to log-probs)
DIST = {1: 0.05, 2: 0.10, 3: 0.20, 4: 0.40, 5: 0.25}


def logprob_responder(req: dict[str, Any]) -> Reply:
    """Answers a one-metric question with JSON, and at the score token the alternatives of DIST
    (plus a non-score token, which must be ignored); every other token is certain."""
    metric = metric_of(req) or "?"
    s = fake_score(req, metric)
    text = json.dumps({"rationale": "ok", "score": s})
    toks = split_tokens(text)
    lps: list[tuple[str, float, list[tuple[str, float]]]] = [(t, 0.0, [(t, 0.0)]) for t in toks]
    i = toks.index(f" {s}")
    alts = sorted(((f" {k}", math.log(p)) for k, p in DIST.items()), key=lambda a: -a[1])
    lps[i] = (f" {s}", math.log(DIST[s]), [*alts, ('"', math.log(0.001))])
    return Reply(text, lps)


def test_expected_scores_from_top_logprobs_match_a_hand_computation(tmp_path: Path) -> None:
    from kyokan.judge import JudgeConfig, get_rubric, judge_file
    from kyokan.models import load_model

    inp = write_records(tmp_path / "in.jsonl", [record(i) for i in range(3)])
    rub = get_rubric().select(["fluency", "harmlessness"])
    with OpenAIServer(responder=logprob_responder) as srv:
        m = load_model("openai:j", base_url=srv.base_url)
        res = judge_file(inp, tmp_path / "out.jsonl", [m], rub, JudgeConfig(lang="en"))
        assert all(r["logprobs"] is True and r["top_logprobs"] == 10 for r in srv.requests)
    mass = sum(DIST.values())  # the rounded '"' alternative is no score and is left out
    expected = sum(k * p for k, p in DIST.items()) / mass  # 3.7
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    for r in rows:
        assert r["scoring"] == "probabilities" and r["decoding"] == "response_format"
        for m_ in ("fluency", "harmlessness"):
            assert r["scores"][m_] in range(1, 6)  # what it wrote
            assert r["expected_scores"][m_] == round(expected, 4)
            assert r["argmax_scores"][m_] == 4
            probs = r["score_probs"][m_]["probs"]
            assert probs == {str(k): round(p / mass, 6) for k, p in DIST.items()}
    cell = res.summary["overall"]["fluency"]
    assert cell["expected_mean"] == round(expected, 4) and cell["expected_n"] == 3
    assert res.summary["scoring"] == {"mode": "probabilities", "rows": {"probabilities": 3}}
    assert res.summary["structured_output"]["ignored_by_server"] is False


def test_distribution_is_read_per_metric_in_an_all_in_one_answer() -> None:
    text = '{"scores": {"a": {"rationale": "x", "score": 2}, "b": {"rationale": "score: 5", "score": 5}}}'
    toks = split_tokens(text)
    lps = [TokenLogprob(t, 0.0, ((t, 0.0),)) for t in toks]
    i2 = next(k for k, t in enumerate(toks) if t == " 2")
    i5 = [k for k, t in enumerate(toks) if t == " 5"][-1]
    lps[i2] = TokenLogprob(" 2", math.log(0.6), ((" 2", math.log(0.6)), (" 1", math.log(0.4))))
    lps[i5] = TokenLogprob(" 5", math.log(0.5), ((" 5", math.log(0.5)), ("5", math.log(0.25)), (" 4", math.log(0.25))))
    d = score_distributions(lps, [1, 2, 3, 4, 5], ["a", "b"])
    assert d["a"].probs == {1: 0.4, 2: 0.6} and abs(d["a"].expected - 1.6) < 1e-9
    # "5" and " 5" are the same score; the "score: 5" inside the rationale string is no score place
    assert d["b"].probs == {4: 0.25, 5: 0.75} and abs(d["b"].expected - 4.75) < 1e-9


def test_a_server_ignoring_response_format_is_named_once_in_the_summary(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    def prose(req: dict[str, Any]) -> str:
        return f"The responder is kind. [[{fake_score(req, metric_of(req) or '?')}]]"

    inp = write_records(tmp_path / "in.jsonl", [record(i) for i in range(2)])
    with OpenAIServer.like("transformers", prose, models=["pinned"]) as srv:
        r = cli("judge", inp, "-o", tmp_path / "o.jsonl", "--model", "openai:pinned", "--base-url", srv.base_url,
                "--metrics", "fluency", "--json")
        assert r.code == 0, r.stderr
    s = json.loads(r.stdout)
    so = s["structured_output"]
    assert so["ignored_by_server"] is True and so["schema_invalid"] == 2 and so["structured_answers"] == 2
    assert "ignores response_format" in so["message"] and "transformers serve" in so["message"]
    assert s["warnings"] == [so["message"]]
    assert s["scoring"]["mode"] == "text"  # transformers serve returns no log-probs
    rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(row["status"] == "ok" and row["expected_scores"] == {"fluency": None} for row in rows)


def test_wrong_model_name_stops_judge_with_exit_1_and_the_servers_message(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    inp = write_records(tmp_path / "in.jsonl", [record(i) for i in range(4)])
    with OpenAIServer.like("transformers", models=["pinned"]) as srv:
        r = cli("judge", inp, "-o", tmp_path / "o.jsonl", "--model", "wrong", "--base-url", srv.base_url,
                "--concurrency", "2")
        calls = srv.count()
    assert r.code == 1
    assert "HTTP 400" in r.stderr and "Server is pinned to 'pinned'; requested 'wrong'." in r.stderr
    assert "Traceback" not in r.stderr
    assert calls <= 4  # stopped, not 4 dialogues × 7 metrics × retries
    out = tmp_path / "o.jsonl"
    assert not out.exists() or not any(json.loads(x)["status"] == "unscored"
                                       for x in out.read_text(encoding="utf-8").splitlines())


def test_wrong_model_name_stops_eval_emotions_with_exit_1(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from metrics_util import dialogue, write_jsonl

    data = write_jsonl(tmp_path / "d.jsonl", [dialogue("d1", "joy", "en", ["I passed!", "Congratulations!"], "exam")])
    with OpenAIServer(models=["served"]) as srv:
        r = cli("eval", "emotions", data, "--model", "openai:nope", "--base-url", srv.base_url, "-o", tmp_path / "e",
                "--no-bertscore", "--vectors", "none")
    assert r.code == 1 and "The model `nope` does not exist." in r.stderr and "Traceback" not in r.stderr


def test_eval_emotions_no_structured_sends_no_schema(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from metrics_util import dialogue, write_jsonl

    data = write_jsonl(tmp_path / "d.jsonl", [dialogue("d1", "joy", "en", ["I passed!", "Congratulations!"], "exam")])
    with OpenAIServer.like("transformers", lambda req: "Joy", models=["pinned"]) as srv:
        r = cli("eval", "emotions", data, "--model", "openai:pinned", "--base-url", srv.base_url, "-o", tmp_path / "e",
                "--no-bertscore", "--vectors", "none", "--no-structured")
        assert r.code == 0, r.stderr
        assert "response_format" not in srv.requests[0]
    row = json.loads((tmp_path / "e" / "predictions.jsonl").read_text(encoding="utf-8"))
    assert row["predicted"] == "joy" and row["decoding"] == "free" and row["schema_valid"] is None


def test_distribution_in_the_flat_all_in_one_form() -> None:
    text = '{"scores": {"a": 3, "b": 1}}'
    toks = split_tokens(text)
    lps = [TokenLogprob(t, 0.0, ((t, 0.0),)) for t in toks]
    i3 = toks.index(" 3")
    lps[i3] = TokenLogprob(" 3", math.log(0.5), ((" 3", math.log(0.5)), (" 2", math.log(0.3)), (" 5", math.log(0.2))))
    d = score_distributions(lps, [1, 2, 3, 4, 5], ["a", "b"])
    assert abs(d["a"].expected - (0.3 * 2 + 0.5 * 3 + 0.2 * 5)) < 1e-9 and d["b"].probs == {1: 1.0}
