"""A real OpenAI-compatible HTTP server on loopback, for offline tests and benchmarks.

It answers ``POST /v1/chat/completions`` and ``GET /v1/models`` over a real socket (stdlib
``ThreadingHTTPServer`` in a background thread, one thread per connection), so clients are tested
with their real HTTP stack, retries and timeouts — no mocks::

    from kyokan.testing.openai_server import Fault, OpenAIServer

    with OpenAIServer(responder=lambda req: "hello", latency=0.05,
                      script=[Fault.status(429, retry_after=0.1), Fault.status(500)]) as srv:
        model = load_model("openai:test", base_url=srv.base_url)
        ...
        assert srv.count("/v1/chat/completions") == 3

What a call gets, in order:

1. the next item of ``script`` while any is left (``None`` or ``"ok"`` = answer normally, a
   ``str`` = answer with that text, a :class:`Fault` = inject it);
2. otherwise, with probability ``fault_rate`` (seeded by ``fault_seed``), one of ``faults``
   (default: 429 and 500 alternating at random);
3. otherwise ``responder(request_json)``, which returns the reply text or a :class:`Fault`
   (default: :func:`echo_responder`).

``response_format`` (json_schema) and every other request field are passed to the responder
untouched in ``request_json``. Token usage in the answer is approximate (word/character runs),
but always present and consistent: ``total = prompt + completion``.

Where it matters it behaves like the real servers kyokan talks to:

- ``models=[...]`` given: another model name is refused (404 ``The model `x` does not exist.``
  as vLLM answers; the ``transformers`` profile answers 400 ``Server is pinned to …``). Without
  ``models`` any name is accepted (quick tests);
- ``unknown_fields="reject"``: a request field outside the OpenAI chat-completions set (plus
  ``extra_fields``) is refused, 422 ``Unexpected fields in the request: …`` (transformers serve);
- ``error_style="fastapi"``: error bodies are ``{"detail": "…"}`` (FastAPI servers), otherwise
  OpenAI's ``{"error": {"message", "type", "code"}}``;
- replies are cut at ``max_tokens``/``max_completion_tokens`` approximate tokens with
  ``finish_reason: "length"`` and at ``stop`` strings (removed from the text) unless
  ``apply_stop=False`` (transformers serve leaves them in);
- ``logprobs``/``top_logprobs`` requested: the answer carries ``choices[0].logprobs.content``; a
  responder may return a :class:`Reply` with its own token alternatives (e.g. a judge's score
  distribution), otherwise every token gets log-prob 0 and no alternatives;
- ``OpenAIServer.like("transformers")`` / ``like("vllm")`` set all of these as those servers do
  (transformers serve also ignores ``response_format``/``logprobs`` and lists models with a
  ``status`` field — what kyokan's probe reads).
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["CHAT_FIELDS", "Fault", "OpenAIServer", "Reply", "RequestRecord", "Responder", "approx_tokens",
           "echo_responder", "split_tokens"]

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"


@dataclass(frozen=True)
class Fault:
    """Something going wrong on one call. Build with the class methods."""

    kind: str  # "status" | "delay" | "garbage" | "json" | "disconnect"
    status_code: int = 200
    retry_after: float | None = None
    seconds: float = 0.0
    body: str | None = None
    payload: Any = None
    #: for ``delay``: what to answer after sleeping (None = the normal answer)
    then: str | Reply | Fault | None = None

    @classmethod
    def status(cls, code: int, retry_after: float | None = None, message: str | None = None) -> Fault:
        """An HTTP error with an OpenAI-shaped error body (and ``Retry-After`` seconds if given)."""
        return cls("status", status_code=code, retry_after=retry_after, body=message)

    @classmethod
    def delay(cls, seconds: float, then: str | Reply | Fault | None = None) -> Fault:
        """Sleep ``seconds`` before answering (forces client timeouts when longer than theirs)."""
        return cls("delay", seconds=seconds, then=then)

    @classmethod
    def garbage(cls, body: str = "<html><body>502 Bad Gateway... not JSON", status: int = 200) -> Fault:
        """A body that is not JSON (with a 200 status unless told otherwise)."""
        return cls("garbage", status_code=status, body=body)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Fault:
        """Any JSON body verbatim, e.g. a 200 answer without ``choices``."""
        return cls("json", status_code=status, payload=payload)

    @classmethod
    def disconnect(cls) -> Fault:
        """Close the connection without answering (a connection error on the client)."""
        return cls("disconnect")


@dataclass(frozen=True)
class Reply:
    """A reply with more than text: token log-probs (``logprobs``: one ``(token, logprob,
    [(alternative, logprob), ...])`` per token; the tokens must join to ``text``) and/or a
    finish reason the responder decides."""

    text: str
    logprobs: list[tuple[str, float, list[tuple[str, float]]]] | None = None
    finish_reason: str | None = None


Responder = Callable[[dict[str, Any]], "str | Reply | Fault"]

#: the request fields of OpenAI's chat-completions API (a real server refuses others or ignores them)
CHAT_FIELDS = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop", "n",
    "stream", "stream_options", "response_format", "logprobs", "top_logprobs", "presence_penalty",
    "frequency_penalty", "logit_bias", "user", "tools", "tool_choice", "parallel_tool_calls", "metadata",
    "store", "service_tier", "modalities", "audio", "prediction", "reasoning_effort", "web_search_options",
    "functions", "function_call",
})
#: what the ``like=`` profiles set (see :meth:`OpenAIServer.like`)
PROFILES: dict[str, dict[str, Any]] = {
    # transformers 5.x `transformers serve` (read from its source: serving/utils.py, chat_completion.py)
    "transformers": {"unknown_fields": "reject", "extra_fields": ("generation_config", "chat_template_kwargs"),
                     "error_style": "fastapi", "model_error": "pinned", "apply_stop": False,
                     "logprobs_supported": False, "list_status": True},
    # vLLM's OpenAI server: unknown model 404 in OpenAI's error shape; extra fields are ignored
    "vllm": {"unknown_fields": "accept", "error_style": "openai", "model_error": "not_found",
             "apply_stop": True, "logprobs_supported": True, "list_status": False},
}


def echo_responder(request: dict[str, Any]) -> str:
    """The default: ``"echo: <last user message>"``."""
    msgs = request.get("messages") or []
    last = next((m.get("content") for m in reversed(msgs) if isinstance(m, dict) and m.get("role") == "user"), "")
    if isinstance(last, list):  # content parts
        last = " ".join(str(p.get("text", "")) for p in last if isinstance(p, dict))
    return f"echo: {last}"


_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_SPLIT_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")


def approx_tokens(text: str) -> int:
    """A stand-in token count: runs of word characters and single punctuation marks."""
    return len(_TOKEN_RE.findall(text or ""))


def split_tokens(text: str) -> list[str]:
    """``text`` as stand-in tokens that join back to it (leading whitespace kept on each token)."""
    return _SPLIT_RE.findall(text or "")


@dataclass
class RequestRecord:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    started: float
    #: what the server did: "ok", "status:429", "delay", "garbage", "json", "disconnect", "bad-request"
    outcome: str = ""
    ended: float | None = None


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    max_in_flight: int = 0
    calls: int = 0


class OpenAIServer:
    """An OpenAI-compatible chat-completions server on ``127.0.0.1`` and a free port.

    Attributes after (or during) use: ``base_url`` (``http://127.0.0.1:PORT/v1``), ``requests``
    (JSON bodies of every chat request, in arrival order, faulted ones included), ``log`` (a
    :class:`RequestRecord` per request of any path), ``counts`` (requests per path),
    ``outcomes`` (chat calls per outcome), ``max_concurrency`` (high-water mark of chat
    requests in flight at once).
    """

    def __init__(self, responder: Responder | None = None, *, latency: float = 0.0,
                 script: Iterable[str | Reply | Fault | None] | None = None, fault_rate: float = 0.0,
                 faults: Iterable[Fault] | None = None, fault_seed: int = 0,
                 models: Iterable[str] | None = None, api_key: str | None = None,
                 truncate: bool = True, apply_stop: bool = True, unknown_fields: str = "accept",
                 extra_fields: Iterable[str] = (), error_style: str = "openai", model_error: str = "not_found",
                 logprobs_supported: bool = True, list_status: bool = False,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if unknown_fields not in ("accept", "reject") or error_style not in ("openai", "fastapi") \
                or model_error not in ("not_found", "pinned"):
            raise ValueError("unknown_fields: accept|reject; error_style: openai|fastapi; model_error: "
                             "not_found|pinned")
        self.responder: Responder = responder or echo_responder
        self.latency = latency
        self.script: list[str | Reply | Fault | None] = list(script or [])
        self.fault_rate = fault_rate
        self.faults: list[Fault] = list(faults or [Fault.status(429, retry_after=0.01), Fault.status(500)])
        self._rng = random.Random(fault_seed)
        #: with ``models`` given, other model names are refused (as real servers do)
        self.strict_models = models is not None
        self.models = list(models) if models is not None else ["kyokan-test"]
        self.apply_stop = apply_stop
        self.unknown_fields = unknown_fields
        self.known_fields = CHAT_FIELDS | frozenset(extra_fields)
        self.error_style = error_style
        self.model_error = model_error
        self.logprobs_supported = logprobs_supported
        #: list models with transformers serve's non-OpenAI ``status`` field
        self.list_status = list_status
        #: when set, requests must carry ``Authorization: Bearer <api_key>`` (401 otherwise)
        self.api_key = api_key
        #: cut replies longer than ``max_tokens`` approximate tokens (finish_reason "length"), as
        #: every real server does
        self.truncate = truncate
        self.host = host
        self._port = port
        self.requests: list[dict[str, Any]] = []
        self.log: list[RequestRecord] = []
        self.counts: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self._state = _State()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def like(cls, server: str, responder: Responder | None = None, **kw: Any) -> OpenAIServer:
        """A server that refuses, errs and answers as ``server`` does (``"transformers"`` for
        ``transformers serve``, ``"vllm"``); pass ``models=[...]`` to pin its model names."""
        try:
            preset = dict(PROFILES[server])
        except KeyError:
            raise ValueError(f"unknown server profile {server!r} (known: {', '.join(PROFILES)})") from None
        preset.update(kw)
        return cls(responder, **preset)

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> OpenAIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        handler = _make_handler(self)
        httpd = _HTTPServer((self.host, self._port), handler)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"kyokan-openai-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in delays
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses and counters -----------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What OpenAI clients take as ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def max_concurrency(self) -> int:
        return self._state.max_in_flight

    @property
    def in_flight(self) -> int:
        return self._state.in_flight

    @property
    def calls(self) -> int:
        """Chat-completion requests received so far."""
        return self._state.calls

    def count(self, path: str = CHAT_PATH) -> int:
        return self.counts[path]

    def reset_counters(self) -> None:
        with self._state.lock:
            self.requests.clear()
            self.log.clear()
            self.counts.clear()
            self.outcomes.clear()
            self._state.max_in_flight = self._state.in_flight
            self._state.calls = 0

    # what to answer -------------------------------------------------------------------------
    def _decide(self, request: dict[str, Any]) -> str | Reply | Fault | None:
        with self._state.lock:
            if self.script:
                return self.script.pop(0)
            if self.fault_rate > 0 and self.faults and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.faults)
        return None

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; True when interrupted."""
        return self._stopping.wait(seconds) if seconds > 0 else False


def _cut(server: OpenAIServer, request: dict[str, Any], text: str) -> tuple[str, str]:
    """The reply as a real server returns it: cut at the first stop string (removed), else at
    ``max_tokens`` approximate tokens."""
    finish = "stop"
    stop = request.get("stop")
    stops = [stop] if isinstance(stop, str) else [x for x in (stop or []) if isinstance(x, str) and x]
    if server.apply_stop and stops:
        hits = [text.find(x) for x in stops if x in text]
        if hits:
            text = text[: min(hits)]
    limit = request.get("max_completion_tokens") or request.get("max_tokens")
    if server.truncate and isinstance(limit, int) and approx_tokens(text) > limit:
        toks = list(_TOKEN_RE.finditer(text))
        text = text[: toks[limit - 1].end()] if limit > 0 else ""
        finish = "length"
    return text, finish


def _logprobs(reply: Reply, text: str, top: int) -> dict[str, Any]:
    """``choices[0].logprobs`` for the (possibly cut) ``text``: the reply's own tokens where given."""
    given = reply.logprobs or [(t, 0.0, []) for t in split_tokens(reply.text)]
    content = []
    pos = 0
    for tok, lp, alts in given:
        if pos >= len(text):
            break
        content.append({"token": tok, "logprob": lp, "bytes": list(tok.encode("utf-8")),
                        "top_logprobs": [{"token": a, "logprob": alp, "bytes": list(a.encode("utf-8"))}
                                         for a, alp in alts[:top]]})
        pos += len(tok)
    return {"content": content}


def _completion_body(server: OpenAIServer, request: dict[str, Any], reply: Reply, n: int) -> dict[str, Any]:
    text, finish = _cut(server, request, reply.text)
    if reply.finish_reason is not None:
        finish = reply.finish_reason
    prompt_text = "\n".join(str(m.get("content", "")) for m in request.get("messages") or [] if isinstance(m, dict))
    pt, ct = approx_tokens(prompt_text), approx_tokens(text)
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
    if server.logprobs_supported and request.get("logprobs"):
        top = request.get("top_logprobs")
        choice["logprobs"] = _logprobs(reply, text, int(top) if isinstance(top, int) else 0)
    return {
        "id": f"chatcmpl-kyokan-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(request.get("model") or (server.models[0] if server.models else "kyokan-test")),
        "choices": [choice],
        "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
    }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # the default 5 drops bursts of new connections (1 s SYN retries)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-keep-alive (cancelled requests, a CLI that exits on the first
        # error) is normal for a server; socketserver would print its traceback onto the stderr of
        # the process under test.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def _make_handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
        disable_nagle_algorithm = True  # headers and body go out at once (no delayed-ACK stalls)
        _chat_rec: RequestRecord | None = None  # the chat call being answered, until counted

        def log_message(self, format: str, *args: Any) -> None:  # silence stderr
            return

        # plumbing ---------------------------------------------------------------
        def _send(self, status: int, body: bytes, ctype: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            self._settle()  # count the call before the client can see its answer
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), headers=headers)

        def _error(self, status: int, message: str, etype: str = "server_error",
                   headers: dict[str, str] | None = None) -> None:
            if server.error_style == "fastapi":
                self._send_json(status, {"detail": message}, headers)
            else:
                self._send_json(status, {"error": {"message": message, "type": etype, "code": status}}, headers)

        def _settle(self) -> None:
            # A chat call is counted (outcome, in-flight) before its answer goes out: a client
            # that has its answer must find it in ``outcomes``, or tests race the server thread.
            rec = self._chat_rec
            if rec is None:
                return
            self._chat_rec = None
            with server._state.lock:
                server._state.in_flight -= 1
                server.outcomes[rec.outcome] += 1
            rec.ended = time.monotonic()

        def _record(self, body: Any) -> RequestRecord:
            rec = RequestRecord(self.command, self.path.split("?")[0], {k.lower(): v for k, v in self.headers.items()},
                                body, time.monotonic())
            with server._state.lock:
                server.log.append(rec)
                server.counts[rec.path] += 1
            return rec

        def _authorised(self) -> bool:
            if server.api_key is None:
                return True
            return self.headers.get("Authorization", "") == f"Bearer {server.api_key}"

        # routes -------------------------------------------------------------------
        def do_GET(self) -> None:
            rec = self._record(None)
            if rec.path.rstrip("/") == MODELS_PATH:
                if not self._authorised():
                    rec.outcome = "status:401"
                    self._error(401, "invalid api key", "invalid_request_error")
                    return
                rec.outcome = "ok"
                extra = {"status": {"value": "loaded"}} if server.list_status else {}
                self._send_json(200, {"object": "list", "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "kyokan", **extra}
                    for m in server.models]})
            else:
                rec.outcome = "status:404"
                self._error(404, f"no route {rec.path}", "invalid_request_error")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw.decode("utf-8")) if raw else None
            except (UnicodeDecodeError, json.JSONDecodeError):
                body = None
            rec = self._record(body)
            if rec.path.rstrip("/") != CHAT_PATH:
                rec.outcome = "status:404"
                self._error(404, f"no route {rec.path}", "invalid_request_error")
                return
            st = server._state
            with st.lock:
                st.calls += 1
                n = st.calls
                st.in_flight += 1
                st.max_in_flight = max(st.max_in_flight, st.in_flight)
                if isinstance(body, dict):
                    server.requests.append(body)
            self._chat_rec = rec
            try:
                self._chat(rec, body, n)
            finally:
                self._settle()

        def _chat(self, rec: RequestRecord, body: Any, n: int) -> None:
            if not self._authorised():
                rec.outcome = "status:401"
                self._error(401, "invalid api key", "invalid_request_error")
                return
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                rec.outcome = "bad-request"
                self._error(400, "body must be JSON with a 'messages' list", "invalid_request_error")
                return
            if server.unknown_fields == "reject":
                unexpected = set(body) - server.known_fields
                if unexpected:
                    rec.outcome = "status:422"
                    self._error(422, f"Unexpected fields in the request: {unexpected}", "invalid_request_error")
                    return
            name = body.get("model")
            if server.strict_models and name not in server.models:
                if server.model_error == "pinned":
                    rec.outcome = "status:400"
                    self._error(400, f"Server is pinned to '{server.models[0]}'; requested '{name}'.",
                                "invalid_request_error")
                else:
                    rec.outcome = "status:404"
                    self._error(404, f"The model `{name}` does not exist.", "NotFoundError")
                return
            if server._sleep(server.latency):
                return
            action: str | Reply | Fault | None = server._decide(body)
            if action is None or action == "ok":
                try:
                    action = server.responder(body)
                except Exception as e:  # a bug in a test's responder: answer 500, keep serving
                    rec.outcome = "responder-error"
                    self._error(500, f"responder raised {type(e).__name__}: {e}")
                    return
            self._act(rec, body, n, action)

        def _act(self, rec: RequestRecord, body: dict[str, Any], n: int,
                 action: str | Reply | Fault | None) -> None:
            if action is None:
                action = server.responder(body)
            if isinstance(action, str | Reply):
                rec.outcome = rec.outcome or "ok"
                reply = Reply(action) if isinstance(action, str) else action
                self._send_json(200, _completion_body(server, body, reply, n))
                return
            f = action
            if f.kind == "status":
                rec.outcome = f"status:{f.status_code}"
                headers = {}
                if f.retry_after is not None:
                    ra = f.retry_after
                    headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else f"{ra:g}"
                self._error(f.status_code, f.body or f"injected {f.status_code}",
                            "rate_limit_error" if f.status_code == 429 else "server_error", headers)
            elif f.kind == "delay":
                rec.outcome = "delay"
                if server._sleep(f.seconds):
                    return
                # the client may have given up (timed out) meanwhile — expected
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._act(rec, body, n, f.then)
            elif f.kind == "garbage":
                rec.outcome = "garbage"
                self._send(f.status_code, (f.body or "").encode("utf-8"), ctype="text/html")
            elif f.kind == "json":
                rec.outcome = "json"
                self._send_json(f.status_code, f.payload)
            elif f.kind == "disconnect":
                rec.outcome = "disconnect"
                self._settle()
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
            else:  # pragma: no cover - constructor guards
                raise ValueError(f"unknown fault kind {f.kind!r}")

    return Handler
