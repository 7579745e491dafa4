"""Survey designs: who rates what, in which order — seeded, with attention checks and hidden sources.

Two styles ship (a new style is one ``SurveyStyle`` added to ``STYLES``):

* **emplifai** — the dialogues are shuffled and split into groups of ``group_size`` (10); each
  group is one task rated by ``raters`` (3) workers on the 7 metrics, 5-point Likert. A
  dialogue's score is the mean of its raters.
* **empo** — ``n_samples`` contexts shared by every source, stratified by emotion (≥
  ``min_per_emotion`` each); each (sample, source) item is rated ``ratings`` (3) times, in
  batches of ``batch_size`` (15) made of blocks of ``block_size`` (5) consecutive items from one
  source, the order of a batch's sources cycling through all 3! = 6 orders; the same context
  never appears twice in a batch; sources listed as ``unblocked`` get single-source batches
  (the paper's length-controlled baseline).

Every item gets an opaque code; which sample and source it is lives only in the key, kept
apart from the packets. Each task gets ``attention_checks`` instructed-response items.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kyokan.errors import KyokanError
from kyokan.human.scales import EMPLIFAI_METRICS, EMPO_DIMENSIONS, Scale

DESIGN_VERSION = 1


@dataclass
class Item:
    """One thing to rate: a dialogue (EmplifAI) or a context + last listener response (EmPO)."""

    sample_id: str
    source: str
    emotion: str | None
    lang: str
    situation: str
    turns: list[dict[str, str]]
    code: str = ""
    attention: dict[str, Any] | None = None  # {"expect": {...}} for attention checks

    def public(self, rate_last: bool) -> dict[str, Any]:
        """What a rater sees (no sample id, no source)."""
        return {"item": self.code, "lang": self.lang, "situation": self.situation, "turns": self.turns,
                "rate_turn": (len(self.turns) - 1) if rate_last else None}


@dataclass
class Task:
    """One rater's packet."""

    assignment: str
    items: list[Item]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Design:
    style: str
    seed: int
    params: dict[str, Any]
    scales: tuple[Scale, ...]
    tasks: list[Task]
    rate_last: bool
    warnings: list[str] = field(default_factory=list)

    def items(self) -> dict[str, Item]:
        return {it.code: it for t in self.tasks for it in t.items}

    def key(self) -> dict[str, Any]:
        """The unblinding key: item code → sample and source; attention expectations; tasks."""
        items = {c: ({"attention": True, "expect": it.attention["expect"], "rule": it.attention["rule"]}
                     if it.attention else {"sample_id": it.sample_id, "source": it.source, "emotion": it.emotion})
                 for c, it in sorted(self.items().items())}
        return {"kyokan_human_key": DESIGN_VERSION, "style": self.style, "seed": self.seed,
                "scales": [s.to_dict() for s in self.scales],
                "items": items, "assignments": {t.assignment: [i.code for i in t.items] for t in self.tasks},
                "task_meta": {t.assignment: t.meta for t in self.tasks}}

    def summary(self) -> dict[str, Any]:
        items = [i for t in self.tasks for i in t.items]
        real = [i for i in items if not i.attention]
        return {"style": self.style, "seed": self.seed, "params": self.params, "tasks": len(self.tasks),
                "ratings_requested": len(real), "attention_checks": len(items) - len(real),
                "distinct_items": len({i.code for i in real}), "sources": len({i.source for i in real}),
                "samples": len({i.sample_id for i in real}), "warnings": self.warnings}


# --- attention checks ---------------------------------------------------------------------

_ATTN_TEXT = {
    ("likert", "ja"): ("（注意確認）この会話では、すべての評価項目で「2」を選んでください。",
                       "注意確認のための項目です。"),
    ("likert", "en"): ("(Attention check) For this conversation, please choose 2 for every question.",
                       "This item checks attention."),
    ("slider", "ja"): ("（注意確認）この会話では、すべてのスライダーを一番左（0）にし、チェックボックスは空欄のままにしてください。",
                       "注意確認のための項目です。"),
    ("slider", "en"): ("(Attention check) For this conversation, please move every slider to the far left (0) "
                       "and leave the checkbox empty.", "This item checks attention."),
}


def attention_item(kind: str, lang: str, scales: Sequence[Scale]) -> Item:
    lang = "ja" if lang == "ja" else "en"
    instruction, speaker = _ATTN_TEXT[(kind, lang)]
    if kind == "likert":
        expect = {s.name: [2, 2] for s in scales}
        rule = "every metric = 2"
    else:
        expect = {s.name: ([0, 10] if s.kind == "slider" else [0, 0]) for s in scales}
        rule = "every slider ≤ 10 and checkbox empty"
    turns = [{"role": "speaker", "text": speaker}, {"role": "listener", "text": instruction}]
    return Item("attention", "attention", None, lang, speaker, turns, attention={"expect": expect, "rule": rule})


