"""`kyokan eval emotions` against a real loopback OpenAI-compatible server."""

from __future__ import annotations

import json

import metrics_util  # noqa: F401 - offline env
from kyokan.testing.openai_server import Fault, OpenAIServer
from metrics_util import dialogue, read_jsonl, write_jsonl


def _data(tmp_path):
    rows = [dialogue("d1", "joy", "ja", ["合格した！", "おめでとう！"], "試験に合格した"),
            dialogue("d2", "sadness", "ja", ["犬が死んだ。", "それはつらいね。"], "犬が死んだ"),
            dialogue("d3", "fear", "ja", ["手術が怖い。", "不安だよね。"], "手術の前"),
            dialogue("d4", "anger", "ja", ["ひどい扱いを受けた。", "それは腹が立つね。"], "病院で")]
    return write_jsonl(tmp_path / "data.jsonl", rows)


ANSWERS = {"試験に合格した": '{"emotion": "喜び"}', "犬が死んだ": '{"emotion": "悲しみ"}',
           "手術の前": '{"emotion": "強い恐れ"}', "病院で": "怒り"}


def responder(req):
    user = req["messages"][-1]["content"]
    assert req["response_format"]["json_schema"]["schema"]["properties"]["emotion"]["enum"][0] == "称賛"
    for k, v in ANSWERS.items():
        if k in user:
            return v
    return "?"


def test_eval_emotions_predicts_flags_and_resumes(tmp_path) -> None:
    from kyokan.metrics.emotions import predict_emotions
    from kyokan.metrics.labels import read_predictions, score_labels
    from kyokan.taxonomy import get_taxonomy

    data = _data(tmp_path)
    out = tmp_path / "run"
    with OpenAIServer(responder=responder, script=[Fault.status(500)]) as srv:
        info = predict_emotions(data, "openai:kyokan-test", out, base_url=srv.base_url, concurrency=2)
        assert info["predicted"] == 4 and info["failed"] == 0
        rows = {r["id"]: r for r in read_jsonl(out / "predictions.jsonl")}
        assert rows["d1"]["predicted"] == "joy" and not rows["d1"]["off_list"]
        assert rows["d3"]["predicted"] == "fear" and rows["d3"]["off_list"] and "強い恐れ" in rows["d3"]["raw"]
        assert rows["d4"]["predicted"] == "anger"  # plain text answer parsed tolerantly
        calls = srv.count()
        # rerun: nothing left to do, no new calls
        predict_emotions(data, "openai:kyokan-test", out, base_url=srv.base_url)
        assert srv.count() == calls
    s = score_labels(read_predictions(out / "predictions.jsonl", get_taxonomy()), out, bertscore=False,
                     vectors="none").to_json()
    assert s["accuracy"]["mean"] == 1.0 and s["off_list"] == 1
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["n"] == 4
