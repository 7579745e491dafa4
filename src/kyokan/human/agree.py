"""Judge vs human (EmplifAI Table 5) from the judge's rows and imported human ratings.

Items pair like with like: a judge row and a human per-item mean count together only when they
are about the same dialogue (``dialogue_id`` / ``id``) of the same source. When the two sides name
their sources differently the command refuses, naming both, until ``--source JUDGE=HUMAN`` says
which judge rows go with which human ratings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.human.scales import EMPLIFAI_METRICS, labels
from kyokan.tables import Table


def load_judge(path: str | Path) -> tuple[dict[str, dict[str, dict[str, float | None]]], list[str]]:
    """({source: {dialogue id: {metric: score}}} of the scored judge rows, judge model names)."""
    from kyokan.records import JudgedRow, read_rows

    rows = read_rows(path, JudgedRow)
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for r in rows:
        if r.scored:
            out.setdefault(r.source_model, {})[r.dialogue_id] = {
                m: (None if v is None else float(v)) for m, v in r.scores.items()}
    judges = sorted({m for r in rows for m in r.judge.get("models", [])})
    return out, judges


def parse_source_pairs(specs: list[str] | None) -> list[tuple[str, str]] | None:
    """``--source`` values: ``S`` (the same name on both sides) or ``JUDGE_SOURCE=HUMAN_SOURCE``."""
    if not specs:
        return None
    out = []
    for s in specs:
        a, sep, b = s.partition("=")
        a, b = a.strip(), (b.strip() if sep else a.strip())
        if not a or not b:
            raise KyokanError(f"--source {s!r}: expected SOURCE or JUDGE_SOURCE=HUMAN_SOURCE")
        out.append((a, b))
    return out


def agree(judge_path: str | Path, human_path: str | Path, *, sources: list[tuple[str, str]] | None = None,
          metrics: list[str] | None = None, metric_map: dict[str, str] | None = None,
          judge_name: str | None = None, human_name: str = "Crowd workers") -> dict[str, Any]:
    """Pair judge and human scores per (source, dialogue) and build Table 5 for each source pair."""
    from kyokan.stats.data import load_scores
    from kyokan.stats.tables import judge_vs_human

    hp = Path(human_path)
    if hp.is_dir():
        hp = hp / "per_item.jsonl"
    judge, judges = load_judge(judge_path)
    hf = load_scores(hp)
    if hf.kind != "kyokan.human.item":
        raise KyokanError(f"{hp}: holds {hf.kind} scores; human agree needs the per_item.jsonl of `kyokan human import`")
    human = hf.groups
    metric_map = metric_map or {}
    if metrics is None:
        names = [s.name for s in EMPLIFAI_METRICS]
        present = {m for src in judge.values() for v in src.values() for m, x in v.items() if x is not None}
        metrics = [m for m in names if m in present] or sorted(present)
    if sources is not None:
        for js, hs in sources:
            if js not in judge:
                raise KyokanError(f"--source {js}: the judge rows have no source {js!r} (they have {sorted(judge)})")
            if hs not in human:
                raise KyokanError(f"--source {hs}: the human ratings have no source {hs!r} (they have {sorted(human)})")
        pairs = sources
    else:
        pairs = [(s, s) for s in sorted(judge) if s in human]
        if not pairs:
            raise KyokanError(f"the judge rows and the human ratings name different sources — judge: {sorted(judge)}, "
                              f"human: {sorted(human)}; say which go together with --source JUDGE_SOURCE=HUMAN_SOURCE")
    jname = judge_name or ", ".join(judges) or "LLM judge"
    lab = labels(EMPLIFAI_METRICS)
    results: dict[str, Any] = {}
    tables: list[Table] = []
    for js, hs in pairs:
        shared = sorted(set(judge[js]) & set(human[hs]))
        if not shared:
            raise KyokanError(f"judge source {js!r} and human source {hs!r} share no dialogue id "
                              f"(judge e.g. {sorted(judge[js])[:3]}, human e.g. {sorted(human[hs])[:3]})")
        hum = {k: {m: v.get(metric_map.get(m, m)) for m in metrics} for k, v in human[hs].items()}
        t, detail, data = judge_vs_human(judge[js], hum, metrics, judge_name=jname, human_name=human_name, labels=lab)
        suffix = "" if len(pairs) == 1 else f"_{_slug(js)}"
        t.key += suffix
        detail.key += suffix
        t.title += f" — dialogues by {js}" + (f" (human source {hs})" if hs != js else "")
        tables += [t, detail]
        results[js] = {"human_source": hs, "judge": jname, "items": len(shared), "metrics": data}
    return {"results": results, "tables": tables}


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s)