def _codes(rng: random.Random, n: int, used: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        c = f"i{rng.getrandbits(32):08x}"
        if c not in used:
            used.add(c)
            out.append(c)
    return out


def _insert_attention(rng: random.Random, items: list[Item], k: int, kind: str, scales: Sequence[Scale],
                      used: set[str]) -> list[Item]:
    out = list(items)
    lang = items[0].lang if items else "en"
    for _ in range(k):
        a = attention_item(kind, lang, scales)
        a.code = _codes(rng, 1, used)[0]
        out.insert(rng.randint(1, len(out)) if out else 0, a)
    return out


# --- EmplifAI style ---------------------------------------------------------------------

def build_emplifai(items: list[Item], *, seed: int, group_size: int = 10, raters: int = 3,
                   attention_checks: int = 1, shuffle_within: bool = True) -> Design:
    if group_size < 1 or raters < 1:
        raise KyokanError("group size and raters must be positive")
    if not items:
        raise KyokanError("no dialogues to rate")
    _no_duplicates(items)
    rng = random.Random(seed)
    pool = sorted(items, key=lambda i: (i.source, i.sample_id))
    rng.shuffle(pool)
    used: set[str] = set()
    for it, c in zip(pool, _codes(rng, len(pool), used), strict=True):
        it.code = c
    groups = [pool[i:i + group_size] for i in range(0, len(pool), group_size)]
    warnings = []
    if len(groups[-1]) < group_size and len(groups) > 1:
        warnings.append(f"{len(pool)} dialogues do not divide into groups of {group_size}: the last group has {len(groups[-1])}")
    tasks = []
    width = max(2, len(str(len(groups))))
    for g, members in enumerate(groups, 1):
        for r in range(1, raters + 1):
            order = list(members)
            if shuffle_within:
                rng.shuffle(order)
            order = _insert_attention(rng, order, attention_checks, "likert", EMPLIFAI_METRICS, used)
            tasks.append(Task(f"g{g:0{width}d}-r{r}", order, {"group": g, "rater_slot": r}))
    params = {"group_size": group_size, "raters": raters, "attention_checks": attention_checks,
              "shuffle_within": shuffle_within, "scale": "5-point Likert"}
    return Design("emplifai", seed, params, EMPLIFAI_METRICS, tasks, False, warnings)


def _no_duplicates(items: list[Item]) -> None:
    seen: set[tuple[str, str]] = set()
    for it in items:
        k = (it.source, it.sample_id)
        if k in seen:
            raise KyokanError(f"dialogue {it.sample_id!r} of source {it.source!r} appears twice")
        seen.add(k)


# --- EmPO style -----------------------------------------------------------------------------

def stratified_samples(by_id: dict[str, str | None], n: int, min_per_emotion: int, rng: random.Random,
                       ) -> tuple[list[str], list[str]]:
    """``n`` sample ids with at least ``min_per_emotion`` of every emotion (all of an emotion when it
    has fewer), the rest drawn at random; returns (ids, warnings)."""
    by_emotion: dict[str, list[str]] = defaultdict(list)
    for sid, emo in sorted(by_id.items()):
        by_emotion[emo or ""].append(sid)
    warnings = []
    chosen: list[str] = []
    for emo in sorted(by_emotion):
        ids = list(by_emotion[emo])
        rng.shuffle(ids)
        take = ids[:min_per_emotion]
        if len(take) < min_per_emotion:
            warnings.append(f"emotion {emo or '(none)'!r} has only {len(take)} samples (< {min_per_emotion})")
        chosen += take
    if len(chosen) > n:
        warnings.append(f"{len(by_emotion)} emotions × {min_per_emotion} = {len(chosen)} samples exceed n={n}; using {len(chosen)}")
        return chosen, warnings
    rest = sorted(set(by_id) - set(chosen))
    rng.shuffle(rest)
    chosen += rest[: n - len(chosen)]
    if len(chosen) < n:
        warnings.append(f"only {len(chosen)} samples available (n={n} requested)")
    return chosen, warnings


def _assemble(blocks: list[tuple[int, str]], copies: int, per_batch: int, rng: random.Random,
              ) -> list[list[tuple[int, str]]]:
    """Batches of ``per_batch`` blocks, each block used ``copies`` times, no two blocks of a batch
    sharing a group (context) or a source; leftovers become smaller valid batches."""
    best: list[list[tuple[int, str]]] | None = None
    for _attempt in range(50):
        remaining = {b: copies for b in blocks}
        batches: list[list[tuple[int, str]]] = []
        while True:
            avail = [b for b, c in remaining.items() if c > 0]
            if not avail:
                break
            batch: list[tuple[int, str]] = []
            rng.shuffle(avail)
            avail.sort(key=lambda b: -remaining[b])
            for b in avail:
                if len(batch) == per_batch:
                    break
                if all(b[0] != x[0] and b[1] != x[1] for x in batch):
                    batch.append(b)
            for b in batch:
                remaining[b] -= 1
            batches.append(batch)
        if best is None or sum(len(b) < per_batch for b in batches) < sum(len(b) < per_batch for b in best):
            best = batches
        if all(len(b) == per_batch for b in best):
            break
    return best or []


def build_empo(by_source: dict[str, list[Item]], *, seed: int, n_samples: int = 135, min_per_emotion: int = 4,
               batch_size: int = 15, block_size: int = 5, ratings: int = 3, attention_checks: int = 1,
               unblocked: Sequence[str] = ()) -> Design:
    if batch_size % block_size:
        raise KyokanError(f"batch size {batch_size} is not a multiple of the block size {block_size}")
    if not by_source:
        raise KyokanError("no sources given")
    for s in unblocked:
        if s not in by_source:
            raise KyokanError(f"--unblocked {s!r} is not one of the sources {sorted(by_source)}")
    rng = random.Random(seed)
    for items in by_source.values():
        _no_duplicates(items)
    index = {s: {i.sample_id: i for i in items} for s, items in by_source.items()}
    common = set.intersection(*(set(v) for v in index.values()))
    if not common:
        raise KyokanError("the sources share no sample id: EmPO-style surveys rate every source on the same contexts")
    first = next(iter(index.values()))
    emotions = {sid: first[sid].emotion for sid in common}
    chosen, warnings = stratified_samples(emotions, n_samples, min_per_emotion, rng)
    rng.shuffle(chosen)
    groups = [chosen[i:i + block_size] for i in range(0, len(chosen), block_size)]
    if len(groups[-1]) < block_size:
        warnings.append(f"{len(chosen)} samples do not fill blocks of {block_size}: the last block has {len(groups[-1])}")
    used: set[str] = set()
    codes: dict[tuple[str, str], str] = {}
    for s in sorted(by_source):
        for sid in sorted(chosen):
            codes[(s, sid)] = _codes(rng, 1, used)[0]
    per_batch = batch_size // block_size
    blocked = sorted(s for s in by_source if s not in unblocked)
    batches = _assemble([(g, s) for g in range(len(groups)) for s in blocked], ratings, per_batch, rng)
    for s in sorted(unblocked):
        batches += _assemble([(g, s) for g in range(len(groups))], ratings, per_batch, rng)
    rng.shuffle(batches)
    perms_used: dict[int, int] = defaultdict(int)
    tasks: list[Task] = []
    width = max(3, len(str(len(batches))))
    for b, blocks in enumerate(batches, 1):
        blocks = sorted(blocks, key=lambda x: (x[1], x[0]))
        perms = list(itertools.permutations(range(len(blocks))))
        pi = perms_used[len(blocks)] % len(perms)
        perms_used[len(blocks)] += 1
        ordered = [blocks[i] for i in perms[pi]]
        batch_items: list[Item] = []
        for g, s in ordered:
            for sid in groups[g]:
                src = index[s][sid]
                batch_items.append(Item(sid, s, src.emotion, src.lang, src.situation, src.turns, codes[(s, sid)]))
        batch_items = _insert_attention(rng, batch_items, attention_checks, "slider", EMPO_DIMENSIONS, used)
        tasks.append(Task(f"b{b:0{width}d}", batch_items, {"blocks": len(ordered), "order": pi,
                                                     "single_source": len({s for _, s in ordered}) == 1}))
    short = sum(1 for t in tasks if t.meta["blocks"] < per_batch)
    if short:
        warnings.append(f"{short} batch(es) have fewer than {per_batch} blocks (the block constraints left no full fill)")
    params = {"n_samples": n_samples, "min_per_emotion": min_per_emotion, "batch_size": batch_size,
              "block_size": block_size, "ratings": ratings, "attention_checks": attention_checks,
              "unblocked_sources": len(unblocked), "scale": "0–100 sliders + checkbox"}
    return Design("empo", seed, params, EMPO_DIMENSIONS, tasks, True, warnings)


@dataclass(frozen=True)
class SurveyStyle:
    name: str
    description: str
    scales: tuple[Scale, ...]
    multi_source: bool


STYLES: dict[str, SurveyStyle] = {
    "emplifai": SurveyStyle("emplifai", "groups of 10 dialogues × 3 raters, 7 metrics, 5-point Likert", EMPLIFAI_METRICS, False),
    "empo": SurveyStyle("empo", "block-randomised batches of 15 (blocks of 5 per source), 4 sliders 0–100 + checkbox, 3 ratings per item",
                        EMPO_DIMENSIONS, True),
}

BUILDERS: dict[str, Callable[..., Design]] = {"emplifai": build_emplifai, "empo": build_empo}
