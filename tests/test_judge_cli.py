"""`kyokan judge` end to end through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

from judge_util import judge_responder, record, write_records
from kyokan.testing.openai_server import OpenAIServer


def test_all_in_one_english_table_and_summary_beside(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    recs = [record(i, source="sft" if i % 2 else "base") for i in range(6)] + [record(7, source="base", format_ok=False)]
    inp = write_records(tmp_path / "gen.jsonl", recs)
    out = tmp_path / "judged.jsonl"
    with OpenAIServer(responder=judge_responder("json")) as srv:
        base_url = srv.base_url
        r = cli("judge", inp, "-o", out, "--model", "judge-x", "--base-url", srv.base_url, "--all-in-one",
                "--lang", "en", "--concurrency", "3")
        assert r.code == 0, r.stderr
        assert srv.calls == 6  # one call per judged dialogue
        req = srv.requests[0]
        assert req["response_format"]["type"] == "json_schema"
        schema = req["response_format"]["json_schema"]["schema"]
        assert set(schema["properties"]["scores"]["required"]) == set(get_metrics())
        assert req["temperature"] == 0 and req["seed"] == 0
        assert "Rate the responder" in req["messages"][1]["content"]
    assert "| Source of dialogues |" in r.stdout and "| sft |" in r.stdout and "| base |" in r.stdout
    summary = json.loads((tmp_path / "judged.summary.json").read_text(encoding="utf-8"))
    assert summary["status_counts"] == {"base": {"ok": 3, "format_violation": 1}, "sft": {"ok": 3}}
    assert summary["provenance"]["judge"]["mode"] == "all_in_one"
    assert summary["provenance"]["models"][0]["base_url"] == base_url
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert all(r_["judge"]["models"] == ["openai:judge-x"] for r_ in rows)
    assert all(r_["rationales"]["fluency"] == "r-fluency" for r_ in rows if r_["status"] == "ok")


def get_metrics() -> list[str]:
    from kyokan.judge import EMPLIFAI_METRICS

    return list(EMPLIFAI_METRICS)


def test_user_errors_exit_2_without_traceback(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "turns": []}\n{"turns": []}\nnot json\n{"id": "a"}\n', encoding="utf-8")
    r = cli("judge", bad, "-o", tmp_path / "o.jsonl", "--model", "x", "--base-url", "http://127.0.0.1:9/v1")
    assert r.code == 2 and "Traceback" not in r.stderr
    assert f"{bad}:2: id: missing" in r.stderr and f"{bad}:4: id: duplicate id 'a'" in r.stderr
    r = cli("judge", bad, "-o", tmp_path / "o.jsonl", "--model", "x", "--base-url", "u", "--lang", "fr")
    assert r.code == 2 and "--lang must be ja or en" in r.stderr
    r = cli("judge", bad, "-o", tmp_path / "o.jsonl", "--model", "x", "--base-url", "u", "--rubric", "nope")
    assert r.code == 2 and "unknown rubric 'nope'" in r.stderr


def test_other_settings_on_an_existing_output_are_refused(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    inp = write_records(tmp_path / "in.jsonl", [record(1)])
    out = tmp_path / "o.jsonl"
    with OpenAIServer(responder=judge_responder("json")) as srv:
        assert cli("judge", inp, "-o", out, "--model", "j", "--base-url", srv.base_url,
                   "--metrics", "fluency").code == 0
        r = cli("judge", inp, "-o", out, "--model", "j", "--base-url", srv.base_url, "--metrics", "fluency",
                "--lang", "en")
        assert r.code == 2 and "other settings" in r.stderr
        assert cli("judge", inp, "-o", out, "--model", "j", "--base-url", srv.base_url, "--metrics", "fluency",
                   "--lang", "en", "--overwrite").code == 0


def test_unscored_rows_warn_and_strict_exits_1(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    inp = write_records(tmp_path / "in.jsonl", [record(1)])
    with OpenAIServer(responder=judge_responder("garbage")) as srv:
        r = cli("judge", inp, "-o", tmp_path / "o.jsonl", "--model", "j", "--base-url", srv.base_url,
                "--metrics", "fluency,harmlessness", "--max-reasks", "0", "--strict")
    assert r.code == 1 and "unscored or partial" in r.stderr
    row = json.loads((tmp_path / "o.jsonl").read_text(encoding="utf-8"))
    assert row["status"] == "unscored" and row["scores"] == {"fluency": None, "harmlessness": None}


def test_a_local_hf_model_judges_through_the_same_code(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """A random tiny Llama writes nonsense, but decoding under the answer's schema makes it answer in
    shape (a score in 1-5 with its probability-weighted twin); answers and their log-probs are
    cached like any other judge's. Without structure the nonsense is unscored (never 1)."""
    from kyokan.testing import tiny_causal_lm

    path = tiny_causal_lm()
    inp = write_records(tmp_path / "in.jsonl", [record(1)])
    args = ["judge", inp, "-o", tmp_path / "o.jsonl", "--model", f"hf:{path}", "--metrics", "fluency",
            "--max-new-tokens", "8", "--max-reasks", "0", "--json"]
    r = cli(*args)
    assert r.code == 0, r.stderr
    row = json.loads((tmp_path / "o.jsonl").read_text(encoding="utf-8"))
    assert row["status"] == "ok" and row["scores"]["fluency"] in range(1, 6)
    assert row["decoding"] == "grammar" and row["scoring"] == "probabilities" and row["usage"]["calls"] == 1
    probs = {int(k): v for k, v in row["score_probs"]["fluency"]["probs"].items()}
    assert abs(sum(probs.values()) - 1) < 1e-6
    assert abs(row["expected_scores"]["fluency"] - sum(s * p for s, p in probs.items())) < 1e-3
    summary = json.loads(r.stdout)
    assert summary["provenance"]["models"][0]["spec"] == f"hf:{path}"
    assert summary["scoring"]["mode"] == "probabilities" and summary["structured_output"]["decoding"] == {"grammar": 1}
    cell = summary["overall"]["fluency"]
    assert cell["expected_n"] == 1 and cell["expected_mean"] == row["expected_scores"]["fluency"]
    r2 = cli(*args, "--overwrite")
    assert json.loads(r2.stdout)["provenance"]["this_run"]["calls"]["cached"] == 1
    again = json.loads((tmp_path / "o.jsonl").read_text(encoding="utf-8"))
    assert again["expected_scores"] == row["expected_scores"]  # log-probs came back from the cache
    r3 = cli(*args, "--overwrite", "--no-structured", "--no-cache")
    assert r3.code == 0, r3.stderr
    free = json.loads((tmp_path / "o.jsonl").read_text(encoding="utf-8"))
    assert free["status"] == "unscored" and free["scores"] == {"fluency": None} and free["decoding"] == "free"
    assert free["errors"]["fluency"]["kind"] == "unparseable"
