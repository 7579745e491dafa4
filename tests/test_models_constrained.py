"""Grammar-constrained decoding, per-token log-probs and choice scoring in the hf: backend, on a
random 2-layer Llama with SmolLM2's real tokenizer; each figure is checked against an independent
computation (a plain forward pass of the same model)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from kyokan.models import GenerationParams, load_model
from kyokan.models.backends.hf import HFChatModel
from kyokan.models.constrain import schema_errors, valid_json_answer
from kyokan.testing import tiny_causal_lm
from models_util import torch_threads, user

SCORE = {"type": "object", "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}},
         "required": ["score"], "additionalProperties": False}
LABEL = {"type": "object", "properties": {"why": {"type": "string", "maxLength": 12},
                                          "emotion": {"type": "string", "enum": ["joy", "fear", "anger"]}},
         "required": ["why", "emotion"], "additionalProperties": False}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():  # type: ignore[no-untyped-def]
    yield from torch_threads(1)


@pytest.fixture(scope="module")
def model() -> HFChatModel:
    m = load_model(f"hf:{tiny_causal_lm()}", batch_size=4)
    assert isinstance(m, HFChatModel)
    return m


def test_a_random_model_answers_valid_json_under_the_schema(model: HFChatModel) -> None:
    for i, schema in enumerate((SCORE, LABEL)):
        c = model.generate(user(f"question {i}"), GenerationParams(max_new_tokens=40, json_schema=schema))
        assert c.constrained == "grammar" and c.finish_reason == "stop", c.text
        assert valid_json_answer(c.text, schema), c.text
    # free decoding of the same random model is no JSON at all
    free = model.generate(user("question 0"), GenerationParams(max_new_tokens=12))
    assert free.constrained is None and not valid_json_answer(free.text, SCORE)


def test_a_cut_constrained_answer_says_length(model: HFChatModel) -> None:
    c = model.generate(user("q"), GenerationParams(max_new_tokens=3, json_schema=LABEL))
    assert c.finish_reason == "length" and c.usage.completion_tokens == 3 and not valid_json_answer(c.text, LABEL)


def test_rows_with_and_without_schema_share_a_batch(model: HFChatModel) -> None:
    async def go():  # type: ignore[no-untyped-def]
        return await asyncio.gather(
            model.agenerate(user("a"), GenerationParams(max_new_tokens=12, json_schema=SCORE)),
            model.agenerate(user("b"), GenerationParams(max_new_tokens=12)),
            model.agenerate(user("c"), GenerationParams(max_new_tokens=40, json_schema=LABEL)))

    calls = model.calls
    a, b, c = asyncio.run(go())
    assert valid_json_answer(a.text, SCORE) and valid_json_answer(c.text, LABEL)
    assert b.constrained is None and model.calls == calls + 3
    alone = model.generate(user("b"), GenerationParams(max_new_tokens=12))
    assert alone.text == b.text  # a row's grammar does not leak into its neighbours


def test_logprobs_at_the_score_are_the_models_distribution_over_allowed_tokens(model: HFChatModel) -> None:
    import torch

    params = GenerationParams(max_new_tokens=12, json_schema=SCORE, top_logprobs=5)
    c = model.generate(user("rate this"), params)
    assert c.logprobs is not None
    tok = model.tokenizer
    gen = tok(c.text, add_special_tokens=False)["input_ids"]
    # find the score token and recompute the distribution there with a plain forward pass
    k = next(i for i, t in enumerate(c.logprobs) if t.token.strip() in {"1", "2", "3", "4", "5"})
    prompt = tok(model.render(user("rate this")), add_special_tokens=False)["input_ids"]
    steps = [tok.convert_tokens_to_ids(tok.tokenize(t.token)) for t in c.logprobs]
    prefix = [i for s in steps[:k] for i in s]
    with torch.inference_mode():
        logits = model.model(input_ids=torch.tensor([prompt + prefix])).logits[0, -1].float()
    alts = c.logprobs[k].top
    allowed = [tok.convert_tokens_to_ids(tok.tokenize(a)) for a, _ in alts]
    assert all(len(a) == 1 for a in allowed)  # single tokens (digits)
    ids = [a[0] for a in allowed]
    # the grammar allows only the five digits there: their probabilities under the model, renormalised
    assert len(ids) == 5 and {a.strip() for a, _ in alts} == {"1", "2", "3", "4", "5"}
    want = torch.log_softmax(logits[ids], dim=-1)
    got = torch.tensor([lp for _, lp in alts])
    assert torch.allclose(got, want, atol=1e-4)
    assert c.logprobs[k].logprob == pytest.approx(max(lp for _, lp in alts), abs=1e-5)  # greedy = argmax
    assert gen  # the answer re-tokenises


def test_choices_are_scored_exactly_and_the_most_probable_answers(model: HFChatModel) -> None:
    import torch

    choices = tuple(json.dumps({"emotion": e}) for e in ("joy", "fear", "sadness", "anger", "disappointment",
                                                          "disapproval", "disgust", "nervousness", "pride", "relief"))
    msgs = user("How does the speaker feel?")
    c = model.generate(msgs, GenerationParams(choices=choices))
    assert c.constrained == "choices" and c.choice_logprobs is not None and c.text in choices
    tok = model.tokenizer
    prompt = tok(model.render(msgs), add_special_tokens=False)["input_ids"]
    raw = []
    with torch.inference_mode():
        for ch in choices:  # independent: one full forward pass per choice, no shared cache
            ids = tok(ch, add_special_tokens=False)["input_ids"]
            lsm = torch.log_softmax(model.model(input_ids=torch.tensor([prompt + ids])).logits[0].float(), dim=-1)
            raw.append(sum(float(lsm[len(prompt) - 1 + j, t]) for j, t in enumerate(ids)))
    z = math.log(sum(math.exp(x) for x in raw))
    for ch, x in zip(choices, raw, strict=True):
        assert c.choice_logprobs[ch] == pytest.approx(x - z, abs=1e-4)
    assert c.text == choices[max(range(len(raw)), key=raw.__getitem__)]
    assert sum(math.exp(v) for v in c.choice_logprobs.values()) == pytest.approx(1.0, abs=1e-6)


def test_schema_errors_subset() -> None:
    assert schema_errors({"why": "x", "emotion": "joy"}, LABEL) == []
    assert schema_errors({"why": "x" * 13, "emotion": "joy"}, LABEL) == ["$.why: longer than 12 characters"]
    assert schema_errors({"emotion": "calm", "extra": 1}, LABEL) == [
        "$: missing 'why'", "$: unexpected 'extra'", "$.emotion: 'calm' is not one of the allowed values"]
    assert schema_errors({"score": True}, SCORE) == ["$.score: expected integer, got bool"]
    assert not valid_json_answer("Sure! {\"score\": 3}", SCORE)  # the whole answer must be the JSON


def test_info_names_the_engine(model: HFChatModel, tmp_path: Path) -> None:
    model.generate(user("x"), GenerationParams(max_new_tokens=8, json_schema=SCORE))
    info = model.info()["constrained_decoding"]
    assert info["engine"] == "llguidance" and info["version"]
