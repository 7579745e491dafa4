"""``vllm:<hub id or path>`` — vLLM's offline batch engine, for GPU users (optional extra: install
``vllm`` yourself; it is not needed on CPU machines). For a vLLM *server*, use
``openai:<served model> --base-url http://HOST:8000/v1`` instead.

vLLM's ``LLM`` object is not thread-safe (vllm#1285), and every kyokan command calls
``agenerate`` concurrently. So there is one engine and one submission queue: a single worker
thread owns the engine, takes every request waiting in the queue (up to ``max_batch``, after
``batch_wait`` seconds for concurrent callers to join), and sends them as one ``LLM.chat`` batch
with a ``SamplingParams`` per request. Nothing else ever enters the engine.

Structure: ``json_schema`` → ``SamplingParams(structured_outputs=StructuredOutputsParams(json=…))``
(vLLM ≥ 0.12; ``guided_decoding=GuidedDecodingParams(json=…)`` on older releases). When the
installed vLLM has neither, a schema request is refused with an error instead of decoding freely.
``top_logprobs`` → ``SamplingParams(logprobs=k)``, read back into ``Completion.logprobs``.

Options (``load_model(..., **kw)``): ``tensor_parallel_size``, ``gpu_memory_utilization``,
``max_model_len``, ``dtype``, ``max_lora_rank``; ``adapter=`` serves a LoRA adapter;
``batch_wait``/``max_batch`` shape the queue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kyokan.models.base import (
    ChatModel,
    Completion,
    GenerationParams,
    Message,
    ModelError,
    TokenLogprob,
    Usage,
    apply_stop,
)
from kyokan.models.registry import register_backend


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise ModelError("the vllm: backend needs vLLM (GPU): pip install vllm — or run `vllm serve MODEL` and "
                         "use openai:MODEL --base-url http://HOST:8000/v1") from e
    return vllm


def structured_output_classes(sampling_module: Any) -> tuple[Any, Any]:
    """``(StructuredOutputsParams, GuidedDecodingParams)`` from ``vllm.sampling_params`` — each None
    when this vLLM does not have it (explicit names, not attributes that happen to be imported)."""
    return (getattr(sampling_module, "StructuredOutputsParams", None),
            getattr(sampling_module, "GuidedDecodingParams", None))


def _real_structured_classes() -> tuple[Any, Any]:
    try:
        from vllm.sampling_params import StructuredOutputsParams  # vLLM >= 0.12
    except ImportError:
        StructuredOutputsParams = None
    try:
        from vllm.sampling_params import GuidedDecodingParams  # vLLM < 0.12
    except ImportError:
        GuidedDecodingParams = None
    return StructuredOutputsParams, GuidedDecodingParams


@dataclass
class _Request:
    messages: list[Message]
    params: GenerationParams
    future: concurrent.futures.Future[Completion]


class VLLMChatModel(ChatModel):
    """vLLM ``LLM.chat`` behind the chat interface, entered only from its own worker thread."""

    def __init__(self, model: str, *, adapter: str | None = None, engine: Any = None,
                 sampling_params: Any = None, structured_classes: tuple[Any, Any] | None = None,
                 batch_wait: float = 0.005, max_batch: int = 256, **engine_kw: Any) -> None:
        """``engine``/``sampling_params``/``structured_classes``: a stand-in ``LLM`` object,
        ``SamplingParams`` class and structured-output classes (tests; vLLM itself needs a GPU)."""
        self.model_id = model
        self.adapter = adapter
        self.batch_wait = batch_wait
        self.max_batch = max(1, max_batch)
        self._version: str | None = None
        if engine is None:
            vllm = _import_vllm()
            self._version = getattr(vllm, "__version__", None)
            if adapter:
                engine_kw.setdefault("enable_lora", True)
            engine = vllm.LLM(model=model, **engine_kw)
            sampling_params = vllm.SamplingParams
            structured_classes = _real_structured_classes()
        self.llm = engine
        self._sampling_cls = sampling_params
        classes: tuple[Any, Any] = structured_classes or (None, None)
        self._structured: Any = classes[0]
        self._guided: Any = classes[1]
        self._lora = None
        if adapter:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest("kyokan-adapter", 1, adapter)
        self.usage = Usage()
        self.calls = 0
        #: engine calls and the size of each batch (for tests and benches)
        self.batches: list[int] = []
        self.engine_kw = {k: v for k, v in engine_kw.items() if isinstance(v, str | int | float | bool)}
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # sampling ---------------------------------------------------------------------------
    def capabilities(self) -> dict[str, Any]:
        can = self._structured is not None or self._guided is not None
        return {"grammar": can, "response_format": can, "logprobs": True, "choices": False,
                "server_kind": None, "note": None}

    def sampling(self, params: GenerationParams) -> Any:
        kw: dict[str, Any] = {"max_tokens": params.max_new_tokens, "temperature": params.temperature,
                              "top_p": params.top_p, "seed": params.seed}
        if params.stop:
            kw["stop"] = list(params.stop)
        if params.top_logprobs > 0:
            kw["logprobs"] = params.top_logprobs
        if params.json_schema is not None:
            if self._structured is not None:
                kw["structured_outputs"] = self._structured(json=params.json_schema)
            elif self._guided is not None:
                kw["guided_decoding"] = self._guided(json=params.json_schema)
            else:
                raise ModelError(f"vllm {self._version or ''}: this vLLM has neither StructuredOutputsParams nor "
                                 "GuidedDecodingParams, so it cannot enforce the JSON schema asked for; upgrade "
                                 "vLLM or turn structure off (--no-structured)")
        return self._sampling_cls(**kw)

    # the queue ----------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._serve, name="kyokan-vllm-engine", daemon=True)
                self._worker.start()

    def submit(self, messages: Sequence[Message], params: GenerationParams) -> concurrent.futures.Future[Completion]:
        """Queue one request; the future resolves when its batch has run."""
        fut: concurrent.futures.Future[Completion] = concurrent.futures.Future()
        try:
            sampling_ok = params.json_schema is None or self.capabilities()["grammar"]
            if not sampling_ok:
                self.sampling(params)  # raises the refusal now, in the caller
        except ModelError as e:
            fut.set_exception(e)
            return fut
        self._ensure_worker()
        self._queue.put(_Request([dict(m) for m in messages], params, fut))
        return fut

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.batch_wait
            while len(batch) < self.max_batch:
                left = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=max(0.0, left)) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        ok: list[_Request] = []
        samplings = []
        for r in batch:
            try:
                samplings.append(self.sampling(r.params))
                ok.append(r)
            except Exception as e:
                r.future.set_exception(e)
        if not ok:
            return
        try:
            outs = self.llm.chat([r.messages for r in ok], samplings, use_tqdm=False, lora_request=self._lora)
        except Exception as e:  # one engine call: a failure concerns every request in it
            for r in ok:
                r.future.set_exception(ModelError(f"vllm: {type(e).__name__}: {e}"))
            return
        self.batches.append(len(ok))
        for r, o in zip(ok, outs, strict=True):
            try:
                r.future.set_result(self._completion(r.params, o))
            except Exception as e:
                r.future.set_exception(e)

    def _completion(self, params: GenerationParams, o: Any) -> Completion:
        c = o.outputs[0]
        ids = list(c.token_ids or [])
        usage = Usage(len(o.prompt_token_ids or []), len(ids))
        self.usage.add(usage)
        self.calls += 1
        text, cut = apply_stop(str(c.text), params.stop)
        finish = "stop" if cut else {"length": "length", "stop": "stop", None: None}.get(c.finish_reason, "stop")
        return Completion(text=text, model=self.model_id, usage=usage, finish_reason=finish,
                          logprobs=_read_logprobs(c, ids), constrained="grammar" if params.json_schema else None,
                          sampling={"temperature": params.temperature, "top_p": params.top_p,
                                    "do_sample": params.temperature > 0})

    # the interface ------------------------------------------------------------------------
    async def agenerate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        return await asyncio.wrap_future(self.submit(messages, params))

    def generate_batch(self, batch: Sequence[Sequence[Message]], params: GenerationParams) -> list[Completion]:
        futs = [self.submit(m, params) for m in batch]
        return [f.result() for f in futs]

    async def abatch(self, batch: Sequence[Sequence[Message]], params: GenerationParams,
                     concurrency: int | None = None) -> list[Completion | BaseException]:
        """Every row queued at once (they run as few engine batches as ``max_batch`` allows)."""
        futs = [asyncio.wrap_future(self.submit(m, params)) for m in batch]
        return list(await asyncio.gather(*futs, return_exceptions=True))

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout=60)
        self._worker = None

    def info(self) -> dict[str, Any]:
        return {"spec": self.spec or f"vllm:{self.model_id}", "backend": "vllm", "model": self.model_id,
                "adapter": self.adapter, "vllm": self._version,
                "structured_outputs": ("StructuredOutputsParams" if self._structured is not None else
                                       "GuidedDecodingParams" if self._guided is not None else None),
                **self.engine_kw}


def _read_logprobs(c: Any, ids: list[int]) -> list[TokenLogprob] | None:
    """vLLM's per-token ``{token id: Logprob(logprob, rank, decoded_token)}`` as TokenLogprob."""
    lps = getattr(c, "logprobs", None)
    if not lps:
        return None
    out = []
    for tid, d in zip(ids, lps, strict=False):
        if not isinstance(d, dict) or tid not in d:
            return None
        alts = sorted(d.items(), key=lambda kv: -float(kv[1].logprob))
        out.append(TokenLogprob(str(d[tid].decoded_token or ""), float(d[tid].logprob),
                                tuple((str(v.decoded_token or ""), float(v.logprob)) for _, v in alts)))
    return out


@register_backend("vllm", help="vLLM offline engine (GPU, optional): vllm:<hub id or path>")
def make_vllm(spec: str, target: str, *, base_url: str | None = None, api_key: str | None = None,
              adapter: str | None = None, concurrency: int = 8, timeout: float = 60.0,
              max_retries: int = 5, **kw: Any) -> ChatModel:
    """vLLM offline engine (GPU, optional extra): ``vllm:<hub id or path>``."""
    if base_url:
        raise ModelError("vllm: runs the engine in-process; for a vLLM server use openai:MODEL --base-url URL")
    kw.pop("batch_size", None)  # vLLM schedules its own batches
    kw.pop("threads", None)
    return VLLMChatModel(target, adapter=adapter, **kw)
