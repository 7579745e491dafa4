"""Survey designs: EmplifAI groups × raters, EmPO block-randomised batches; seeded, blinded, attention checks."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from kyokan.human.design import Item, build_emplifai, build_empo
from report_util import dialogues, run_cli, write_jsonl


def _items(source: str, n: int, emotions: int = 8) -> list[Item]:
    return [Item(d["id"], source, d["emotion"], "ja", d["situation"], d["turns"]) for d in dialogues(source, n)][:n]


def test_emplifai_groups_raters_attention_and_seed() -> None:
    d = build_emplifai(_items("gpt", 100), seed=42)
    assert len(d.tasks) == 30  # 10 groups × 3 raters
    real = Counter(i.sample_id for t in d.tasks for i in t.items if not i.attention)
    assert len(real) == 100 and set(real.values()) == {3}
    for t in d.tasks:
        assert sum(1 for i in t.items if i.attention) == 1
        assert len(t.items) == 11
    # the three raters of a group see the same ten dialogues
    groups: dict[int, set[frozenset[str]]] = {}
    for t in d.tasks:
        groups.setdefault(t.meta["group"], set()).add(frozenset(i.sample_id for i in t.items if not i.attention))
    assert all(len(v) == 1 for v in groups.values())
    again = build_emplifai(_items("gpt", 100), seed=42)
    assert [[i.code for i in t.items] for t in again.tasks] == [[i.code for i in t.items] for t in d.tasks]
    other = build_emplifai(_items("gpt", 100), seed=43)
    assert [[i.code for i in t.items] for t in other.tasks] != [[i.code for i in t.items] for t in d.tasks]


def test_empo_blocks_orders_ratings() -> None:
    by_source = {s: _items(s, 48) for s in ("human", "baseline", "sft", "dpo")}
    d = build_empo(by_source, seed=7, n_samples=40, min_per_emotion=4)
    real = [i for t in d.tasks for i in t.items if not i.attention]
    per_item = Counter((i.source, i.sample_id) for i in real)
    assert len(per_item) == 160 and set(per_item.values()) == {3}  # 40 samples × 4 sources, 3 ratings each
    emos = Counter(i.emotion for i in real if i.source == "human")
    assert all(v // 3 >= 4 for v in emos.values()) and len(emos) == 8
    orders = set()
    for t in d.tasks:
        items = [i for i in t.items if not i.attention]
        assert len(items) == 15
        blocks = [items[k:k + 5] for k in range(0, 15, 5)]
        assert all(len({i.source for i in b}) == 1 for b in blocks)  # a block is one source
        srcs = [b[0].source for b in blocks]
        assert len(set(srcs)) == 3  # three different sources per batch
        assert len({i.sample_id for i in items}) == 15  # no context twice in a batch
        orders.add(tuple(sorted(range(3), key=lambda k: srcs[k])))
    assert len(d.tasks) == 32
    assert orders == set(itertools.permutations(range(3)))  # all 3! orders occur


def test_empo_unblocked_source_gets_single_source_batches() -> None:
    by_source = {s: _items(s, 40) for s in ("human", "baseline", "sft", "dpo", "lenctl")}
    d = build_empo(by_source, seed=1, n_samples=30, min_per_emotion=2, unblocked=["lenctl"])
    for t in d.tasks:
        srcs = {i.source for i in t.items if not i.attention}
        assert ("lenctl" in srcs) == (srcs == {"lenctl"})


def test_build_cli_writes_blind_packets_and_separate_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", dialogues("model-a", 12))
    b = write_jsonl(tmp_path / "b.jsonl", dialogues("model-b", 12))
    code, out, err = run_cli(["human", "build", f"dpo={a}", f"sft={b}", "--style", "empo", "--seed", "3",
                              "--n-samples", "10", "--min-per-emotion", "1", "-o", str(tmp_path / "survey"), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["sources"] == 2 and summary["ratings_requested"] == 60
    key = json.loads((tmp_path / "survey.key.json").read_text(encoding="utf-8"))
    assert {v["source"] for v in key["items"].values() if not v.get("attention")} == {"dpo", "sft"}
    for f in ("packets.csv", "tasks.jsonl", "design.json"):
        text = (tmp_path / "survey" / f).read_text(encoding="utf-8")
        assert "dpo" not in text and "sft" not in text and "d-00" not in text, f  # no source or sample id leaks
    assert "model-a" not in (tmp_path / "survey" / "packets.csv").read_text(encoding="utf-8").split("response")[0]
    import csv

    with (tmp_path / "survey" / "packets.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["lang"] == "ja" and r["dialogue"]]
    assert rows and all(r["dialogue"].startswith("話し手：") for r in rows)  # Japanese labels for Japanese data
    assert not any("Speaker:" in r["dialogue"] or "Listener:" in r["dialogue"] for r in rows)
    code, _, err = run_cli(["human", "build", str(a), "--seed", "1", "-o", str(tmp_path / "s2"),
                            "--key", str(tmp_path / "s2" / "key.json")], capsys)
    assert code == 2 and "must not be inside the packet folder" in err
