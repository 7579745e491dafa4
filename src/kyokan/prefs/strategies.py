"""Where rejected replies come from. A strategy is a class in ``STRATEGIES``; adding one is adding a
class with ``@register_strategy`` (it gives each dialogue a candidate pool, or generates)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Hashable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from kyokan.errors import KyokanError
from kyokan.prefs.pairs import (
    GENERATION_FAILED,
    NO_CANDIDATE,
    NO_OPPOSITE,
    NO_OPPOSITE_DIALOGUE,
    EpochDraw,
    Message,
    PairContext,
    Unpaired,
    draw_from_pools,
)

STRATEGIES: dict[str, type[Strategy]] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    STRATEGIES[cls.name] = cls
    return cls


def get_strategy(name: str, **options: Any) -> Strategy:
    if name not in STRATEGIES:
        raise KyokanError(f"unknown pair strategy {name!r}; one of {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name](**options)


Assignment = tuple[Hashable, str, str | None] | str  # (pool key, pool label, note) or an unpaired reason


class Strategy:
    """Gives every item a pool of candidate rejected replies (``assign``/``members``) and draws
    from it each epoch (``draw``; by default uniformly with the epoch's own generator)."""

    name: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        if options:
            raise KyokanError(f"strategy {self.name!r} takes no options, got {', '.join(options)}")

    def options(self) -> dict[str, Any]:
        """Settings recorded in report.json."""
        return {}

    def assign(self, ctx: PairContext, i: int) -> Assignment:
        raise NotImplementedError

    def members(self, ctx: PairContext, key: Hashable) -> list[int]:
        raise NotImplementedError

    def prepare(self, ctx: PairContext) -> None:
        """Fill the context's pools; items without a candidate move to ``ctx.unpaired``."""
        keep: list[int] = []
        pool_index: dict[Hashable, int] = {}
        pool_of: list[int] = []
        notes: list[str | None] = []
        for i in ctx.items:
            a = self.assign(ctx, i)
            d = ctx.dialogues[i]
            if isinstance(a, str):
                ctx.unpaired.append(Unpaired(d.id, d.emotion, a, ctx.taxonomy.opposite(d.emotion or "")))
                continue
            key, label, note = a
            if key not in pool_index:
                pool_index[key] = len(ctx.pools)
                ctx.pools.append(np.asarray(self.members(ctx, key), dtype=np.int64))
                ctx.pool_labels.append(label)
            keep.append(i)
            pool_of.append(pool_index[key])
            notes.append(note)
        ctx.items = keep
        ctx.pool_of_item = np.asarray(pool_of, dtype=np.int64)
        ctx.item_notes = notes if any(n is not None for n in notes) else []
        # input order of unpaired dialogues, whatever step found them
        order = {d.id: k for k, d in enumerate(ctx.dialogues)}
        ctx.unpaired.sort(key=lambda u: order.get(u.dialogue_id, -1))

    def draw(self, ctx: PairContext, epoch: int) -> EpochDraw:
        return draw_from_pools(ctx, epoch)

    def finish(self, ctx: PairContext, draws: list[EpochDraw]) -> list[EpochDraw]:
        """Last look at all epochs' draws (e.g. drop items that failed in some epoch)."""
        return draws


def _by_label(ctx: PairContext) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for i in sorted(ctx.replies):
        emo = ctx.dialogues[i].emotion
        if emo is not None:
            out[emo].append(i)
    return out


@register_strategy
class OppositeStrategy(Strategy):
    """EmPO: a reply drawn at random among the dialogues labelled with the opposite emotion."""

    name = "opposite"

    def assign(self, ctx: PairContext, i: int) -> Assignment:
        if not hasattr(self, "_labels"):
            self._labels = _by_label(ctx)
        opp = ctx.taxonomy.opposites.get(ctx.dialogues[i].emotion or "")
        if opp is None:
            return NO_OPPOSITE
        if not self._labels.get(opp.opposite):
            return NO_OPPOSITE_DIALOGUE
        return ("label", opp.opposite), opp.opposite, None

    def members(self, ctx: PairContext, key: Hashable) -> list[int]:
        return self._labels[key[1]]  # type: ignore[index]


@register_strategy
class SameSituationStrategy(Strategy):
    """Hard negatives: a reply written for the same situation under another emotion — the opposite
    emotion when the situation has one, else any other emotion; a situation with no other emotion
    falls back to the opposite-emotion draw (``fallback=True``, recorded per pair as ``negative``)."""

    name = "same-situation"

    def __init__(self, fallback: bool = True) -> None:
        self.fallback = fallback

    def options(self) -> dict[str, Any]:
        return {"fallback": self.fallback}

    def assign(self, ctx: PairContext, i: int) -> Assignment:
        if not hasattr(self, "_labels"):
            self._labels = _by_label(ctx)
            self._sit: dict[tuple[str, str], list[int]] = defaultdict(list)
            self._sit_emotions: dict[str, set[str]] = defaultdict(set)
            for j in sorted(ctx.replies):
                dj = ctx.dialogues[j]
                if dj.emotion is not None:
                    self._sit[(dj.situation_id, dj.emotion)].append(j)
                    self._sit_emotions[dj.situation_id].add(dj.emotion)
        d = ctx.dialogues[i]
        emo = d.emotion or ""
        opp = ctx.taxonomy.opposite(emo)
        if opp is not None and self._sit.get((d.situation_id, opp)):
            return ("sit", d.situation_id, opp), opp, "same-situation-opposite"
        others = self._sit_emotions.get(d.situation_id, set()) - {emo}
        if others:
            return ("sit-other", d.situation_id, emo), "", "same-situation"
        if not self.fallback:
            return NO_CANDIDATE + " (no other emotion in the same situation)"
        if opp is None:
            return NO_OPPOSITE
        if not self._labels.get(opp):
            return NO_OPPOSITE_DIALOGUE
        return ("label", opp), opp, "opposite-fallback"

    def members(self, ctx: PairContext, key: Hashable) -> list[int]:
        k = key  # type: ignore[assignment]
        if k[0] == "label":  # type: ignore[index]
            return self._labels[k[1]]  # type: ignore[index]
        if k[0] == "sit":  # type: ignore[index]
            return self._sit[(k[1], k[2])]  # type: ignore[index]
        sit, emo = k[1], k[2]  # type: ignore[index]
        return sorted(j for e in self._sit_emotions[sit] if e != emo for j in self._sit[(sit, e)])


MODEL_INSTRUCTIONS = {
    "en": ("You are the listener in this conversation. Reply to the speaker's last message in one or two "
           "sentences, as someone who believes the speaker feels {emotion}."),
    "ja": ("あなたはこの会話の聞き手です。話し手が「{emotion}」の気持ちでいると思って、話し手の最後の発言に"
           "一、二文で返答してください。"),
}


@register_strategy
class ModelStrategy(Strategy):
    """The rejected reply is generated by a chat model told that the speaker feels the opposite
    emotion (through ``kyokan.models.load_model``). Generations are appended to
    ``generated.jsonl`` as they finish, so a killed build resumes without regenerating; a dialogue
    whose generation fails in any epoch is left out of every epoch (epochs stay the same size)."""

    name = "model"

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 out_dir: str | Path | None = None, temperature: float = 0.8, max_new_tokens: int = 96,
                 concurrency: int = 8, timeout: float = 60.0, max_retries: int = 5,
                 chat_model: Any = None) -> None:
        if model is None and chat_model is None:
            raise KyokanError("--strategy model needs --model SPEC (e.g. openai:gpt-4o-mini or smollm2-135m)")
        self.spec = model or getattr(chat_model, "spec", "")
        self.base_url = base_url
        self.api_key = api_key
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self._model = chat_model
        self.failures: dict[tuple[int, int], str] = {}  # (epoch, item position) → error

    def options(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if self._model is not None:
            try:
                info = dict(self._model.info())
            except Exception:  # provenance only
                info = {}
        return {"model": self.spec, "base_url": self.base_url, "temperature": self.temperature,
                "max_new_tokens": self.max_new_tokens, "model_info": info,
                "instructions": MODEL_INSTRUCTIONS}

    def assign(self, ctx: PairContext, i: int) -> Assignment:
        opp = ctx.taxonomy.opposite(ctx.dialogues[i].emotion or "")
        if opp is None:
            return NO_OPPOSITE
        return ("label", opp), opp, None

    def members(self, ctx: PairContext, key: Hashable) -> list[int]:
        return []

    def _chat_model(self) -> Any:
        if self._model is None:
            from kyokan.models import load_model  # type: ignore[attr-defined]

            self._model = load_model(str(self.spec), base_url=self.base_url, api_key=self.api_key,
                                     concurrency=self.concurrency, timeout=self.timeout,
                                     max_retries=self.max_retries)
        return self._model

    def messages(self, ctx: PairContext, p: int) -> list[Message]:
        i = ctx.items[p]
        d = ctx.dialogues[i]
        opp = ctx.pool_labels[int(ctx.pool_of_item[p])]
        lang = "ja" if d.lang.startswith("ja") else "en"
        name = ctx.taxonomy.label(opp).name(lang)
        sys = MODEL_INSTRUCTIONS[lang].format(emotion=name)
        return [{"role": "system", "content": sys},
                *[m for m in ctx.prompts[i] if m["role"] != "system"]]

    @staticmethod
    def gen_seed(seed: int, epoch: int, dialogue_id: str) -> int:
        from kyokan.provenance import derive_seed

        return derive_seed(seed, epoch, dialogue_id)

    def draw(self, ctx: PairContext, epoch: int) -> EpochDraw:
        from kyokan.io import JsonlAppender
        from kyokan.models.base import Completion, GenerationParams

        done: dict[str, str] = {}
        cache_path = self.out_dir / "generated.jsonl" if self.out_dir is not None else None
        if cache_path is not None and cache_path.exists():
            import json

            with open(cache_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if row.get("epoch") == epoch and row.get("seed") == ctx.seed and row.get("model") == self.spec:
                        done[row["dialogue_id"]] = row["text"]
        todo = [p for p in range(ctx.n_items) if ctx.dialogues[ctx.items[p]].id not in done]
        appender = JsonlAppender(cache_path) if cache_path is not None else None
        model: Any = self._chat_model() if todo else None
        try:
            async def run() -> None:
                sem = asyncio.Semaphore(max(1, self.concurrency))

                async def one(p: int) -> None:
                    did = ctx.dialogues[ctx.items[p]].id
                    params = GenerationParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                              seed=self.gen_seed(ctx.seed, epoch, did))
                    async with sem:
                        try:
                            c: Completion = await model.agenerate(self.messages(ctx, p), params)
                        except Exception as e:  # recorded per dialogue, never dropped silently
                            self.failures[(epoch, p)] = f"{type(e).__name__}: {e}"
                            return
                    text = (c.text or "").strip()
                    if not text:
                        self.failures[(epoch, p)] = "empty generation"
                        return
                    done[did] = text
                    if appender is not None:
                        appender.write({"epoch": epoch, "seed": ctx.seed, "model": self.spec,
                                        "dialogue_id": did, "text": text, "params": params.to_dict()})

                await asyncio.gather(*(one(p) for p in todo))

            if todo:
                asyncio.run(run())
        finally:
            if appender is not None:
                appender.close()
        pos = [p for p in range(ctx.n_items) if ctx.dialogues[ctx.items[p]].id in done]
        gen = {p: done[ctx.dialogues[ctx.items[p]].id] for p in pos}
        return EpochDraw(epoch, np.asarray(pos, dtype=np.int64), np.full(len(pos), -1, dtype=np.int64),
                         generated=gen)

    def finish(self, ctx: PairContext, draws: list[EpochDraw]) -> list[EpochDraw]:
        failed = {p for (_e, p) in self.failures}
        if not failed:
            return draws
        for p in sorted(failed):
            d = ctx.dialogues[ctx.items[p]]
            errs = "; ".join(f"epoch {e}: {m}" for (e, q), m in sorted(self.failures.items()) if q == p)
            ctx.unpaired.append(Unpaired(d.id, d.emotion, f"{GENERATION_FAILED} ({errs})",
                                         ctx.taxonomy.opposite(d.emotion or "")))
        out = []
        for dr in draws:
            keep = [k for k, p in enumerate(dr.items.tolist()) if p not in failed]
            out.append(EpochDraw(dr.epoch, dr.items[keep], dr.donors[keep],
                                 generated={p: t for p, t in dr.generated.items() if p not in failed}))
        order = {d.id: k for k, d in enumerate(ctx.dialogues)}
        ctx.unpaired.sort(key=lambda u: order.get(u.dialogue_id, -1))
        return out
