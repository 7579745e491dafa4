"""The openai: backend against loopback servers that refuse and answer as real ones do (vLLM's
and transformers serve's behaviour, read from their sources): configuration errors, stop strings,
length cuts, log-probs, and recognising transformers serve."""

from __future__ import annotations

import json

import httpx
import pytest

from kyokan.models import GenerationParams, ServerConfigError, load_model
from kyokan.models.backends.openai import OpenAIChatModel
from kyokan.testing.openai_server import OpenAIServer, Reply, split_tokens
from models_util import user


def test_unknown_model_is_a_configuration_error_with_the_servers_message() -> None:
    with OpenAIServer(models=["served"]) as srv:
        m = load_model("openai:other", base_url=srv.base_url, max_retries=3)
        with pytest.raises(ServerConfigError, match=r"HTTP 404 .*The model `other` does not exist") as e:
            m.generate(user("hi"))
        assert e.value.status == 404 and e.value.exit_code == 1
        assert srv.count() == 1  # not retried
        assert load_model("openai:served", base_url=srv.base_url).generate(user("hi")).text == "echo: hi"


def test_transformers_like_server_refuses_with_fastapi_detail_bodies() -> None:
    with OpenAIServer.like("transformers", models=["pinned"]) as srv:
        r = httpx.post(f"{srv.base_url}/chat/completions", json={"model": "x", "messages": []})
        assert r.status_code == 400 and r.json() == {"detail": "Server is pinned to 'pinned'; requested 'x'."}
        m = load_model("openai:pinned", base_url=srv.base_url, extra_body={"guided_json": {}})
        with pytest.raises(ServerConfigError, match=r"HTTP 422 .*Unexpected fields in the request: \{'guided_json'\}"):
            m.generate(user("hi"))
        # its own extra field is accepted
        ok = httpx.post(f"{srv.base_url}/chat/completions",
                        json={"model": "pinned", "messages": [{"role": "user", "content": "a"}], "generation_config": "{}"})
        assert ok.status_code == 200


def test_stop_strings_are_cut_in_the_client_when_the_server_leaves_them() -> None:
    reply = "first part END second part"
    for apply_stop in (True, False):
        with OpenAIServer(responder=lambda r: reply, apply_stop=apply_stop) as srv:
            c = load_model("openai:t", base_url=srv.base_url).generate(user("x"), GenerationParams(stop=("END",)))
            assert c.text == "first part " and c.finish_reason == "stop"
            assert srv.requests[0]["stop"] == ["END"]


def test_a_reply_longer_than_max_tokens_is_cut_with_finish_reason_length() -> None:
    with OpenAIServer(responder=lambda r: "one two three four five") as srv:
        c = load_model("openai:t", base_url=srv.base_url).generate(user("x"), GenerationParams(max_new_tokens=2))
        assert c.text == "one two" and c.finish_reason == "length" and c.usage.completion_tokens == 2


def test_logprobs_are_asked_for_and_read_back() -> None:
    text = '{"score": 4}'
    toks = split_tokens(text)
    assert "".join(toks) == text
    lps = [(t, -0.01, [(t, -0.01)]) for t in toks]
    i = toks.index(" 4")
    lps[i] = (" 4", -0.5, [(" 4", -0.5), (" 3", -1.2), ("5", -2.0)])
    with OpenAIServer(responder=lambda r: Reply(text, lps)) as srv:
        c = load_model("openai:t", base_url=srv.base_url).generate(user("x"), GenerationParams(top_logprobs=3))
        assert srv.requests[0]["logprobs"] is True and srv.requests[0]["top_logprobs"] == 3
        assert c.logprobs is not None and "".join(t.token for t in c.logprobs) == text
        assert c.logprobs[i].top == ((" 4", -0.5), (" 3", -1.2), ("5", -2.0))
        load_model("openai:t", base_url=srv.base_url).generate(user("x"))
        assert "logprobs" not in srv.requests[1]


def test_transformers_serve_is_recognised_and_sent_generation_config_for_sampling() -> None:
    with OpenAIServer.like("transformers", models=["pinned"]) as srv:
        m = load_model("openai:pinned", base_url=srv.base_url)
        assert isinstance(m, OpenAIChatModel)
        c = m.generate(user("x"), GenerationParams(temperature=0.7, top_p=0.9, top_logprobs=5,
                                                   json_schema={"type": "object"}))
        assert m.server_kind == "transformers-serve" and srv.count("/v1/models") == 1
        req = srv.requests[0]
        assert json.loads(req["generation_config"]) == {"do_sample": True, "temperature": 0.7, "top_p": 0.9,
                                                        "max_new_tokens": 256}
        assert "logprobs" not in req  # known to be ignored there
        assert c.sampling == {"temperature": 0.7, "top_p": 0.9, "via": "generation_config", "do_sample": True}
        assert c.constrained == "response_format"
        caps = m.capabilities()
        assert caps["response_format"] is False and caps["logprobs"] is False and "ignores" in caps["note"]
        greedy = m.generate(user("y"), GenerationParams(temperature=0.0))
        assert "generation_config" not in srv.requests[1] and greedy.sampling["temperature"] == 0.0
    # any other server: no probe result, no extra field (a strict server would refuse it)
    with OpenAIServer(unknown_fields="reject") as srv:
        m = load_model("openai:t", base_url=srv.base_url)
        m.generate(user("x"), GenerationParams(temperature=0.7))
        assert m.server_kind is None and "generation_config" not in srv.requests[0]
