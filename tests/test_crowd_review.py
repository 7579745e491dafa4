# ruff: noqa: F811  (pytest fixtures imported from crowd_util)
"""Review workflow, pre-screen, rejection cap, export validity, situation files, rating packets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

import kyokan.crowd as C
from crowd_util import DIALOGUE, PASSWORD, backend, crowd  # noqa: F401
from kyokan.crowd.models import AuditEntry, Edit, Item, LedgerEntry, Submission
from kyokan.data import validate_path
from kyokan.errors import InputError, KyokanError
from kyokan.models.base import ChatModel, Completion, GenerationParams, Message

LEAD = C.Actor("lead", "lead")
REV = C.Actor("rev", "reviewer")


def _situations(db: C.CrowdDB, n: int, worker: str = "w1", emotion: str = "fear") -> list[str]:
    C.create_situation_tasks(db, target=n, emotions=[emotion])
    C.register_worker(db, worker)
    uids = []
    for i in range(n):
        C.register_worker(db, f"{worker}-{i}")
    for i in range(n):
        w = worker if i == 0 else f"{worker}-{i}"
        a = C.assign(db, w, "situation")
        assert isinstance(a, C.Assignment)
        uids.append(C.submit(db, w, a.token, {"text": f"病院で待たされて不安だった {i}"}).uid)
    return uids


def _one_worker_subs(db: C.CrowdDB, n: int, wid: str = "w9") -> list[str]:
    C.create_situation_tasks(db, target=1)
    C.register_worker(db, wid)
    out = []
    for i in range(n):
        a = C.assign(db, wid, "situation")
        assert isinstance(a, C.Assignment)
        out.append(C.submit(db, wid, a.token, {"text": f"状況その{i}"}).uid)
    return out


def test_full_two_rounds_review_and_export(crowd: C.CrowdDB, tmp_path: Path) -> None:
    sits = _situations(crowd, 2)
    C.review(crowd, REV, sits[0], "approve")
    # an edit keeps its history and the export uses the edited text
    C.review(crowd, REV, sits[1], "approve", content={"text": "救急外来で長く待たされて不安だった。"}, note="typo")
    assert len(C.create_dialogue_tasks(crowd, target=1)) == 2
    C.register_worker(crowd, "dlg-worker")
    uids = []
    for _ in range(2):
        a = C.assign(crowd, "dlg-worker", "dialogue")
        assert isinstance(a, C.Assignment) and a.situation_text
        uids.append(C.submit(crowd, "dlg-worker", a.token, {"turns": [{"text": t} for t in DIALOGUE]}).uid)
    C.review(crowd, REV, uids[0], "approve")
    C.review(crowd, REV, uids[1], "flag", note="言い回しを確認")
    out = tmp_path / "export.jsonl"
    summary = C.export(crowd, out, situations_out=tmp_path / "sits.jsonl")
    assert summary["dialogues"] == 1 and summary["situations"] == 2
    assert validate_path(str(out)).ok
    rec = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert rec["emotion"] == "fear" and rec["lang"] == "ja" and len(rec["turns"]) == 4
    assert rec["meta"]["worker"].startswith("w-") and "dlg-worker" not in json.dumps(rec)  # pseudonymised
    prov = json.loads((tmp_path / "export.provenance.json").read_text())
    assert prov["provenance"]["db_revision"] == C.head_revision()
    # the lead keeps the flagged one: now both are exported
    C.review(crowd, LEAD, uids[1], "keep")
    C.export(crowd, out)
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == 2 and recs[1]["meta"]["flagged_then_kept"] is True
    edited = [r for r in recs if r["situation"].startswith("救急外来")]
    assert edited and edited[0]["meta"]["situation_edited"] is True
    with crowd.read() as s:
        e = s.scalars(select(Edit)).one()
        assert e.before["text"].startswith("病院で") and e.after["text"].startswith("救急外来") and e.editor == "rev"
        actions = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert {"approve", "edit", "flag", "keep"} <= set(actions)


def test_roles_and_states(crowd: C.CrowdDB) -> None:
    uid = _situations(crowd, 1)[0]
    C.review(crowd, REV, uid, "flag")
    with pytest.raises(C.Forbidden):
        C.review(crowd, REV, uid, "remove")  # only the lead decides flagged entries
    with pytest.raises(C.Conflict):
        C.review(crowd, REV, uid, "approve")  # flagged → keep/remove, not approve
    C.review(crowd, LEAD, uid, "remove", note="個人情報")
    with pytest.raises(C.Conflict):
        C.review(crowd, LEAD, uid, None, content={"text": "書き換え"})
    with pytest.raises(C.Conflict):
        C.review(crowd, REV, uid, "approve", expected_version=99)
    with pytest.raises(C.NotFound):
        C.review(crowd, REV, "s-999999", "approve")


def test_rejection_cap_is_enforced(crowd: C.CrowdDB) -> None:
    uids = _one_worker_subs(crowd, 10)
    C.review(crowd, REV, uids[0], "reject")
    C.review(crowd, REV, uids[1], "reject")
    C.review(crowd, REV, uids[2], "reject")
    with pytest.raises(C.Conflict, match="rejection cap"):  # 4 of 10 > 30%
        C.review(crowd, REV, uids[3], "reject")
    with crowd.read() as s:
        st = C.rejection_stats(s, "w9", 0.3)
        voids = s.scalars(select(LedgerEntry.status).where(LedgerEntry.worker_id == "w9")).all()
    assert (st.total, st.rejected, st.allowed, st.left) == (10, 3, 3, 0)
    assert sorted(voids).count("void") == 3  # rejected work is not paid
    C.review(crowd, REV, uids[0], "approve")  # taking one back frees one rejection and pays again
    C.review(crowd, REV, uids[3], "reject")


def test_refill_on_remove(crowd: C.CrowdDB) -> None:
    cfg = crowd.config(fresh=True)
    cfg.refill_on_remove = True
    crowd.save_config(cfg)
    uid = _situations(crowd, 1)[0]
    with crowd.read() as s:
        assert s.scalars(select(Item.closed)).one() is True
    C.review(crowd, LEAD, uid, "remove")
    with crowd.read() as s:
        it = s.scalars(select(Item)).one()
        assert (it.n_submitted, it.closed) == (0, False)
    C.register_worker(crowd, "w2")
    assert isinstance(C.assign(crowd, "w2", "situation"), C.Assignment)


def test_keyword_and_personal_data_prescreen(crowd: C.CrowdDB) -> None:
    C.create_situation_tasks(crowd, target=5, emotions=["anger"])
    for w in ("a", "b", "c"):
        C.register_worker(crowd, w)
    got = {}
    for w, text in (("a", "看護師に「死ね」と言われた気がした"), ("b", "連絡は test@example.com まで"),
                    ("c", "診察がdiet相談で終わった")):
        a = C.assign(crowd, w, "situation")
        assert isinstance(a, C.Assignment)
        got[w] = C.submit(crowd, w, a.token, {"text": text})
    assert got["a"].status == "flagged" and got["a"].flags[0]["match"] == "死ね"
    assert got["b"].status == "flagged" and got["b"].flags[0]["detail"] == "email"
    assert got["c"].status == "pending"  # 'die' must not match inside 'diet'
    hits = C.KeywordScreener(["kill yourself", "バカ"]).check(["You should KILL YOURSELF", "ﾊﾞｶ"])
    assert sorted(h.match for h in hits) == ["kill yourself", "バカ"]


class _ScriptedJudge(ChatModel):
    """A real ChatModel implementation answering from a script (no network)."""

    spec = "scripted"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.calls = 0

    async def agenerate(self, messages: Sequence[Message], params: GenerationParams) -> Completion:
        self.calls += 1
        text = messages[-1]["content"]
        for key, ans in self.answers.items():
            if key in text:
                return Completion(ans, "scripted")
        return Completion("評価: [[5]]", "scripted")


def test_judge_harmlessness_screen(crowd: C.CrowdDB) -> None:
    from kyokan.crowd.judge_screen import screen_pending

    C.create_situation_tasks(crowd, target=5, emotions=["fear"])
    for w in ("a", "b", "c"):
        C.register_worker(crowd, w)
    uids = {}
    for w, text in (("a", "有害テキストZQ"), ("b", "穏やかな文"), ("c", "判定不能な文")):
        a = C.assign(crowd, w, "situation")
        assert isinstance(a, C.Assignment)
        uids[w] = C.submit(crowd, w, a.token, {"text": text}).uid
    judge = _ScriptedJudge({"有害テキストZQ": "有害です [[1]]", "判定不能": "わかりません"})
    res = screen_pending(crowd, judge, threshold=2)
    assert (res["scored"], res["flagged"], res["unscored"]) == (2, 1, 1)
    assert judge.calls == 4  # the unparsable answer was retried once
    with crowd.read() as s:
        st = {u: (x, sc) for u, x, sc in s.execute(select(Submission.uid, Submission.status, Submission.screen))}
    assert st[uids["a"]][0] == "flagged" and st[uids["a"]][1]["judge"]["score"] == 1
    assert st[uids["c"]][0] == "pending" and st[uids["c"]][1]["judge"]["score"] is None  # never a default score


def test_situation_file_import(crowd: C.CrowdDB, tmp_path: Path) -> None:
    good = tmp_path / "s.csv"
    good.write_text("id,emotion,situation\nx1,恐怖,夜に胸が痛くなった\nx2,Joy,退院が決まった\n", encoding="utf-8")
    rows = C.read_situation_file(good)
    assert [r["emotion"] for r in rows] == ["fear", "joy"]
    C.import_situations(crowd, rows)
    assert len(C.create_dialogue_tasks(crowd, target=3)) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x1", "emotion": "feer", "situation": "a"}\n{"id": "s-000001", "emotion": "joy", "situation": ""}\nnot json\n',
                   encoding="utf-8")
    with pytest.raises(InputError) as e:
        C.read_situation_file(bad)
    msgs = [str(p) for p in e.value.problems]
    assert any(":1: emotion: unknown label 'feer'" in m and "fear" in m for m in msgs)
    assert any(":2: id:" in m for m in msgs) and any(":2: situation:" in m for m in msgs)
    assert any(":3: not JSON" in m for m in msgs)


def test_rating_packets_both_layouts(crowd: C.CrowdDB, tmp_path: Path) -> None:
    single = tmp_path / "single.jsonl"
    single.write_text(json.dumps({"id": "p1", "item": {"emotion": "fear", "turns": [{"role": "speaker", "text": "怖い"}],
                                                       "response": "大丈夫ですよ"},
                                  "metrics": ["empathy", {"id": "fluency", "ja": "流暢さ", "en": "Fluency"}],
                                  "scale": {"min": 1, "max": 5}, "target": 2}, ensure_ascii=False) + "\n", encoding="utf-8")
    grouped = tmp_path / "tasks.jsonl"
    grouped.write_text(json.dumps({"assignment": "A01", "style": "empo", "scales": [
        {"name": "empathy", "en": "Empathy", "ja": "共感", "kind": "slider", "low": 0, "high": 100},
        {"name": "consistent", "en": "Consistent", "ja": "一貫", "kind": "binary", "low": 0, "high": 1}],
        "items": [{"item": "I1", "lang": "ja", "situation": "s", "turns": [{"role": "speaker", "text": "t"}]},
                  {"item": "I2", "lang": "ja", "situation": "s", "turns": [{"role": "speaker", "text": "u"}]}]}) + "\n",
        encoding="utf-8")
    C.create_rating_tasks(crowd, C.read_rating_packets(single))
    C.create_rating_tasks(crowd, C.read_rating_packets(grouped))
    with crowd.read() as s:
        assert dict(s.execute(select(Item.key, Item.target)).tuples().all()) == {"rating:p1": 2, "rating:A01": 1}
    C.register_worker(crowd, "r1")
    done = []
    for _ in range(2):
        a = C.assign(crowd, "r1", "rating")
        assert isinstance(a, C.Assignment)
        if a.item_key == "rating:p1":
            with pytest.raises(C.CrowdError):
                C.submit(crowd, "r1", a.token, {"ratings": {"0.empathy": "6", "0.fluency": "3"}})
            done.append(C.submit(crowd, "r1", a.token, {"ratings": {"0.empathy": "4", "0.fluency": "5"}}))
        else:  # the unticked checkbox of I2 arrives as nothing and counts as 0
            done.append(C.submit(crowd, "r1", a.token, {"ratings": {"0.empathy": "70", "0.consistent": "1",
                                                                    "1.empathy": "35"}, "comment": "ok"}))
    # unreviewed ratings are not exported unless asked for (then marked as pending)
    summary = C.export(crowd, tmp_path / "d.jsonl", ratings_out=tmp_path / "r.jsonl")
    assert summary["ratings"] == 0 and summary["skipped"]["ratings_not_approved"] == 2
    C.export(crowd, tmp_path / "d.jsonl", ratings_out=tmp_path / "r.jsonl", include_pending_ratings=True)
    assert {json.loads(x)["review"] for x in (tmp_path / "r.jsonl").read_text().splitlines()} == {"pending"}
    for r in done:
        C.review(crowd, REV, r.uid, "approve")
    C.export(crowd, tmp_path / "d.jsonl", ratings_out=tmp_path / "r.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert {r["review"] for r in rows} == {"approved"}
    by_item = {r["item"]: r for r in rows}
    assert by_item["p1"]["ratings"] == {"empathy": 4, "fluency": 5}
    assert by_item["I2"]["ratings"] == {"empathy": 35, "consistent": 0} and by_item["I2"]["assignment"] == "A01"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "p1", "item": {}, "metrics": []}\n', encoding="utf-8")
    with pytest.raises(InputError):
        C.read_rating_packets(bad)


def test_users_and_passwords(crowd: C.CrowdDB) -> None:
    C.add_user(crowd, "alice", PASSWORD, "reviewer")
    assert C.authenticate(crowd, "alice", PASSWORD) == C.Actor("alice", "reviewer")
    assert C.authenticate(crowd, "alice", PASSWORD + "x") is None
    assert C.authenticate(crowd, "nobody", PASSWORD) is None
    with crowd.read() as s:
        from kyokan.crowd.models import User

        h = s.scalars(select(User.password_hash)).one()
    assert h.startswith("scrypt$") and PASSWORD not in h
    with pytest.raises(KyokanError):
        C.add_user(crowd, "bob", "short", "reviewer")
    with pytest.raises(KyokanError):
        C.add_user(crowd, "bob", PASSWORD, "superuser")
