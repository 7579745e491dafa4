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


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings; recorded with every output row."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    #: a JSON schema the answer must follow (OpenAI ``response_format`` json_schema; local
    #: backends ignore it and callers parse tolerantly)
    json_schema: dict[str, Any] | None = None
    json_schema_name: str = "answer"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop) if self.stop else None
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


@dataclass
class Completion:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    #: attempts it took (1 = first try), for fault reports
    attempts: int = 1


class ModelError(KyokanError):
    """A model call failed for good (after retries), or a model could not be loaded."""


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

    def info(self) -> dict[str, Any]:
        """Provenance: what model this is (spec, resolved id/path, revision, adapter, backend)."""
        return {"spec": self.spec, "backend": type(self).__name__}

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections or memory."""
