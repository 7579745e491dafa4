"""The openai: backend against a real loopback OpenAI-compatible server (no mocks)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from kyokan.models import GenerationParams, ModelError, load_model
from kyokan.models.backends.openai import parse_retry_after
from kyokan.testing.openai_server import Fault, OpenAIServer
from models_util import last_user, user

FAST = {"backoff_base": 0.01, "backoff_max": 0.05}


def test_server_speaks_openai_json() -> None:
    with OpenAIServer(models=["m1", "m2"]) as srv:
        assert srv.base_url.startswith("http://127.0.0.1:") and srv.base_url.endswith("/v1")
        r = httpx.post(f"{srv.base_url}/chat/completions",
                       json={"model": "m1", "messages": [{"role": "user", "content": "hi there"}]})
        body = r.json()
        assert r.status_code == 200
        assert body["choices"][0]["message"] == {"role": "assistant", "content": "echo: hi there"}
        u = body["usage"]
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] and u["completion_tokens"] > 0
        assert [m["id"] for m in httpx.get(f"{srv.base_url}/models").json()["data"]] == ["m1", "m2"]
        assert httpx.post(f"{srv.base_url}/nope", json={}).status_code == 404
        assert httpx.post(f"{srv.base_url}/chat/completions", content=b"{oops").status_code == 400
        assert srv.counts["/v1/chat/completions"] == 2 and srv.counts["/v1/models"] == 1
        assert len(srv.requests) == 1  # the unparseable body is counted but not a request dict


def test_generate_passes_params_and_schema() -> None:
    with OpenAIServer(responder=lambda req: '{"score": 4}') as srv:
        m = load_model("openai:judge-x", base_url=srv.base_url)
        schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
        c = m.generate(user("rate"), GenerationParams(max_new_tokens=7, temperature=0.7, top_p=0.9, seed=3,
                                                      stop=("\n\n",), json_schema=schema, json_schema_name="score"))
        assert c.text == '{"score": 4}' and c.attempts == 1 and c.finish_reason == "stop"
        req = srv.requests[0]
        assert req["model"] == "judge-x" and req["max_tokens"] == 7 and req["temperature"] == 0.7
        assert req["top_p"] == 0.9 and req["seed"] == 3 and req["stop"] == ["\n\n"]
        assert req["response_format"] == {"type": "json_schema", "json_schema": {"name": "score", "schema": schema}}
        # no schema, no seed: not sent
        m.generate(user("x"))
        assert "response_format" not in srv.requests[1] and "seed" not in srv.requests[1]


def test_retry_after_is_honoured_on_429() -> None:
    with OpenAIServer(script=[Fault.status(429, retry_after=0.4)]) as srv:
        m = load_model("openai:t", base_url=srv.base_url, **FAST)
        t0 = time.perf_counter()
        c = m.generate(user("hello"))
        elapsed = time.perf_counter() - t0
        assert c.text == "echo: hello" and c.attempts == 2
        assert elapsed >= 0.4  # waited what the server asked, not the 10 ms backoff
        assert srv.outcomes == {"status:429": 1, "ok": 1}


def test_every_transient_fault_is_retried() -> None:
    script = [Fault.status(500), Fault.status(503), Fault.status(408), Fault.status(409), Fault.garbage(),
              Fault.json({"no": "choices"}), Fault.disconnect(), Fault.delay(2.0)]
    with OpenAIServer(script=script) as srv:
        m = load_model("openai:t", base_url=srv.base_url, timeout=0.3, max_retries=len(script), **FAST)
        c = m.generate(user("persist"))
        assert c.text == "echo: persist" and c.attempts == len(script) + 1
        assert m.retries == len(script) and m.usage.completion_tokens == c.usage.completion_tokens > 0


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(code: int) -> None:
    with OpenAIServer(script=[Fault.status(code, message="nope: bad request")]) as srv:
        m = load_model("openai:t", base_url=srv.base_url, **FAST)
        with pytest.raises(ModelError, match=f"HTTP {code}.*nope: bad request"):
            m.generate(user("x"))
        assert srv.calls == 1


def test_gives_up_after_max_retries() -> None:
    with OpenAIServer(script=[Fault.status(500)] * 10) as srv:
        m = load_model("openai:t", base_url=srv.base_url, max_retries=2, **FAST)
        with pytest.raises(ModelError, match=r"gave up after 3 attempt\(s\).*HTTP 500"):
            m.generate(user("x"))
        assert srv.calls == 3 and m.failures == 1


def test_concurrency_is_bounded_and_used() -> None:
    with OpenAIServer(latency=0.05) as srv:
        m = load_model("openai:t", base_url=srv.base_url, concurrency=4)
        out = m.batch([user(f"q{i}") for i in range(24)])
        assert [c.text for c in out if not isinstance(c, BaseException)] == [f"echo: q{i}" for i in range(24)]
        assert srv.max_concurrency == 4


def test_batch_keeps_order_and_returns_failures_in_place() -> None:
    def responder(req: dict) -> str | Fault:
        q = last_user(req)
        return Fault.status(400, message="refused") if q == "q2" else f"a-{q}"

    with OpenAIServer(responder=responder, fault_rate=0.3, fault_seed=1) as srv:
        m = load_model("openai:t", base_url=srv.base_url, concurrency=3, **FAST)
        out = m.batch([user(f"q{i}") for i in range(6)])
        assert isinstance(out[2], ModelError)
        assert [o.text for i, o in enumerate(out) if i != 2] == ["a-q0", "a-q1", "a-q3", "a-q4", "a-q5"]  # type: ignore[union-attr]
        assert sum(srv.outcomes[k] for k in ("status:429", "status:500")) > 0  # random faults did happen


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("KYOKAN_API_KEY", "sk-test-123")
    with OpenAIServer(api_key="sk-test-123") as srv:
        assert load_model("openai:t", base_url=srv.base_url).generate(user("k")).text == "echo: k"
        assert srv.log[-1].headers["authorization"] == "Bearer sk-test-123"
        monkeypatch.delenv("KYOKAN_API_KEY")
        monkeypatch.setenv("OPENAI_API_KEY", "wrong")
        with pytest.raises(ModelError, match="HTTP 401"):
            load_model("openai:t", base_url=srv.base_url).generate(user("k"))
        monkeypatch.delenv("OPENAI_API_KEY")
        no_key = load_model("openai:t", base_url=srv.base_url)
        with pytest.raises(ModelError, match="HTTP 401"):
            no_key.generate(user("k"))
        assert "authorization" not in srv.log[-1].headers


def test_openai_without_key_or_base_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KYOKAN_API_KEY", "OPENAI_API_KEY", "KYOKAN_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ModelError, match="KYOKAN_API_KEY"):
        load_model("openai:gpt-4o-mini")


def test_connection_refused_is_retried_then_reported() -> None:
    srv = OpenAIServer().start()
    url = srv.base_url
    srv.stop()
    m = load_model("openai:t", base_url=url, max_retries=1, **FAST)
    with pytest.raises(ModelError, match="connection error"):
        m.generate(user("x"))


def test_usage_totals_and_async_use() -> None:
    async def run(base_url: str) -> tuple[list[str], int]:
        m = load_model("openai:t", base_url=base_url)
        try:
            comps = await asyncio.gather(*(m.agenerate(user(w), GenerationParams()) for w in ["a b", "c"]))
            return [c.text for c in comps], m.usage.completion_tokens
        finally:
            await m.aclose()

    with OpenAIServer() as srv:
        texts, completion = asyncio.run(run(srv.base_url))
        assert texts == ["echo: a b", "echo: c"]
        assert completion == (3 + 1) + (2 + 1)  # echo, :, words


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_server_scripts_and_truncation() -> None:
    with OpenAIServer(script=["fixed", None], responder=lambda r: "one two three four", truncate=True) as srv:
        c = httpx.post(f"{srv.base_url}/chat/completions",
                       json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 2}).json()
        assert c["choices"][0]["message"]["content"] == "fixed"
        c = httpx.post(f"{srv.base_url}/chat/completions",
                       json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 2}).json()
        assert c["choices"][0]["message"]["content"] == "one two" and c["choices"][0]["finish_reason"] == "length"
