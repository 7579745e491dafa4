"""The vllm: backend's submission queue, with a stand-in engine (vLLM itself needs a GPU): one
engine, entered by one thread, concurrent calls batched into ``LLM.chat`` batches; schema requests
refused when the installed vLLM cannot enforce them."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from kyokan.models import GenerationParams, ModelError
from kyokan.models.backends.vllm import VLLMChatModel, structured_output_classes
from models_util import user


@dataclass
class SamplingParams:  # the fields kyokan sets on vllm.SamplingParams
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] | None = None
    logprobs: int | None = None
    structured_outputs: Any = None
    guided_decoding: Any = None


@dataclass
class StructuredOutputsParams:
    json: Any = None


@dataclass
class Logprob:
    logprob: float
    rank: int
    decoded_token: str


@dataclass
class CompletionOutput:
    text: str
    token_ids: list[int]
    finish_reason: str
    logprobs: list[dict[int, Logprob]] | None = None


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]


@dataclass
class StandInLLM:
    """Answers ``LLM.chat`` like vLLM, and raises if two threads are ever inside it at once."""

    latency: float = 0.05
    calls: list[int] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)
    _inside: threading.Lock = field(default_factory=threading.Lock)

    def chat(self, messages: list[list[dict[str, str]]], sampling: list[SamplingParams], use_tqdm: bool = True,
             lora_request: Any = None) -> list[RequestOutput]:
        if not self._inside.acquire(blocking=False):
            raise RuntimeError("LLM entered concurrently")
        try:
            assert len(messages) == len(sampling)
            self.threads.add(threading.current_thread().name)
            self.calls.append(len(messages))
            time.sleep(self.latency)
            outs = []
            for msgs, sp in zip(messages, sampling, strict=True):
                words = ("echo " + msgs[-1]["content"] + " STOP tail").split()[: sp.max_tokens]
                text = " ".join(words)
                finish = "length" if len(words) == sp.max_tokens else "stop"
                lps = None
                if sp.logprobs:
                    lps = [{i: Logprob(-0.1, 1, w), 10_000 + i: Logprob(-2.5, 2, w + "?")} for i, w in enumerate(words)]
                outs.append(RequestOutput(list(range(len(msgs[-1]["content"]))),
                                          [CompletionOutput(text, list(range(len(words))), finish, lps)]))
            return outs
        finally:
            self._inside.release()


def _model(engine: StandInLLM, structured: bool = True, **kw: Any) -> VLLMChatModel:
    mod = type("sampling_params", (), {"StructuredOutputsParams": StructuredOutputsParams} if structured else {})
    return VLLMChatModel("stand-in", engine=engine, sampling_params=SamplingParams,
                         structured_classes=structured_output_classes(mod), **kw)


def test_concurrent_agenerate_calls_are_batched_and_never_enter_the_engine_together() -> None:
    engine = StandInLLM()
    m = _model(engine, batch_wait=0.02)

    async def go() -> list[Any]:
        return await asyncio.gather(*(m.agenerate(user(f"q{i}"), GenerationParams(max_new_tokens=8))
                                      for i in range(40)))

    try:
        outs = asyncio.run(go())
    finally:
        m.close()
    assert [o.text for o in outs] == [f"echo q{i} STOP tail" for i in range(40)]  # each its own answer
    assert sum(engine.calls) == 40 and len(engine.calls) < 40  # batched, not one call per request
    assert max(engine.calls) > 1 and m.batches == engine.calls
    assert engine.threads == {"kyokan-vllm-engine"}  # only the worker thread ever entered it


def test_sync_threads_and_async_callers_share_the_one_queue() -> None:
    engine = StandInLLM(latency=0.02)
    m = _model(engine)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for c in m.generate_batch([user(f"t{k}-{i}") for i in range(5)], GenerationParams(max_new_tokens=4)):
                assert c.text.startswith(f"echo t{k}-")
        except BaseException as e:  # collected, so a failure shows in the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m.close()
    assert not errors and sum(engine.calls) == 30


def test_sampling_params_stop_finish_reason_and_logprobs() -> None:
    engine = StandInLLM(latency=0)
    m = _model(engine)
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    sp = m.sampling(GenerationParams(max_new_tokens=5, temperature=0.3, top_p=0.9, seed=7, stop=("STOP",),
                                     json_schema=schema, top_logprobs=3))
    assert sp.structured_outputs == StructuredOutputsParams(json=schema) and sp.guided_decoding is None
    assert (sp.max_tokens, sp.temperature, sp.top_p, sp.seed, sp.stop, sp.logprobs) == (5, 0.3, 0.9, 7, ["STOP"], 3)
    # the stand-in leaves "STOP" in: the backend cuts it like every other backend does
    c = m.generate(user("a"), GenerationParams(max_new_tokens=20, stop=("STOP",)))
    assert c.text == "echo a " and c.finish_reason == "stop"
    c = m.generate(user("a b c d"), GenerationParams(max_new_tokens=3, top_logprobs=2))
    assert c.finish_reason == "length" and c.usage.completion_tokens == 3
    assert c.logprobs is not None and [t.token for t in c.logprobs] == ["echo", "a", "b"]
    assert c.logprobs[0].top == (("echo", -0.1), ("echo?", -2.5))
    m.close()


def test_a_schema_request_is_refused_when_this_vllm_cannot_enforce_it() -> None:
    engine = StandInLLM(latency=0)
    m = _model(engine, structured=False)
    assert m.capabilities()["grammar"] is False
    with pytest.raises(ModelError, match="cannot enforce the JSON schema"):
        m.generate(user("a"), GenerationParams(json_schema={"type": "object"}))
    assert engine.calls == []  # refused before the engine
    assert m.generate(user("free"), GenerationParams(max_new_tokens=3)).text == "echo free STOP"
    m.close()


def test_an_engine_failure_fails_that_batch_only() -> None:
    class Flaky(StandInLLM):
        def chat(self, messages, sampling, use_tqdm=True, lora_request=None):  # type: ignore[no-untyped-def]
            if any("boom" in ms[-1]["content"] for ms in messages):
                raise RuntimeError("CUDA out of memory")
            return super().chat(messages, sampling, use_tqdm, lora_request)

    m = _model(Flaky(latency=0))
    with pytest.raises(ModelError, match="CUDA out of memory"):
        m.generate(user("boom"), GenerationParams())
    assert m.generate(user("fine"), GenerationParams(max_new_tokens=2)).text == "echo fine"
    m.close()
