"""EmPO preference pairs: validity by the rules, redraw per epoch, determinism, unpaired report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyokan.data import Dialogue, Turn, load_dialogues, sample_path
from kyokan.prefs import build_pairs, check_rows, pairable, write_pairs
from kyokan.prefs.pairs import (
    LAST_NOT_AFTER_SPEAKER,
    NO_LABEL,
    NO_LISTENER,
    NO_OPPOSITE,
    NO_OPPOSITE_DIALOGUE,
    NO_PROMPT,
)
from kyokan.taxonomy import Taxonomy, get_taxonomy

GO = get_taxonomy("goemotions28")
LABELS = ["joy", "sadness", "anger", "fear", "amusement", "embarrassment", "pride", "neutral", "caring", "excitement",
          "grief"]


def dlg(i: int, emotion: str | None, roles: str = "slsl", situation: str | None = None, text: str | None = None) -> Dialogue:
    turns = [Turn("speaker" if r == "s" else "listener", f"{'S' if r == 's' else 'L'}{i}.{k}") for k, r in enumerate(roles)]
    if text is not None and turns and turns[-1].role == "listener":
        turns[-1] = Turn("listener", text)
    return Dialogue(id=f"d{i}", situation_id=situation or f"s{i % 5}", emotion=emotion, lang="en",
                    situation="…", turns=turns)


dialogue_sets = st.lists(
    st.tuples(st.sampled_from([*LABELS, None]), st.sampled_from(["slsl", "sl", "sls", "ssl", "l", "lsl", "sll", "s"]),
              st.integers(0, 3), st.sampled_from([None, "I see.", "Tell me more."])),
    min_size=0, max_size=60,
).map(lambda xs: [dlg(i, e, r, f"sit{s}", t) for i, (e, r, s, t) in enumerate(xs)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dialogues=dialogue_sets, seed=st.integers(0, 2**31 - 1), epochs=st.integers(1, 3),
       strategy=st.sampled_from(["opposite", "same-situation"]))
def test_every_pair_valid_and_every_pairable_dialogue_paired(dialogues: list[Dialogue], seed: int, epochs: int,
                                                               strategy: str) -> None:
    ps = build_pairs(dialogues, GO, epochs=epochs, seed=seed, strategy=strategy)
    rows = {d.epoch: ps.rows(k) for k, d in enumerate(ps.draws)}
    assert len(rows) == epochs
    assert check_rows(dialogues, GO, rows, strategy=strategy, seed=seed) == []
    for epoch_rows in rows.values():
        for r in epoch_rows:
            d = next(x for x in dialogues if x.id == r["meta"]["dialogue_id"])
            # chosen is always the dialogue's own last listener reply
            assert r["chosen"][0]["content"] == [t for t in d.turns if t.role == "listener"][-1].text
            if strategy == "opposite":
                assert r["meta"]["rejected_emotion"] == GO.opposite(d.emotion)
            else:
                assert r["meta"]["rejected_emotion"] != d.emotion
            assert r["prompt"][-1]["role"] == "user"
    # paired + unpaired = all, and the reasons name what is missing
    paired = {r["meta"]["dialogue_id"] for r in rows[0]}
    unpaired = {u.dialogue_id for u in ps.ctx.unpaired}
    assert paired | unpaired == {d.id for d in dialogues} and not paired & unpaired
    assert paired == pairable(dialogues, GO, strategy)
    # the same seed gives the same bytes; any epoch can be built alone
    again = build_pairs(list(dialogues), GO, epochs=epochs, seed=seed, strategy=strategy)
    assert again.texts == ps.texts
    last = epochs - 1
    alone = build_pairs(dialogues, GO, epochs=epochs, seed=seed, strategy=strategy, only_epochs=[last])
    assert alone.texts == [ps.texts[last]]


def test_unpaired_reasons() -> None:
    ds = [dlg(0, "joy"), dlg(1, None), dlg(2, "sadness", "ss"), dlg(3, "sadness", "l"), dlg(4, "sadness", "sll"),
          dlg(5, "anger"), dlg(6, "sadness")]
    ps = build_pairs(ds, GO, epochs=2, seed=0)
    reasons = {u.dialogue_id: u.reason for u in ps.ctx.unpaired}
    assert reasons == {"d1": NO_LABEL, "d2": NO_LISTENER, "d3": NO_PROMPT, "d4": LAST_NOT_AFTER_SPEAKER,
                       "d5": NO_OPPOSITE_DIALOGUE}
    # d0 (joy) pairs with a sadness reply — d3/d4 have replies too, so they are donors though unpaired
    assert {r["meta"]["dialogue_id"] for r in ps.rows(0)} == {"d0", "d6"}
    tax = Taxonomy.from_dict({"name": "two", "labels": [{"id": "a"}, {"id": "b"}], "opposites": {"a": "b"}})
    ps2 = build_pairs([dlg(0, "b"), dlg(1, "a")], tax, epochs=1, seed=0)
    assert [(u.dialogue_id, u.reason) for u in ps2.ctx.unpaired] == [("d0", NO_OPPOSITE)]


def test_asymmetric_opposites_pair_everyone() -> None:
    """goemotions28 maps amusement→embarrassment but embarrassment→pride: the EmPO code dropped such
    dialogues silently; here both sides are paired, each with its own opposite."""
    ds = [dlg(0, "amusement"), dlg(1, "embarrassment"), dlg(2, "pride")]
    ps = build_pairs(ds, GO, epochs=1, seed=3)
    got = {r["meta"]["dialogue_id"]: r["meta"]["rejected_dialogue_id"] for r in ps.rows(0)}
    assert got == {"d0": "d1", "d1": "d2", "d2": "d1"}


def test_rejected_redrawn_each_epoch_on_the_sample() -> None:
    ds = load_dialogues(sample_path("ja"))
    ps = build_pairs(ds, GO, epochs=3, seed=11)
    r0, r1, r2 = (ps.rows(k) for k in range(3))
    assert len(r0) == len(r1) == len(r2) == 168
    changed = sum(a["meta"]["rejected_dialogue_id"] != b["meta"]["rejected_dialogue_id"] for a, b in zip(r0, r1, strict=True))
    # 6 candidates per opposite label: a fresh draw keeps the same one with p = 1/6
    assert changed > 168 * 0.6
    assert [a["chosen"] for a in r0] == [b["chosen"] for b in r2]
    other_seed = build_pairs(ds, GO, epochs=1, seed=12)
    assert other_seed.texts[0] != ps.texts[0]


def test_identical_replies_redrawn() -> None:
    ds = [dlg(0, "joy", text="I see."), dlg(1, "sadness", text="I see."), dlg(2, "sadness", text="Oh no.")]
    for seed in range(20):
        ps = build_pairs(ds, GO, epochs=1, seed=seed)
        row = next(r for r in ps.rows(0) if r["meta"]["dialogue_id"] == "d0")
        assert row["meta"]["rejected_dialogue_id"] == "d2"


def test_same_situation_prefers_the_situation() -> None:
    ds = [dlg(0, "joy", situation="A"), dlg(1, "anger", situation="A"), dlg(2, "sadness", situation="B"),
          dlg(3, "sadness", situation="A"), dlg(4, "fear", situation="C")]
    ps = build_pairs(ds, GO, epochs=2, seed=0, strategy="same-situation")
    rows = {r["meta"]["dialogue_id"]: r["meta"] for r in ps.rows(0)}
    assert rows["d0"]["rejected_dialogue_id"] == "d3" and rows["d0"]["negative"] == "same-situation-opposite"
    assert rows["d1"]["rejected_dialogue_id"] in {"d0", "d3"} and rows["d1"]["negative"] == "same-situation"
    assert rows["d4"]["rejected_dialogue_id"] == "d1" and rows["d4"]["negative"] == "opposite-fallback"
    strict = build_pairs(ds, GO, epochs=1, seed=0, strategy="same-situation", fallback=False)
    assert "d4" in {u.dialogue_id for u in strict.ctx.unpaired}


def test_write_report_and_checksums(tmp_path: Path) -> None:
    ds = [*load_dialogues(sample_path("ja"))[:40], dlg(99, None)]
    ps = build_pairs(ds, GO, epochs=2, seed=5)
    rep = write_pairs(tmp_path, ps, epochs=2, data={"path": "x"})
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["unpaired"] == rep["unpaired"]
    assert {u["dialogue_id"] for u in saved["unpaired"]} >= {"d99"}
    assert saved["paired"] + saved["unpaired_count"] == len(ds)
    import hashlib

    for name, sha in saved["files"].items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == sha


def test_check_catches_a_bad_pair() -> None:
    ds = load_dialogues(sample_path("ja"))
    ps = build_pairs(ds, GO, epochs=1, seed=0)
    rows = ps.rows(0)
    rows[3]["rejected"][0]["content"] = rows[3]["chosen"][0]["content"]
    rows[5]["meta"]["rejected_emotion"] = rows[5]["meta"]["emotion"]
    del rows[7]
    probs = check_rows(ds, GO, {0: rows}, seed=0)
    fields = sorted({p.field for p in probs if p.field})
    assert "rejected" in fields and "meta.rejected_emotion" in fields
    assert any("missing" in p.message for p in probs)


@pytest.mark.parametrize("tax", ["ed32"])
def test_ed32_table6_pairs(tax: str) -> None:
    ed = get_taxonomy(tax)
    ds = load_dialogues(sample_path("ed-en"))
    ps = build_pairs(ds, ed, epochs=2, seed=1)
    assert check_rows(ds, ed, {k: ps.rows(k) for k in range(2)}, seed=1) == []
    for r in ps.rows(0):
        assert r["meta"]["rejected_emotion"] == ed.opposite(r["meta"]["emotion"])
