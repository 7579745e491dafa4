"""Check built pairs against their dialogues: every pair valid by the EmPO rules, every pairable
dialogue paired once in every epoch. Written independently of the builder so it can catch it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kyokan.errors import KyokanError, Problem

if TYPE_CHECKING:
    from kyokan.data import Dialogue
    from kyokan.taxonomy import Taxonomy


def _last_listener(d: Dialogue) -> str | None:
    for t in reversed(d.turns):
        if t.role == "listener":
            return t.text
    return None


def _expected_prompt(d: Dialogue, system: str | None) -> list[dict[str, str]] | None:
    idx = [i for i, t in enumerate(d.turns) if t.role == "listener"]
    if not idx:
        return None
    i = idx[-1]
    if i == 0 or d.turns[i - 1].role != "speaker":
        return None
    msgs = [{"role": "system", "content": system}] if system else []
    for t in d.turns[:i]:
        msgs.append({"role": "user" if t.role == "speaker" else "assistant", "content": t.text})
    return msgs


def pairable(dialogues: Sequence[Dialogue], taxonomy: Taxonomy, strategy: str = "opposite") -> set[str]:
    """Ids of the dialogues the rules say must be paired in every epoch."""
    with_reply = Counter(d.emotion for d in dialogues if d.emotion is not None and _last_listener(d) is not None)
    out = set()
    for d in dialogues:
        if d.emotion is None or _expected_prompt(d, None) is None:
            continue
        opp = taxonomy.opposite(d.emotion)
        if strategy == "model":
            if opp is not None:
                out.add(d.id)
            continue
        if (opp is not None and with_reply.get(opp, 0) > 0) or (strategy == "same-situation" and any(
                o.situation_id == d.situation_id and o.emotion not in (None, d.emotion) and _last_listener(o) is not None
                for o in dialogues)):
            out.add(d.id)
    return out


def check_rows(dialogues: Sequence[Dialogue], taxonomy: Taxonomy, epochs: Mapping[int, Iterable[dict[str, Any]]], *,
               strategy: str = "opposite", seed: int | None = None, system: str | None = None,
               path_of: dict[int, str] | None = None, require_all: bool = True) -> list[Problem]:
    by_id = {d.id: d for d in dialogues}
    probs: list[Problem] = []
    must = pairable(dialogues, taxonomy, strategy) if require_all else set()

    for epoch, rows in sorted(epochs.items()):
        path = (path_of or {}).get(epoch, f"epoch-{epoch}.jsonl")
        seen: Counter[str] = Counter()
        for line, row in enumerate(rows, 1):
            def bad(fld: str, msg: str, line: int = line, path: str = path) -> None:
                probs.append(Problem(path, line, fld, msg))

            meta = row.get("meta") or {}
            did = str(meta.get("dialogue_id"))
            d = by_id.get(did)
            if d is None:
                bad("meta.dialogue_id", f"{did!r} is not in the data")
                continue
            seen[did] += 1
            if meta.get("epoch") != epoch:
                bad("meta.epoch", f"{meta.get('epoch')!r} in the file of epoch {epoch}")
            if seed is not None and meta.get("seed") != seed:
                bad("meta.seed", f"{meta.get('seed')!r}, expected {seed}")
            if meta.get("emotion") != d.emotion:
                bad("meta.emotion", f"{meta.get('emotion')!r} but the dialogue is labelled {d.emotion!r}")
            if row.get("prompt") != _expected_prompt(d, system):
                bad("prompt", "is not the dialogue up to its last speaker turn")
            if row.get("chosen") != [{"role": "assistant", "content": _last_listener(d)}]:
                bad("chosen", "is not the dialogue's own last listener turn")
            rej = row.get("rejected")
            if not (isinstance(rej, list) and len(rej) == 1 and rej[0].get("role") == "assistant"
                    and isinstance(rej[0].get("content"), str) and rej[0]["content"].strip()):
                bad("rejected", "must be one non-empty assistant message")
                continue
            opp = taxonomy.opposite(d.emotion or "")
            remo = meta.get("rejected_emotion")
            rid = str(meta.get("rejected_dialogue_id"))
            if strategy == "model":
                if remo != opp:
                    bad("meta.rejected_emotion", f"{remo!r}, the opposite of {d.emotion!r} is {opp!r}")
                continue
            r = by_id.get(rid)
            if r is None:
                bad("meta.rejected_dialogue_id", f"{rid!r} is not in the data")
                continue
            if rej[0]["content"] != _last_listener(r):
                bad("rejected", f"is not the last listener turn of {rid!r}")
            if r.emotion != remo:
                bad("meta.rejected_emotion", f"{remo!r} but {rid!r} is labelled {r.emotion!r}")
            negative = meta.get("negative")
            if (strategy == "opposite" or negative in ("opposite-fallback", "same-situation-opposite")) \
                    and remo != opp:
                bad("meta.rejected_emotion", f"{remo!r}, the opposite of {d.emotion!r} is {opp!r}")
            if strategy == "same-situation":
                if r.emotion == d.emotion:
                    bad("meta.rejected_emotion", "same emotion as the chosen dialogue")
                if negative in ("same-situation", "same-situation-opposite") and r.situation_id != d.situation_id:
                    bad("meta.rejected_dialogue_id", f"{rid!r} is from another situation")
        for did, n in seen.items():
            if n > 1:
                probs.append(Problem(path, None, "meta.dialogue_id", f"{did!r} is paired {n} times"))
        for did in sorted(must - set(seen)):
            probs.append(Problem(path, None, "meta.dialogue_id", f"pairable dialogue {did!r} is missing"))
    return probs


def load_pair_dir(pair_dir: str | Path) -> tuple[dict[str, Any], dict[int, list[dict[str, Any]]], dict[int, str]]:
    """The report and the rows of every ``epoch-K.jsonl`` in a pairs folder."""
    d = Path(pair_dir)
    rp = d / "report.json"
    if not rp.exists():
        raise KyokanError(f"{d}: no report.json (not a folder written by `kyokan prefs build`)")
    report = json.loads(rp.read_text(encoding="utf-8"))
    epochs: dict[int, list[dict[str, Any]]] = {}
    paths: dict[int, str] = {}
    for p in sorted(d.glob("epoch-*.jsonl")):
        try:
            k = int(p.stem.split("-", 1)[1])
        except ValueError:
            continue
        with open(p, encoding="utf-8") as f:
            epochs[k] = [json.loads(line) for line in f if line.strip()]
        paths[k] = str(p)
    return report, epochs, paths
