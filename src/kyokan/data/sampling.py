"""Seeded sampling of emotion–situation pairs and situation-disjoint train/dev/test splits."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from kyokan.errors import KyokanError


def _allocate(total: int, sizes: dict[str, int], rng: random.Random) -> dict[str, int]:
    """Spread ``total`` over strata as evenly as the strata sizes allow (each stratum gets at most
    its size); leftover units go to strata drawn at random, so no label is favoured by its name."""
    alloc = dict.fromkeys(sizes, 0)
    remaining = total
    open_ = [k for k in sorted(sizes) if sizes[k] > 0]
    while remaining > 0 and open_:
        share = remaining // len(open_)
        if share == 0:
            for k in rng.sample(open_, remaining):
                alloc[k] += 1
            break
        for k in open_:
            take = min(share, sizes[k] - alloc[k])
            alloc[k] += take
            remaining -= take
        open_ = [k for k in open_ if alloc[k] < sizes[k]]
    return alloc


def sample_pairs(records: Iterable[dict[str, Any]], n: int, seed: int, *, stratify: bool = False,
                 all_dialogues: bool = False, n_name: str = "--n") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Draw ``n`` distinct (emotion, situation) pairs. Each sampled pair is represented by one of
    its dialogues drawn at random (or all of them with ``all_dialogues``). The draw depends only on
    the set of pairs and ids, not on file order. ``n_name`` is how the caller's user wrote ``n``
    (a flag, or a config key), for the error."""
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_pair[(r["emotion"] or "", r["situation_id"])].append(r)
    pairs = sorted(by_pair)
    if n > len(pairs):
        raise KyokanError(f"{n_name} {n} is more than the {len(pairs)} emotion–situation pairs in the data")
    rng = random.Random(seed)
    if stratify:
        by_emo: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for p in pairs:
            by_emo[p[0]].append(p)
        alloc = _allocate(n, {e: len(v) for e, v in by_emo.items()}, rng)
        chosen = []
        for e in sorted(by_emo):
            chosen.extend(rng.sample(by_emo[e], alloc[e]))
        chosen.sort(key=lambda p: pairs.index(p))
        rng.shuffle(chosen)
    else:
        chosen = rng.sample(pairs, n)
    out: list[dict[str, Any]] = []
    for i, p in enumerate(chosen):
        group = sorted(by_pair[p], key=lambda r: r["id"])
        picks = group if all_dialogues else [rng.choice(group)]
        for r in picks:
            r = dict(r)
            r["meta"] = {**r.get("meta", {}), "sample": {"pair_index": i, "seed": seed, "dialogues_in_pair": len(group)}}
            out.append(r)
    per_emotion = Counter(p[0] for p in chosen)
    report = {"n": n, "seed": seed, "stratified": stratify, "pairs_available": len(pairs),
              "rows": len(out), "pairs_per_emotion": dict(sorted(per_emotion.items()))}
    return out, report


def check_ratios(vals: Sequence[float], what: str = "--ratios") -> tuple[float, float, float]:
    """Three non-negative train,dev,test shares that sum to 1 (within 1e-6): a sum of 1.2 is a typo,
    not something to rescale silently."""
    v = [float(x) for x in vals]
    if len(v) != 3 or any(x < 0 for x in v):
        raise KyokanError(f"{what} needs three non-negative numbers for train,dev,test; got {list(vals)!r}")
    total = sum(v)
    if abs(total - 1.0) > 1e-6:
        raise KyokanError(f"{what} {','.join(f'{x:g}' for x in v)} sums to {total:.6g}, not 1")
    return v[0], v[1], v[2]


def parse_ratios(text: str | Sequence[float]) -> tuple[float, float, float]:
    try:
        vals = [float(x) for x in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise KyokanError(f"--ratios needs three numbers for train,dev,test; got {text!r}") from None
    return check_ratios(vals)


SPLITS = ("train", "dev", "test")


def assign_splits(situation_emotions: dict[str, Counter[str]], ratios: tuple[float, float, float],
                  seed: int) -> dict[str, str]:
    """Map each situation to a split. Situations are stratified by their majority emotion: within
    each emotion they are shuffled (seeded) and cut by the ratios with largest-remainder rounding,
    so every split gets its share of every label and no situation lands in two splits."""
    rng = random.Random(seed)
    by_emo: dict[str, list[str]] = defaultdict(list)
    for sid in sorted(situation_emotions):
        c = situation_emotions[sid]
        major = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        by_emo[major].append(sid)
    out: dict[str, str] = {}
    carry = [0.0, 0.0, 0.0]
    for emo in sorted(by_emo):
        sids = by_emo[emo]
        rng.shuffle(sids)
        m = len(sids)
        exact = [r * m + c for r, c in zip(ratios, carry, strict=True)]
        counts = [int(x) for x in exact]
        rest = m - sum(counts)
        order = sorted(range(3), key=lambda i: (-(exact[i] - counts[i]), i))
        for i in order[:rest]:
            counts[i] += 1
        # carry rounding error across emotions so small labels don't all round the same way
        carry = [e - c for e, c in zip(exact, counts, strict=True)]
        start = 0
        for split, k in zip(SPLITS, counts, strict=True):
            for sid in sids[start:start + k]:
                out[sid] = split
            start += k
    return out
