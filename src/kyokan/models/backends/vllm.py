"""``vllm:<hub id or path>`` — vLLM's offline batch engine, for GPU users (optional extra: install
``vllm`` yourself; it is not needed on CPU machines). For a vLLM *server*, use
``openai:<served model> --base-url http://HOST:8000/v1`` instead.

Options (``load_model(..., **kw)``): ``tensor_parallel_size``, ``gpu_memory_utilization``,
``max_model_len``, ``dtype``, ``max_lora_rank``; ``adapter=`` serves a LoRA adapter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from kyokan.models.base import ChatModel, Completion, GenerationParams, Message, ModelError, Usage
from kyokan.models.registry import register_backend


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise ModelError("the vllm: backend needs vLLM (GPU): pip install vllm — or run `vllm serve MODEL` and "
                         "use openai:MODEL --base-url http://HOST:8000/v1") from e
    return vllm


class VLLMChatModel(ChatModel):
    """vLLM ``LLM.chat`` behind the chat interface; a whole ``abatch`` is one vLLM call."""

    def __init__(self, model: str, *, adapter: str | None = None, **engine_kw: Any) -> None:
        vllm = _import_vllm()
        self.model_id = model
        self.adapter = adapter
        self._vllm = vllm
        if adapter:
            engine_kw.setdefault("enable_lora", True)
        self.llm = vllm.LLM(model=model, **engine_kw)
        self._lora = None
        if adapter:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest("kyokan-adapter", 1, adapter)
        self.usage = Usage()
        self.engine_kw = {k: v for k, v in engine_kw.items() if isinstance(v, str | int | float | bool)}

    def _sampling(self, params: GenerationParams, seed: int | None) -> Any:
        kw: dict[str, Any] = {"max_tokens": params.max_new_tokens, "temperature": params.temperature,
                              "top_p": params.top_p, "seed": seed}
        if params.stop:
            kw["stop"] = list(params.stop)
        if params.json_schema is not None:
            sp = self._vllm.sampling_params
            if hasattr(sp, "StructuredOutputsParams"):
                kw["structured_outputs"] = sp.StructuredOutputsParams(json=params.json_schema)
            elif hasattr(sp, "GuidedDecodingParams"):
                kw["guided_decoding"] = sp.GuidedDecodingParams(json=params.json_schema)
        return self._vllm.SamplingParams(**kw)

    def generate_batch(self, batch: Sequence[Sequence[Message]], params: GenerationParams) -> list[Completion]:
        sampling = [self._sampling(params, params.seed) for _ in batch]
        outs = self.llm.chat([[dict(m) for m in msgs] for msgs in batch], sampling, use_tqdm=False,
                             lora_request=self._lora)
        results = []
        for o in outs:
            c = o.outputs[0]
            usage = Usage(len(o.prompt_token_ids or []), len(c.token_ids or []))
            self.usage.add(usage)
            results.append(Completion(text=c.text, model=self.model_id, usage=usage, finish_reason=c.finish_reason))
        return results

    async def agenerate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        return (await asyncio.to_thread(self.generate_batch, [messages], params))[0]

    async def abatch(self, batch: Sequence[Sequence[Message]], params: GenerationParams,
                     concurrency: int | None = None) -> list[Completion | BaseException]:
        try:
            return list(await asyncio.to_thread(self.generate_batch, batch, params))
        except Exception as e:  # one engine call: a failure concerns every row
            return [e for _ in batch]

    def info(self) -> dict[str, Any]:
        return {"spec": self.spec or f"vllm:{self.model_id}", "backend": "vllm", "model": self.model_id,
                "adapter": self.adapter, "vllm": getattr(self._vllm, "__version__", None), **self.engine_kw}


@register_backend("vllm", help="vLLM offline engine (GPU, optional): vllm:<hub id or path>")
def make_vllm(spec: str, target: str, *, base_url: str | None = None, api_key: str | None = None,
              adapter: str | None = None, concurrency: int = 8, timeout: float = 60.0,
              max_retries: int = 5, **kw: Any) -> ChatModel:
    """vLLM offline engine (GPU, optional extra): ``vllm:<hub id or path>``."""
    if base_url:
        raise ModelError("vllm: runs the engine in-process; for a vLLM server use openai:MODEL --base-url URL")
    return VLLMChatModel(target, adapter=adapter, **kw)
