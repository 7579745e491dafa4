"""The one chat-model interface every stage uses: messages in, text out; batched; async-friendly.

Messages are plain dicts ``{"role": "system"|"user"|"assistant", "content": str}`` — the shape
OpenAI-compatible servers, chat templates and TRL's conversational datasets all share.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kyokan.errors import KyokanError

Message = dict[str, str]


class ModelError(KyokanError):
    """A model call failed for good (after retries), or a model could not be loaded."""


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings; recorded with every output row."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    #: strings that end the answer; every backend cuts the text before the first one (removed)
    stop: tuple[str, ...] | None = None
    #: a JSON schema the answer must follow: local backends (hf, packaged, vllm) enforce it with
    #: grammar-constrained decoding; HTTP backends send it as ``response_format`` (a server may ignore it)
    json_schema: dict[str, Any] | None = None
    json_schema_name: str = "answer"
    #: the answer must be exactly one of these strings (local backends score every one and return
    #: the most probable with ``Completion.choice_logprobs``; HTTP backends rely on ``json_schema``)
    choices: tuple[str, ...] | None = None
    #: alternatives per generated token to return as log-probs (0 = none); where the backend has them
    top_logprobs: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop) if self.stop else None
        d["choices"] = list(self.choices) if self.choices else None
        return d


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token, its log-probability and the most probable alternatives at its place
    (``top``: ``(token, logprob)``, most probable first; for constrained decoding, over the tokens
    the grammar allowed)."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class Completion:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    #: "stop" (end of turn or a stop string) or "length" (cut at max_new_tokens), from every backend
    finish_reason: str | None = None
    #: attempts it took (1 = first try), for fault reports
    attempts: int = 1
    #: per generated token, when ``top_logprobs`` was asked and the backend has them (the tokens
    #: join to the text before stop strings were cut)
    logprobs: list[TokenLogprob] | None = None
    #: with ``choices``: log-probability of every choice (normalised over the choices)
    choice_logprobs: dict[str, float] | None = None
    #: how the answer's structure was obtained: "grammar" (constrained decoding), "choices"
    #: (every choice scored), "response_format" (asked of the server; it may ignore it), or None
    constrained: str | None = None
    #: the sampling really used (``temperature``, ``top_p``, ``do_sample``, and ``note`` when it
    #: differs from what was asked, e.g. a server known to decode greedily)
    sampling: dict[str, Any] | None = None


def apply_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """``text`` cut before the first of the ``stop`` strings (removed), and whether one was found;
    the one rule every backend applies (servers that leave stop strings in are cut here too)."""
    if not stop:
        return text, False
    hits = [text.find(s) for s in stop if s and s in text]
    if not hits:
        return text, False
    return text[: min(hits)], True


class ServerConfigError(ModelError):
    """The server refused the request as misconfigured (HTTP 4xx other than 408/409/429: unknown
    model, bad parameter, authentication): retrying or going on cannot help, so a command stops
    (exit code 1) with the server's message."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ChatModel(ABC):
    """Subclasses implement ``agenerate`` (or ``generate_batch`` for local batched backends)."""

    #: the spec string the user typed, e.g. ``openai:gpt-4o-mini`` or ``smollm2-135m``
    spec: str = ""

    @abstractmethod
    async def agenerate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        """One completion for one conversation."""

    def generate(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Completion:
        return asyncio.run(self.agenerate(messages, params or GenerationParams()))

    async def abatch(self, batch: Sequence[Sequence[Message]], params: GenerationParams,
                     concurrency: int = 8) -> list[Completion | BaseException]:
        """Completions for many conversations, at most ``concurrency`` in flight; a failed item is
        returned as its exception (never dropped), in input order."""
        sem = asyncio.Semaphore(max(1, concurrency))

        async def one(msgs: Sequence[Message]) -> Completion | BaseException:
            async with sem:
                try:
                    return await self.agenerate(msgs, params)
                except Exception as e:  # returned, not raised: the caller records it per row
                    return e

        return list(await asyncio.gather(*(one(m) for m in batch)))

    def batch(self, batch: Sequence[Sequence[Message]], params: GenerationParams | None = None,
              concurrency: int = 8) -> list[Completion | BaseException]:
        return asyncio.run(self.abatch(batch, params or GenerationParams(), concurrency))

    def capabilities(self) -> dict[str, Any]:
        """What this backend can do with structure: ``grammar`` (enforces ``json_schema`` itself),
        ``response_format`` (passes it on; the server may ignore it), ``logprobs`` (fills
        ``Completion.logprobs``), ``choices`` (scores ``GenerationParams.choices``), and
        ``server_kind``/``note`` when a server was recognised."""
        return {"grammar": False, "response_format": False, "logprobs": False, "choices": False,
                "server_kind": None, "note": None}

    def info(self) -> dict[str, Any]:
        """Provenance: what model this is (spec, resolved id/path, revision, adapter, backend)."""
        return {"spec": self.spec, "backend": type(self).__name__}

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or memory."""
