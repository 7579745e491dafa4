"""``openai:<model>`` — any OpenAI-compatible chat-completions endpoint (OpenAI, Gemini's compatible
endpoint, vLLM, Ollama, llama.cpp server) over ``httpx.AsyncClient``.

- at most ``concurrency`` requests in flight per model object;
- ``timeout`` seconds per request (connect/read/write);
- up to ``max_retries`` retries with exponential backoff and full jitter on 408, 409, 429, 5xx,
  timeouts, connection errors and unreadable bodies; ``Retry-After`` (seconds or HTTP date) and
  ``retry-after-ms`` are honoured; other 4xx (unknown model, bad parameter, auth) raise
  :class:`~kyokan.models.base.ServerConfigError` at once with the server's message (OpenAI's
  ``{"error": {"message"}}`` or FastAPI's ``{"detail"}``);
- key from ``api_key=``, ``$KYOKAN_API_KEY`` or ``$OPENAI_API_KEY`` (none is sent when unset,
  which local servers accept);
- ``GenerationParams.json_schema`` → ``response_format: {"type": "json_schema", ...}``;
  ``top_logprobs`` → ``logprobs: true, top_logprobs: k`` (read back into ``Completion.logprobs``);
- ``stop`` strings are sent and also cut client-side (``transformers serve`` leaves them in);
- the server is probed once (``GET /models``): ``transformers serve`` (its model list carries a
  ``status`` field) is known to ignore ``response_format`` and ``logprobs`` and to decode greedily
  unless sent ``generation_config``, which kyokan then sends for ``temperature > 0`` (so the
  temperature asked is the one used); ``Completion.sampling`` records what was used;
- token usage summed in ``model.usage``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import time
from collections.abc import Sequence
from typing import Any

from kyokan.models.base import (
    ChatModel,
    Completion,
    GenerationParams,
    Message,
    ModelError,
    ServerConfigError,
    TokenLogprob,
    Usage,
    apply_stop,
)
from kyokan.models.registry import register_backend

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 429})

#: what kyokan knows about server kinds it can recognise (``OpenAIChatModel.server_kind``)
SERVER_KINDS: dict[str, dict[str, Any]] = {
    "transformers-serve": {"response_format": False, "logprobs": False, "temperature": "generation_config",
                           "note": "transformers serve ignores response_format and logprobs and decodes "
                                   "greedily unless sent generation_config (kyokan sends it for temperature > 0)"},
}


class RetryableError(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIChatModel(ChatModel):
    """A chat model behind an OpenAI-compatible HTTP API."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 8, timeout: float = 60.0, max_retries: int = 5,
                 backoff_base: float = 0.5, backoff_max: float = 30.0, retry_after_max: float = 120.0,
                 max_tokens_field: str = "max_tokens", strict_json_schema: bool = False,
                 extra_body: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                 jitter_seed: int | None = None, probe: bool = True, server_kind: str | None = None) -> None:
        self.model = model
        self.base_url = (base_url or os.environ.get("KYOKAN_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
                         or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("KYOKAN_API_KEY") or os.environ.get("OPENAI_API_KEY") or None
        if self.base_url == DEFAULT_BASE_URL and not self.api_key:
            raise ModelError("openai: no API key: set KYOKAN_API_KEY (or OPENAI_API_KEY), or pass --base-url "
                             "for a local OpenAI-compatible server")
        if concurrency < 1:
            raise ModelError(f"concurrency must be ≥ 1, got {concurrency}")
        if max_retries < 0:
            raise ModelError(f"max_retries must be ≥ 0, got {max_retries}")
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.max_tokens_field = max_tokens_field
        self.strict_json_schema = strict_json_schema
        self.extra_body = dict(extra_body or {})
        self.headers = dict(headers or {})
        self._rng = random.Random(jitter_seed)
        #: what the server is, when recognised (``GET /models`` probe; ``server_kind=`` overrides)
        self.server_kind: str | None = server_kind
        self._probed = server_kind is not None or not probe
        self._probe_lock: asyncio.Lock | None = None
        #: running totals over the life of this object
        self.usage = Usage()
        self.calls = 0
        self.retries = 0
        self.failures = 0
        # httpx clients and asyncio semaphores belong to one event loop; `generate()` runs a new
        # loop per call, so both are made per loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._sem: asyncio.Semaphore | None = None

    # plumbing ---------------------------------------------------------------------------
    def _ensure_client(self) -> tuple[Any, asyncio.Semaphore]:
        import httpx

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._sem is None:
            headers = {"Content-Type": "application/json", **self.headers}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._client = httpx.AsyncClient(
                base_url=self.base_url, headers=headers,
                timeout=httpx.Timeout(self.timeout, pool=None),
                limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            )
            self._sem = asyncio.Semaphore(self.concurrency)
            self._loop = loop
        return self._client, self._sem

    def request_body(self, messages: Sequence[Message], params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            self.max_tokens_field: params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if params.json_schema is not None:
            schema: dict[str, Any] = {"name": params.json_schema_name, "schema": params.json_schema}
            if self.strict_json_schema:
                schema["strict"] = True
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        known = SERVER_KINDS.get(self.server_kind or "", {})
        if params.top_logprobs > 0 and known.get("logprobs", True):
            body["logprobs"] = True
            body["top_logprobs"] = min(20, params.top_logprobs)  # OpenAI's maximum
        if known.get("temperature") == "generation_config" and params.temperature > 0:
            # transformers serve samples only when its generation config says so
            body["generation_config"] = json.dumps({"do_sample": True, "temperature": params.temperature,
                                                    "top_p": params.top_p,
                                                    "max_new_tokens": params.max_new_tokens})
        body.update(self.extra_body)
        return body

    def sampling_used(self, params: GenerationParams, body: dict[str, Any]) -> dict[str, Any]:
        """What the server was asked to use, and a note where it is known to do otherwise."""
        d: dict[str, Any] = {"temperature": body.get("temperature"), "top_p": body.get("top_p")}
        gc = body.get("generation_config")
        if isinstance(gc, str):
            d["via"] = "generation_config"
            d["do_sample"] = True
        elif self.server_kind == "transformers-serve" and params.temperature > 0:
            d["temperature"] = 0.0
            d["note"] = "transformers serve decodes greedily without generation_config"
        return d

    async def probe(self) -> str | None:
        """Recognise the server once (``GET /models``); None when unknown or unreachable."""
        if self._probed:
            return self.server_kind
        if self._probe_lock is None or self._probe_lock._loop is not asyncio.get_running_loop():  # type: ignore[attr-defined]
            self._probe_lock = asyncio.Lock()
        async with self._probe_lock:
            if self._probed:
                return self.server_kind
            client, _ = self._ensure_client()
            try:
                resp = await client.get("/models")
                data = resp.json().get("data") if resp.status_code == 200 else None
            except Exception:  # a probe must never fail a run: the server may not list models
                data = None
            if isinstance(data, list) and data and all(isinstance(m, dict) and isinstance(m.get("status"), dict)
                                                      for m in data):
                self.server_kind = "transformers-serve"
            self._probed = True
        return self.server_kind

    def capabilities(self) -> dict[str, Any]:
        known = SERVER_KINDS.get(self.server_kind or "", {})
        return {"grammar": False, "response_format": known.get("response_format", True),
                "logprobs": known.get("logprobs", True), "choices": False,
                "server_kind": self.server_kind, "note": known.get("note")}

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry number ``attempt`` (1-based): Retry-After when the server gave one,
        else full-jitter exponential backoff."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_max) + self._rng.uniform(0, self.backoff_base * 0.1)
        cap = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return self._rng.uniform(cap / 2, cap)

    async def _attempt(self, client: Any, body: dict[str, Any]) -> Completion:
        import httpx

        try:
            resp = await client.post("/chat/completions", json=body)
        except httpx.TimeoutException as e:
            raise RetryableError(f"timed out after {self.timeout:g}s ({type(e).__name__})") from e
        except httpx.TransportError as e:  # connection refused/reset, protocol errors
            raise RetryableError(f"connection error: {type(e).__name__}: {e}") from e
        status = resp.status_code
        if status != 200:
            message = _error_message(resp)
            if status in RETRY_STATUS or status >= 500:
                raise RetryableError(f"HTTP {status}: {message}", parse_retry_after(resp.headers))
            raise ServerConfigError(f"{self.spec or 'openai:' + self.model}: HTTP {status} from {self.base_url}: "
                                    f"{message}", status)
        try:
            data = resp.json()
            choice = data["choices"][0]
            msg = choice.get("message") or {}
            text = msg.get("content")
            if text is None:
                text = msg.get("refusal") or ""
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            snippet = resp.text[:120].replace("\n", " ")
            raise RetryableError(f"unreadable response body ({type(e).__name__}): {snippet!r}") from e
        u = data.get("usage") or {}
        usage = Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
        return Completion(text=text, model=str(data.get("model") or self.model), usage=usage,
                          finish_reason=_finish(choice.get("finish_reason")), logprobs=_read_logprobs(choice))

    # the interface ------------------------------------------------------------------------
    async def agenerate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        client, sem = self._ensure_client()
        if params.temperature > 0 or params.top_logprobs > 0:
            # what is sent depends on the server kind here; callers that want it known for every
            # request (the judge, eval emotions) probe once before their concurrent calls
            await self.probe()
        body = self.request_body(messages, params)
        last: RetryableError | None = None
        for attempt in range(1, self.max_retries + 2):
            async with sem:
                self.calls += 1
                try:
                    comp = await self._attempt(client, body)
                except RetryableError as e:
                    last = e
                else:
                    comp.attempts = attempt
                    text, cut = apply_stop(comp.text, params.stop)
                    if cut:  # the server left a stop string in (transformers serve does)
                        comp.text, comp.finish_reason = text, "stop"
                    if params.json_schema is not None:
                        comp.constrained = "response_format"
                    comp.sampling = self.sampling_used(params, body)
                    self.usage.add(comp.usage)
                    return comp
            if attempt > self.max_retries:
                break
            self.retries += 1
            await asyncio.sleep(self._backoff(attempt, last.retry_after))
        self.failures += 1
        raise ModelError(f"{self.spec or 'openai:' + self.model}: gave up after {self.max_retries + 1} "
                         f"attempt(s) at {self.base_url}: {last}")

    async def abatch(self, batch: Sequence[Sequence[Message]], params: GenerationParams,
                     concurrency: int | None = None) -> list[Completion | BaseException]:
        """As :meth:`ChatModel.abatch`; ``concurrency`` defaults to the model's own bound."""
        return await super().abatch(batch, params, concurrency or self.concurrency)

    def batch(self, batch: Sequence[Sequence[Message]], params: GenerationParams | None = None,
              concurrency: int | None = None) -> list[Completion | BaseException]:
        async def run() -> list[Completion | BaseException]:
            try:
                return await self.abatch(batch, params or GenerationParams(), concurrency)
            finally:
                await self.aclose()

        return asyncio.run(run())

    def generate(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Completion:
        async def run() -> Completion:
            try:
                return await self.agenerate(messages, params or GenerationParams())
            finally:
                await self.aclose()

        return asyncio.run(run())

    async def aclose(self) -> None:
        client, self._client, self._sem, self._loop = self._client, None, None, None
        if client is not None:
            await client.aclose()

    async def list_models(self) -> list[str]:
        """Model ids the endpoint offers (``GET /models``)."""
        client, _ = self._ensure_client()
        resp = await client.get("/models")
        if resp.status_code != 200:
            raise ModelError(f"GET {self.base_url}/models: HTTP {resp.status_code}: {_error_message(resp)}")
        return [str(m.get("id")) for m in resp.json().get("data", [])]

    def info(self) -> dict[str, Any]:
        return {"spec": self.spec or f"openai:{self.model}", "backend": "openai", "model": self.model,
                "base_url": self.base_url, "concurrency": self.concurrency, "timeout": self.timeout,
                "max_retries": self.max_retries, "api_key_set": bool(self.api_key),
                "server_kind": self.server_kind,
                "usage": self.usage.to_dict(), "calls": self.calls, "retries": self.retries}


def _finish(reason: Any) -> str | None:
    """OpenAI's finish reasons, with vLLM's/others' spellings folded in ("eos" → "stop")."""
    if reason is None:
        return None
    r = str(reason)
    return {"eos": "stop", "max_tokens": "length", "stop_sequence": "stop", "end_turn": "stop"}.get(r, r)


def _read_logprobs(choice: dict[str, Any]) -> list[TokenLogprob] | None:
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list):
        return None
    out = []
    for t in content:
        if not isinstance(t, dict) or not isinstance(t.get("token"), str):
            return None
        top = tuple((str(a["token"]), float(a["logprob"])) for a in (t.get("top_logprobs") or [])
                    if isinstance(a, dict) and isinstance(a.get("logprob"), int | float))
        out.append(TokenLogprob(t["token"], float(t.get("logprob") or 0.0), top))
    return out


def _error_message(resp: Any) -> str:
    try:
        data = resp.json()
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        detail = data.get("detail") if isinstance(data, dict) else None
        if isinstance(detail, str):  # FastAPI's HTTPException
            return detail
        if isinstance(detail, list):  # FastAPI's validation errors
            return "; ".join(f"{'.'.join(str(x) for x in d.get('loc', []))}: {d.get('msg')}" if isinstance(d, dict)
                             else str(d) for d in detail)[:300]
        if isinstance(data, dict) and isinstance(data.get("message"), str):  # vLLM's ErrorResponse
            return str(data["message"])
        return json.dumps(data, ensure_ascii=False)[:300]
    except ValueError:
        return resp.text[:300].replace("\n", " ")


@register_backend("openai", help="OpenAI-compatible HTTP endpoint: openai:<model> [--base-url URL]")
def make_openai(spec: str, target: str, *, base_url: str | None = None, api_key: str | None = None,
                adapter: str | None = None, concurrency: int = 8, timeout: float = 60.0,
                max_retries: int = 5, **kw: Any) -> ChatModel:
    """OpenAI-compatible HTTP endpoint: ``openai:<model>`` with ``base_url``."""
    if adapter:
        raise ModelError("openai: an adapter cannot be attached to a remote model; serve it with the "
                         "adapter (e.g. vLLM --lora-modules) and name it in the spec")
    return OpenAIChatModel(target, base_url=base_url, api_key=api_key, concurrency=concurrency,
                           timeout=timeout, max_retries=max_retries, **kw)
