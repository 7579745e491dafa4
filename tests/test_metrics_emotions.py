"""`kyokan eval emotions` against a real loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import math

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


def test_a_local_model_names_a_label_for_every_dialogue_with_a_ranking(tmp_path) -> None:
    """A random tiny Llama knows nothing, yet every answer is a label: every label's answer is
    scored and the most probable is named; the top-k are kept, sorted, with their probabilities."""
    from kyokan.metrics.emotions import answer_choices, build_messages, predict_emotions
    from kyokan.models import GenerationParams, load_model
    from kyokan.taxonomy import get_taxonomy
    from kyokan.testing import tiny_causal_lm

    data = _data(tmp_path)
    model = load_model(f"hf:{tiny_causal_lm()}", batch_size=4)
    info = predict_emotions(data, "hf:tiny", tmp_path / "run", model=model, top_k=3)
    rows = read_jsonl(tmp_path / "run" / "predictions.jsonl")
    tax = get_taxonomy()
    assert info["predicted"] == 4 and info["decoding"] == {"choices": 4}
    for r in rows:
        assert r["predicted"] in tax and not r["off_list"] and r["decoding"] == "choices"
        assert r["scoring"] == "probabilities" and r["schema_valid"] is True
        probs = [x["prob"] for x in r["ranking"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)
        assert r["ranking"][0]["label"] == r["predicted"]
    # the ranking is the model's own: recompute one row's probabilities directly
    from kyokan.data import load_dialogues

    d = load_dialogues(data)[0]
    c = model.generate(build_messages(d, tax, d.lang), GenerationParams(choices=answer_choices(tax, d.lang)))
    first = next(r for r in rows if r["id"] == d.id)
    top = sorted(c.choice_logprobs.values(), reverse=True)[:3]
    assert [x["prob"] for x in first["ranking"]] == [round(math.exp(v), 6) for v in top]
    # --no-structured: free text from a random model names nothing on the list
    predict_emotions(data, "hf:tiny", tmp_path / "free", model=model, structured=False, max_new_tokens=6)
    free = read_jsonl(tmp_path / "free" / "predictions.jsonl")
    assert all(r["decoding"] == "free" and "ranking" not in r for r in free)
