# ruff: noqa: F811  (pytest fixtures imported from crowd_util)
"""Assignment and submission on real SQLite and PostgreSQL databases: targets never overshoot
under concurrency, leases expire, a worker never sees an item twice, caps, ledger, migrations."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

import kyokan.crowd as C
from crowd_util import DIALOGUE, backend, crowd, new_db  # noqa: F401
from kyokan.crowd.models import Item, LedgerEntry, Reservation, Submission


def _invariants(db: C.CrowdDB) -> None:
    """n_submitted matches the submissions, reserved matches live leases, nothing overshoots."""
    with db.read() as s:
        for it in s.scalars(select(Item)):
            subs = s.scalar(select(func.count()).select_from(Submission).where(Submission.item_id == it.id))
            live = s.scalar(select(func.count()).select_from(Reservation).where(
                Reservation.item_id == it.id, Reservation.status == "active"))
            assert it.n_submitted == subs, it.key
            assert it.n_reserved == live, it.key
            assert it.n_submitted + it.n_reserved <= it.target, it.key
            assert it.closed == (it.n_submitted >= it.target), it.key


def test_taxonomy_tasks_and_defaults(crowd: C.CrowdDB) -> None:
    created = C.create_situation_tasks(crowd)
    assert len(created) == 28 and "situation:ja:fear" in created
    assert C.create_situation_tasks(crowd) == []  # idempotent
    with crowd.read() as s:
        assert set(s.scalars(select(Item.target))) == {10}
    with pytest.raises(C.CrowdError.__mro__[1]):  # KyokanError: unknown label with a suggestion
        C.create_situation_tasks(crowd, emotions=["feer"])


def test_one_round_trip_and_ledger(crowd: C.CrowdDB) -> None:
    C.create_situation_tasks(crowd, target=1, emotions=["fear"])
    assert C.register_worker(crowd, "w1") is not None
    assert C.register_worker(crowd, "w1") is None  # second registration: no new key
    a = C.assign(crowd, "w1", "situation")
    assert isinstance(a, C.Assignment) and a.emotion == "fear"
    again = C.assign(crowd, "w1", "situation")  # live lease is resumed, not duplicated
    assert isinstance(again, C.Assignment) and again.token == a.token and again.resumed
    r = C.submit(crowd, "w1", a.token, {"text": "手術の前日、眠れませんでした。"})
    dup = C.submit(crowd, "w1", a.token, {"text": "something else"})
    assert dup.duplicate and dup.uid == r.uid  # a double submit stores nothing new
    assert isinstance(C.assign(crowd, "w1", "situation"), C.NoTask)
    with crowd.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 1
        led = s.scalars(select(LedgerEntry)).all()
        assert [(e.amount, e.currency, e.status) for e in led] == [(10, "JPY", "payable")]
    _invariants(crowd)


def test_bad_content_is_refused_and_lease_kept(crowd: C.CrowdDB) -> None:
    C.create_situation_tasks(crowd, target=2, emotions=["joy"])
    C.register_worker(crowd, "w1")
    a = C.assign(crowd, "w1", "situation")
    assert isinstance(a, C.Assignment)
    for bad in ({"text": ""}, {"text": "x" * 1001}, {}, {"text": "ok\x00bad"}):
        with pytest.raises(C.CrowdError):
            C.submit(crowd, "w1", a.token, bad)
    with pytest.raises(C.NotFound):  # another worker's lease is not theirs to fill
        C.register_worker(crowd, "w2")
        C.submit(crowd, "w2", a.token, {"text": "乗っ取り"})
    assert C.submit(crowd, "w1", a.token, {"text": "入院中の夜が怖かった。"}).status == "pending"
    _invariants(crowd)


def test_never_the_same_item_twice(crowd: C.CrowdDB) -> None:
    C.create_situation_tasks(crowd, target=5, emotions=["joy", "fear", "anger"])
    C.register_worker(crowd, "w1")
    seen = []
    while True:
        a = C.assign(crowd, "w1", "situation")
        if isinstance(a, C.NoTask):
            break
        seen.append(a.emotion)
        C.submit(crowd, "w1", a.token, {"text": f"状況 {len(seen)}"})
    assert sorted(seen) == ["anger", "fear", "joy"]


def test_lease_expiry_returns_the_slot(crowd: C.CrowdDB) -> None:
    C.create_situation_tasks(crowd, target=1, emotions=["fear"])
    for w in ("w1", "w2", "w3"):
        C.register_worker(crowd, w)
    t0 = 1_000_000.0
    a1 = C.assign(crowd, "w1", "situation", now=t0)
    assert isinstance(a1, C.Assignment)
    assert isinstance(C.assign(crowd, "w2", "situation", now=t0 + 10), C.NoTask)  # full while leased
    late = t0 + crowd.config().lease_seconds + 1
    a2 = C.assign(crowd, "w2", "situation", now=late)  # w1's lease expired: slot reopened
    assert isinstance(a2, C.Assignment) and a2.item_id == a1.item_id
    with pytest.raises(C.Conflict):  # w1 comes back after expiry, but the item is taken
        C.submit(crowd, "w1", a1.token, {"text": "遅れて提出"}, now=late + 1)
    C.submit(crowd, "w2", a2.token, {"text": "間に合った"}, now=late + 2)
    _invariants(crowd)
    # an expired lease whose item still has room is accepted
    C.create_situation_tasks(crowd, target=2, emotions=["joy"])
    b = C.assign(crowd, "w3", "situation", now=t0)
    assert isinstance(b, C.Assignment) and b.emotion == "joy"
    C.assign(crowd, "w1", "situation", now=late + 5)  # sweeps w3's lease
    assert C.submit(crowd, "w3", b.token, {"text": "期限切れでも空きあり"}, now=late + 6).status == "pending"
    _invariants(crowd)


def test_release_reopens(crowd: C.CrowdDB) -> None:
    C.create_situation_tasks(crowd, target=1, emotions=["fear"])
    C.register_worker(crowd, "w1")
    C.register_worker(crowd, "w2")
    a = C.assign(crowd, "w1", "situation")
    assert isinstance(a, C.Assignment)
    assert C.release(crowd, "w1", a.token)
    assert not C.release(crowd, "w2", a.token)
    assert isinstance(C.assign(crowd, "w2", "situation"), C.Assignment)
    assert isinstance(C.assign(crowd, "w1", "situation"), C.NoTask)  # skipped items are not shown again
    _invariants(crowd)


def test_per_worker_cap_and_block(crowd: C.CrowdDB) -> None:
    cfg = crowd.config(fresh=True)
    cfg.caps["situation"] = 2
    crowd.save_config(cfg)
    C.create_situation_tasks(crowd, target=5)
    C.register_worker(crowd, "w1")
    for i in range(2):
        a = C.assign(crowd, "w1", "situation")
        assert isinstance(a, C.Assignment)
        C.submit(crowd, "w1", a.token, {"text": f"状況{i}です"})
    got = C.assign(crowd, "w1", "situation")
    assert isinstance(got, C.NoTask) and got.reason == "cap" and got.detail == {"cap": 2, "used": 2}


def test_balanced_assignment_spreads_labels(crowd: C.CrowdDB) -> None:
    C.create_situation_tasks(crowd, target=10)
    for i in range(56):
        w = f"w{i}"
        C.register_worker(crowd, w)
        a = C.assign(crowd, w, "situation")
        assert isinstance(a, C.Assignment)
        C.submit(crowd, w, a.token, {"text": f"状況 {i}"})
    with crowd.read() as s:
        fills = list(s.scalars(select(Item.n_submitted)))
    assert sorted(set(fills)) == [2]  # 56 over 28 emotions: exactly two each


def test_random_assignment_is_random(crowd: C.CrowdDB) -> None:
    cfg = crowd.config(fresh=True)
    cfg.assignment = "random"
    crowd.save_config(cfg)
    C.create_situation_tasks(crowd, target=10)
    first = Counter()
    for i in range(40):
        C.register_worker(crowd, f"r{i}")
        a = C.assign(crowd, f"r{i}", "situation")
        assert isinstance(a, C.Assignment)
        first[a.emotion] += 1
    assert len(first) > 10  # not always the same item


def test_concurrent_workers_never_overshoot(backend: str, tmp_path) -> None:
    """24 threads race for 6 items of target 3 (18 slots): exactly 18 submissions land."""
    db = new_db(backend, tmp_path)
    C.create_situation_tasks(db, target=3, emotions=["joy", "fear", "anger", "sadness", "pride", "relief"])
    workers = [f"w{i:02d}" for i in range(24)]
    for w in workers:
        C.register_worker(db, w)
    accepted: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(workers))

    def work(w: str) -> None:
        start.wait()
        while True:
            a = C.assign(db, w, "situation")
            if isinstance(a, C.NoTask):
                return
            r = C.submit(db, w, a.token, {"text": f"{w} の状況"})
            with lock:
                accepted.append(r.uid)

    with ThreadPoolExecutor(len(workers)) as ex:
        list(ex.map(work, workers))
    assert len(accepted) == len(set(accepted)) == 18
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 18
        pairs = s.execute(select(Submission.item_id, Submission.worker_id)).all()
    assert len(pairs) == len(set(pairs))  # never the same item twice
    _invariants(db)
    db.dispose()


def test_migrations_up_and_down(crowd: C.CrowdDB) -> None:
    assert crowd.revision() == C.head_revision()
    crowd.require_schema()
    C.downgrade(crowd)
    assert crowd.revision() is None
    with pytest.raises(C.CrowdError.__mro__[1]):
        crowd.require_schema()
    C.upgrade(crowd)
    assert crowd.revision() == C.head_revision()


def test_dialogue_round_shows_situation(crowd: C.CrowdDB) -> None:
    rows = [{"id": "sit-1", "emotion": "恐怖", "lang": "ja", "situation": "夜中に急に胸が痛くなった。"}]
    C.import_situations(crowd, rows)
    C.create_dialogue_tasks(crowd, target=2)
    C.register_worker(crowd, "w1")
    a = C.assign(crowd, "w1", "dialogue")
    assert isinstance(a, C.Assignment)
    assert a.situation_uid == "sit-1" and a.situation_text == "夜中に急に胸が痛くなった。"
    with pytest.raises(C.CrowdError):  # two exchanges are four turns
        C.submit(crowd, "w1", a.token, {"turns": [{"text": "a"}] * 2})
    r = C.submit(crowd, "w1", a.token, {"turns": [{"text": t} for t in DIALOGUE]})
    assert r.uid.startswith("d-")
    with crowd.read() as s:
        sub = s.scalars(select(Submission).where(Submission.uid == r.uid)).one()
        assert [t["role"] for t in sub.content["turns"]] == ["speaker", "listener", "speaker", "listener"]
        assert s.scalar(select(LedgerEntry.amount).where(LedgerEntry.submission_id == sub.id)) == 50
