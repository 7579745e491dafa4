"""The hf: backend on a random 2-layer Llama with SmolLM2's real tokenizer (offline, fast)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kyokan.models import GenerationParams, ModelError, load_model
from kyokan.models.backends.hf import HFChatModel
from kyokan.testing import tiny_causal_lm
from models_util import torch_threads, user

PROMPTS = [user("hello " * (i + 1) + f"number {i}") for i in range(5)]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():  # type: ignore[no-untyped-def]
    yield from torch_threads(1)


@pytest.fixture(scope="module")
def tiny() -> Path:
    return tiny_causal_lm()


@pytest.fixture(scope="module")
def model(tiny: Path) -> HFChatModel:
    m = load_model(f"hf:{tiny}", batch_size=4)
    assert isinstance(m, HFChatModel)
    return m


def test_greedy_is_deterministic_and_batch_independent(model: HFChatModel) -> None:
    gp = GenerationParams(max_new_tokens=6)
    batched = model.batch(PROMPTS, gp)
    single = [model.generate(p, gp) for p in PROMPTS]
    assert [c.text for c in batched] == [c.text for c in single]  # type: ignore[union-attr]
    c = single[0]
    assert c.finish_reason in ("length", "stop") and 0 < c.usage.completion_tokens <= 6
    # prompt tokens: the rendered chat template, without left padding
    assert c.usage.prompt_tokens == len(model.tokenizer(model.render(PROMPTS[0]), add_special_tokens=False)["input_ids"])


def test_sampling_is_seeded_per_row(model: HFChatModel) -> None:
    def run(prompts: list, seeds: list[int]) -> list[str]:
        async def go() -> list[str]:
            comps = await asyncio.gather(*(model.agenerate(p, GenerationParams(max_new_tokens=8, temperature=1.0,
                                                                               seed=s)) for p, s in zip(prompts, seeds, strict=True)))
            return [c.text for c in comps]

        return asyncio.run(go())

    a = run(PROMPTS, [1, 2, 3, 4, 5])
    # same rows in another order and in other batches: each row's text depends only on its seed
    b = run(PROMPTS[::-1], [5, 4, 3, 2, 1])[::-1]
    assert a == b
    alone = run([PROMPTS[2]], [3])
    assert alone == [a[2]]
    assert run([PROMPTS[2]], [99]) != alone  # another seed, another sample (random 49k-token model)


def test_max_new_tokens_and_stop_strings(model: HFChatModel) -> None:
    c = model.generate(PROMPTS[1], GenerationParams(max_new_tokens=3, temperature=1.0, seed=0))
    assert c.usage.completion_tokens == 3 and c.finish_reason == "length"
    full = model.generate(PROMPTS[1], GenerationParams(max_new_tokens=12, temperature=1.0, seed=7)).text
    stop = full.strip()[3:6]
    if stop:
        cut = model.generate(PROMPTS[1], GenerationParams(max_new_tokens=12, temperature=1.0, seed=7, stop=(stop,)))
        assert stop not in cut.text and full.startswith(cut.text) and cut.finish_reason == "stop"


def test_usage_total_and_info(model: HFChatModel, tiny: Path) -> None:
    before = model.usage.completion_tokens
    c = model.generate(PROMPTS[0], GenerationParams(max_new_tokens=2))
    assert model.usage.completion_tokens == before + c.usage.completion_tokens
    info = model.info()
    assert info["backend"] == "hf" and info["path"] == str(tiny) and info["device"] == "cpu"
    assert info["chat_template"] == "model" and info["dtype"] == "torch.float32" and info["adapter"] is None


def test_lora_adapter(tiny: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(tiny))
    cfg = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, cfg)
    adapter = tmp_path / "lora"
    peft_model.save_pretrained(str(adapter))
    cfg_json = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg_json["base_model_name_or_path"] == str(tiny)

    gp = GenerationParams(max_new_tokens=6)
    plain = load_model(f"hf:{tiny}").generate(PROMPTS[0], gp).text
    with_adapter = load_model(f"hf:{tiny}", adapter=str(adapter))
    assert with_adapter.info()["adapter"] == str(adapter)
    text = with_adapter.generate(PROMPTS[0], gp).text
    assert text != plain  # the (random, non-zero) LoRA changes the output
    # an adapter folder alone finds its base model
    assert load_model(f"hf:{adapter}").generate(PROMPTS[0], gp).text == text
    with pytest.raises(ModelError, match=r"adapter_config\.json"):
        load_model(f"hf:{tiny}", adapter=str(tmp_path))


def test_tokenizer_without_chat_template_gets_one(tiny: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "no-template"
    shutil.copytree(tiny, copy)
    (copy / "chat_template.jinja").unlink(missing_ok=True)
    tc = json.loads((copy / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (copy / "tokenizer_config.json").write_text(json.dumps(tc))
    m = load_model(f"hf:{copy}")
    assert m.info()["chat_template"] == "kyokan-generic"
    assert m.render(user("hi", system="be kind")).endswith("### User:\nhi\n\n### Assistant:\n")  # type: ignore[attr-defined]
    given = load_model(f"hf:{copy}", chat_template="{% for m in messages %}[{{ m['content'] }}]{% endfor %}>")
    assert given.render(user("hi")) == "[hi]>"  # type: ignore[attr-defined]


def test_bad_specs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such folder"):
        load_model(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(ModelError, match="unknown model backend 'nosuch'"):
        load_model("nosuch:thing")
    with pytest.raises(ModelError, match="unknown model spec"):
        load_model("gpt-4o")
    with pytest.raises(ModelError, match="names no model"):
        load_model("hf:")
    with pytest.raises(ModelError, match="base-url"):
        load_model("hf:x", base_url="http://127.0.0.1:1/v1")


def test_on_decode_reports_every_step_of_a_batch(model: HFChatModel) -> None:
    """A batch returns all its rows at once; on_decode is the progress meanwhile (kyokan generate)."""
    calls: list[tuple[int, int, int, int]] = []
    model.on_decode = lambda *a: calls.append(a)
    try:
        comps = model.batch(PROMPTS[:3], GenerationParams(max_new_tokens=5))
    finally:
        model.on_decode = None
    assert [c[0] for c in calls] == list(range(len(calls))) and 1 <= len(calls) <= 5
    assert {(c[1], c[3]) for c in calls} == {(5, 3)}
    ended = [c[2] for c in calls]
    assert ended == sorted(ended) and all(0 <= e <= 3 for e in ended)
    assert max(c.usage.completion_tokens for c in comps) == len(calls)  # type: ignore[union-attr]
    n = len(calls)
    model.generate(PROMPTS[0], GenerationParams(max_new_tokens=2))
    assert len(calls) == n  # no callback, no calls
