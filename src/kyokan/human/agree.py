"""Judge vs human (EmplifAI Table 5) from the judge's rows and imported human ratings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kyokan.errors import KyokanError
from kyokan.human.scales import EMPLIFAI_METRICS, labels
from kyokan.tables import Table


def judge_model(path: str | Path) -> str | None:
    """The judge model named in the first row that has one."""
    from kyokan.stats.data import iter_rows

    for _, row in iter_rows(path):
        j = row.get("judge")
        if isinstance(j, dict) and j.get("model"):
            return str(j["model"])
    return None


def dialogue_sources(path: str | Path) -> dict[str, str]:
    """id → ``meta.generation.model`` of a dialogue file (for judge rows without ``source``)."""
    from kyokan.stats.data import iter_rows, source_of

    return {str(r["id"]): s for _, r in iter_rows(path) if "id" in r and (s := source_of(r, "meta.generation.model"))}


def load_judge(path: str | Path, dialogues: str | Path | None = None, default_source: str | None = None,
               ) -> dict[str, dict[str, dict[str, float | None]]]:
    from kyokan.stats.data import iter_rows, load_scores, numeric_fields, source_of

    if dialogues is None:
        return load_scores(path, default_source=default_source)
    src_map = dialogue_sources(dialogues)
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for _, row in iter_rows(path):
        if row.get("status") == "unscored":
            continue
        rid = str(row.get("id"))
        src = source_of(row) or src_map.get(rid) or default_source or "unknown"
        out.setdefault(src, {})[rid] = {k: v for k, v in numeric_fields(row).items()}
    return out


def agree(judge_path: str | Path, human_path: str | Path, *, source: str | None = None,
          metrics: list[str] | None = None, metric_map: dict[str, str] | None = None,
          dialogues: str | Path | None = None, judge_name: str | None = None,
          human_name: str = "Crowd workers") -> dict[str, Any]:
    """Pair judge and human scores per item and build Table 5 for each source both sides rated."""
    from kyokan.stats.data import load_scores
    from kyokan.stats.tables import judge_vs_human

    hp = Path(human_path)
    if hp.is_dir():
        hp = hp / "per_item.jsonl"
    judge = load_judge(judge_path, dialogues)
    human = load_scores(hp)
    metric_map = metric_map or {}
    if metrics is None:
        names = [s.name for s in EMPLIFAI_METRICS]
        present = {m for src in judge.values() for v in src.values() for m, x in v.items() if x is not None}
        metrics = [m for m in names if m in present] or sorted(present)
    if source is not None:
        pairs = [(source, source)] if source in judge and source in human else []
        if not pairs:
            raise KyokanError(f"source {source!r} not found: judge has {sorted(judge)}, human ratings have {sorted(human)}")
    else:
        pairs = [(s, s) for s in sorted(judge) if s in human]
        if not pairs and len(judge) == 1 and len(human) == 1:
            pairs = [(next(iter(judge)), next(iter(human)))]
    if not pairs:
        raise KyokanError(f"no source rated by both: judge has {sorted(judge)}, human ratings have {sorted(human)}; "
                          "pass --source")
    jname = judge_name or judge_model(judge_path) or "LLM judge"
    lab = labels(EMPLIFAI_METRICS)
    results: dict[str, Any] = {}
    tables: list[Table] = []
    for js, hs in pairs:
        hum = {k: {m: v.get(metric_map.get(m, m)) for m in metrics} for k, v in human[hs].items()}
        t, detail, data = judge_vs_human(judge[js], hum, metrics, judge_name=jname, human_name=human_name, labels=lab)
        suffix = "" if len(pairs) == 1 else f"_{_slug(js)}"
        t.key += suffix
        detail.key += suffix
        t.title += f" — dialogues by {js}"
        tables += [t, detail]
        results[js] = {"human_source": hs, "judge": jname, "metrics": data}
    return {"results": results, "tables": tables}


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s)
