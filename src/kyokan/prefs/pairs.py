"""EmPO preference pairs: the prompt and chosen reply of each dialogue, and a rejected reply drawn
from a dialogue of the opposite emotion (or another strategy), redrawn every epoch.

The draw for epoch ``k`` uses its own generator seeded by ``(seed, k)``, so any epoch can be
rebuilt alone and the same seed gives byte-identical files. Rows are in TRL's conversational
preference format::

    {"prompt": [{"role": "user", "content": ...}, ...],
     "chosen": [{"role": "assistant", "content": ...}],
     "rejected": [{"role": "assistant", "content": ...}],
     "meta": {"dialogue_id", "emotion", "rejected_dialogue_id", "rejected_emotion", "epoch", "seed", ...}}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kyokan.io import dumps

if TYPE_CHECKING:
    from kyokan.data import Dialogue
    from kyokan.taxonomy import Taxonomy

Message = dict[str, str]

#: speaker → user, listener → assistant (the model plays the listener)
ROLE_MAP = {"speaker": "user", "listener": "assistant"}

#: rounds of redrawing a rejected reply whose text equals the chosen one
REDRAW_IDENTICAL_ROUNDS = 16


# --- reasons a dialogue is left out ---------------------------------------------------------------
NO_LABEL = "no emotion label"
NO_LISTENER = "no listener turn"
NO_PROMPT = "no speaker turn before the last listener turn"
LAST_NOT_AFTER_SPEAKER = "the last listener turn does not follow a speaker turn"
NO_OPPOSITE = "no opposite for this label in the taxonomy"
NO_OPPOSITE_DIALOGUE = "no dialogue labelled with the opposite emotion"
NO_CANDIDATE = "no candidate rejected reply"
GENERATION_FAILED = "the model could not generate a rejected reply"


def dialogue_prompt(d: Dialogue, system: str | None = None) -> tuple[list[Message], str] | str:
    """The prompt messages (system, then the turns up to and including the last speaker turn) and
    the chosen reply (the last listener turn); or the reason the dialogue has none."""
    i = d.last_listener_index()
    if i is None:
        return NO_LISTENER
    if not any(t.role == "speaker" for t in d.turns[:i]):
        return NO_PROMPT
    if d.turns[i - 1].role != "speaker":
        return LAST_NOT_AFTER_SPEAKER
    msgs: list[Message] = [{"role": "system", "content": system}] if system else []
    msgs.extend({"role": ROLE_MAP[t.role], "content": t.text} for t in d.turns[:i])
    return msgs, d.turns[i].text


def listener_examples(d: Dialogue, system: str | None = None, turns: str = "all") -> list[dict[str, Any]]:
    """SFT prompt/completion examples of one dialogue: one per listener turn (``turns="all"``, so
    the loss covers every listener turn, as EmPO's SFT) or only the last (``turns="last"``).
    A listener turn with no speaker turn before it has no prompt and is skipped."""
    out: list[dict[str, Any]] = []
    idx = [i for i, t in enumerate(d.turns) if t.role == "listener"]
    if turns == "last":
        idx = idx[-1:]
    for i in idx:
        if not any(t.role == "speaker" for t in d.turns[:i]):
            continue
        prompt: list[Message] = [{"role": "system", "content": system}] if system else []
        prompt.extend({"role": ROLE_MAP[t.role], "content": t.text} for t in d.turns[:i])
        out.append({"prompt": prompt, "completion": [{"role": "assistant", "content": d.turns[i].text}],
                    "meta": {"dialogue_id": d.id, "turn": i, "emotion": d.emotion}})
    return out


@dataclass
class Unpaired:
    dialogue_id: str
    emotion: str | None
    reason: str
    opposite: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"dialogue_id": self.dialogue_id, "emotion": self.emotion, "opposite": self.opposite,
                "reason": self.reason}


@dataclass
class PairContext:
    """Everything the draws need, computed once for all epochs.

    ``items`` are the dialogues that get a pair (have a prompt and chosen reply); ``donors`` the
    dialogues whose last listener turn can serve as a rejected reply. Each item has a candidate
    pool (donor indices) chosen by the strategy."""

    dialogues: list[Dialogue]
    taxonomy: Taxonomy
    seed: int
    strategy: str
    system: str | None
    items: list[int] = field(default_factory=list)  # dialogue indices
    prompts: dict[int, list[Message]] = field(default_factory=dict)
    replies: dict[int, str] = field(default_factory=dict)  # dialogue index → last listener turn
    unpaired: list[Unpaired] = field(default_factory=list)
    # candidate pools, filled by the strategy
    pool_of_item: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pools: list[np.ndarray] = field(default_factory=list)
    pool_labels: list[str] = field(default_factory=list)  # what each pool is, for meta/report
    # per-item extras recorded in meta (e.g. which negative source was used)
    item_notes: list[str | None] = field(default_factory=list)
    text_ids: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return len(self.items)


def prepare_context(dialogues: Sequence[Dialogue], taxonomy: Taxonomy, *, seed: int, strategy: str,
                    system: str | None = None) -> PairContext:
    ctx = PairContext(list(dialogues), taxonomy, seed, strategy, system)
    for i, d in enumerate(ctx.dialogues):
        li = d.last_listener_index()
        if li is not None:
            ctx.replies[i] = d.turns[li].text
        if d.emotion is None:
            ctx.unpaired.append(Unpaired(d.id, None, NO_LABEL))
            continue
        pr = dialogue_prompt(d, system)
        if isinstance(pr, str):
            ctx.unpaired.append(Unpaired(d.id, d.emotion, pr))
            continue
        ctx.prompts[i] = pr[0]
        ctx.items.append(i)
    return ctx


@dataclass
class EpochDraw:
    """The rejected donor (dialogue index, or -1 when generated) for every paired item of one epoch."""

    epoch: int
    items: np.ndarray  # positions into ctx.items that are paired
    donors: np.ndarray  # dialogue index per paired item (-1: generated text)
    generated: dict[int, str] = field(default_factory=dict)  # item position → generated text
    identical: int = 0  # pairs left with rejected text == chosen text (the pool had nothing else)


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator of one epoch's draw: independent of every other epoch."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)])))


def draw_from_pools(ctx: PairContext, epoch: int) -> EpochDraw:
    """Draw one donor per item uniformly from its pool; items with an empty pool (already reported)
    are skipped. Rejected texts equal to the chosen text are redrawn a few times."""
    rng = epoch_rng(ctx.seed, epoch)
    sizes = np.array([len(p) for p in ctx.pools], dtype=np.int64)
    has = sizes[ctx.pool_of_item] > 0 if ctx.n_items else np.zeros(0, dtype=bool)
    pos = np.nonzero(has)[0]
    if len(ctx.pools):
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        flat = np.concatenate([p for p in ctx.pools]) if sizes.sum() else np.zeros(0, dtype=np.int64)
    else:
        offsets = np.zeros(0, dtype=np.int64)
        flat = np.zeros(0, dtype=np.int64)
    pool_ids = ctx.pool_of_item[pos]
    highs = sizes[pool_ids]
    donors = flat[offsets[pool_ids] + rng.integers(0, highs)] if len(pos) else np.zeros(0, dtype=np.int64)
    # redraw rejected replies identical to the chosen one (a pool of generic replies)
    text_id = _text_ids(ctx)
    item_dlg = np.asarray(ctx.items, dtype=np.int64)[pos]
    for _ in range(REDRAW_IDENTICAL_ROUNDS):
        same = np.nonzero(text_id[donors] == text_id[item_dlg])[0] if len(pos) else np.zeros(0, dtype=np.int64)
        if not len(same):
            break
        pid = pool_ids[same]
        donors[same] = flat[offsets[pid] + rng.integers(0, sizes[pid])]
    identical = int(np.count_nonzero(text_id[donors] == text_id[item_dlg])) if len(pos) else 0
    return EpochDraw(epoch, pos, donors, identical=identical)


def _text_ids(ctx: PairContext) -> np.ndarray:
    """An integer per dialogue naming its last listener text (equal texts, equal ids; -1 for none)."""
    if ctx.text_ids is None or len(ctx.text_ids) != len(ctx.dialogues):
        index: dict[str, int] = {}
        ids = np.full(len(ctx.dialogues), -1, dtype=np.int64)
        for i, text in ctx.replies.items():
            ids[i] = index.setdefault(text, len(index))
        ctx.text_ids = ids
    return ctx.text_ids


class _Encoded:
    """JSON fragments computed once and reused by every epoch (the build is string joins)."""

    def __init__(self, ctx: PairContext) -> None:
        from json.encoder import (
            encode_basestring as js,  # same bytes as dumps(str) with ensure_ascii=False
        )

        self.prompt = {i: dumps(ctx.prompts[i]) for i in ctx.items}
        self.reply = {i: '[{"role": "assistant", "content": ' + js(t) + "}]" for i, t in ctx.replies.items()}
        self.id = [js(d.id) for d in ctx.dialogues]
        self.emotion = [js(d.emotion) if d.emotion is not None else "null" for d in ctx.dialogues]
        self.strategy = dumps(ctx.strategy)


def render_epoch(ctx: PairContext, draw: EpochDraw, enc: _Encoded | None = None,
                 extra_meta: dict[int, dict[str, Any]] | None = None) -> str:
    """The JSONL text of one epoch (rows in input order)."""
    enc = enc or _Encoded(ctx)
    parts: list[str] = []
    seed_s = dumps(ctx.seed)
    epoch_s = dumps(draw.epoch)
    for k, p in enumerate(draw.items.tolist()):
        i = ctx.items[p]
        j = int(draw.donors[k])
        if j >= 0:
            rejected = enc.reply[j]
            rid = enc.id[j]
            remo = enc.emotion[j]
        else:
            rejected = dumps([{"role": "assistant", "content": draw.generated[p]}])
            rid = "null"
            remo = dumps(ctx.pool_labels[int(ctx.pool_of_item[p])])
        note = ctx.item_notes[p] if ctx.item_notes else None
        meta = (f'{{"dialogue_id": {enc.id[i]}, "emotion": {enc.emotion[i]}, "rejected_dialogue_id": {rid}, '
                f'"rejected_emotion": {remo}, "epoch": {epoch_s}, "seed": {seed_s}, "strategy": {enc.strategy}')
        if note is not None:
            meta += f', "negative": {dumps(note)}'
        if extra_meta and p in extra_meta:
            for mk, mv in extra_meta[p].items():
                meta += f", {dumps(mk)}: {dumps(mv)}"
        meta += "}"
        parts.append(f'{{"prompt": {enc.prompt[i]}, "chosen": {enc.reply[i]}, "rejected": {rejected}, "meta": {meta}}}\n')
    return "".join(parts)


def reason_counts(unpaired: Sequence[Unpaired]) -> dict[str, int]:
    return dict(sorted(Counter(u.reason for u in unpaired).items()))
