
"""The crowd app under attack, on SQLite and PostgreSQL, over real HTTP (uvicorn on loopback;
other loopback addresses, 127.0.0.N, stand for other clients). Each test starts from the attack
that worked before the fix: the sybil loop, id squatting, forged X-Forwarded-For, cookie replay,
piped passwords, login lock-out, a login flood against scrypt, screen bypasses, a blocked worker's
old lease, concurrent rejections, SKIP LOCKED's false "no tasks", malformed requests, path
traversal, audit flooding and withdrawn situations."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import kyokan.crowd as C
from crowd_util import (
    DIALOGUE,
    PASSWORD,
    SECRET,
    LiveServer,
    csrf,
    login,
    new_db,
    start,
    submit_form,
    task_token,
)
from crowd_util import backend as backend  # the SQLite/PostgreSQL fixture
from kyokan.crowd.models import LedgerEntry, Reservation, Submission, User, Worker

LEAD = C.Actor("lead", "lead")
REV = C.Actor("rev", "reviewer")
KYOKAN = str(Path(sys.executable).with_name("kyokan"))


def client_from(base: str, address: str = "127.0.0.1", **kw: Any) -> httpx.Client:
    """A client whose TCP connections come from ``address`` (any 127.0.0.0/8 address works on
    loopback): another machine, as far as the server can tell."""
    return httpx.Client(base_url=base, follow_redirects=False, timeout=60,
                        transport=httpx.HTTPTransport(local_address=address), **kw)


Site = tuple[str, C.CrowdDB]


@pytest.fixture
def make_site(backend: str, tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """``make_site(proxy_headers=False, **config)`` → (base URL, db) with users rev, lead, admin."""
    stack = contextlib.ExitStack()
    made = [0]

    def make(*, proxy_headers: bool = False, **cfg: Any) -> Site:
        made[0] += 1
        db = new_db(backend, tmp_path / f"site{made[0]}", **cfg)
        for name, role in (("rev", "reviewer"), ("lead", "lead"), ("admin", "admin")):
            C.add_user(db, name, PASSWORD, role)
        srv = stack.enter_context(LiveServer(C.create_app(db, secret=SECRET.encode()), proxy_headers=proxy_headers))
        stack.callback(db.dispose)
        return srv.url, db

    yield make
    stack.close()


def live_leases(db: C.CrowdDB, client: str | None = None) -> int:
    with db.read() as s:
        q = select(func.count()).select_from(Reservation).where(Reservation.status == "active",
                                                                 Reservation.expires_at >= time.time())
        if client is not None:
            q = q.where(Reservation.client == client)
        return int(s.scalar(q) or 0)


def n_workers(db: C.CrowdDB) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Worker)) or 0)


def rating_packets(tmp_path: Path, n: int) -> list[dict[str, Any]]:
    p = tmp_path / "packets.jsonl"
    p.write_text("".join(json.dumps({"id": f"p{i:03d}", "item": {"situation": "s", "response": f"r{i}"},
                                     "metrics": ["empathy"], "target": 1}) + "\n" for i in range(n)), encoding="utf-8")
    return C.read_rating_packets(p)


# --- 1. the sybil loop --------------------------------------------------------------------------
def test_sybil_loop_holds_at_most_five_leases_and_honest_workers_still_get_tasks(make_site, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site(leases_per_client=5, registrations_per_minute=100)
    C.create_rating_tasks(db, rating_packets(tmp_path, 29))
    # GET-only loop (link previews, crawlers, the old attack): takes nothing, registers nothing
    c = client_from(base)
    for i in range(30):
        assert c.get(f"/w/sybil{i}/task/rating").status_code == 200
        assert c.get(f"/w/sybil{i}").status_code == 200
    assert live_leases(db) == 0 and n_workers(db) == 0
    # the loop that starts tasks: 60 fresh ids from one IP, 65 requests
    got = {"task": 0, "refused": 0}
    for i in range(60):
        sc = client_from(base)
        r = start(sc, f"sybil{i}", "rating")
        if r.status_code == 200 and 'name="token"' in r.text:
            got["task"] += 1
        else:
            assert r.status_code == 429, r.text
            got["refused"] += 1
        if i < 5:
            assert start(sc, f"sybil{i}", "rating").status_code == 200  # again: the same lease resumed
    assert got == {"task": 5, "refused": 55}
    assert live_leases(db, "127.0.0.1/32") == 5 == live_leases(db)
    # honest workers elsewhere are not affected
    for n in range(2, 6):
        h = client_from(base, f"127.0.0.{n}")
        page = start(h, f"honest{n}", "rating")
        assert page.status_code == 200 and 'name="token"' in page.text, page.text
    assert live_leases(db) == 9
    with db.read() as s:  # the 55 refused starts left no lease behind
        assert s.scalar(select(func.count()).select_from(Reservation).where(
            Reservation.client == "127.0.0.1/32")) == 5


def test_forged_forwarded_for_from_loopback_is_not_believed(make_site) -> None:  # type: ignore[no-untyped-def]
    # uvicorn's own default (proxy_headers on) believes X-Forwarded-For from a loopback peer: the
    # app must still count every such request as one client
    base, db = make_site(proxy_headers=True, leases_per_client=5, registrations_per_minute=8)
    C.create_situation_tasks(db, target=5)
    codes = []
    for i in range(20):
        c = client_from(base, headers={"X-Forwarded-For": f"198.51.100.{i + 1}"})
        codes.append(start(c, f"spoof{i}").status_code)
    assert codes.count(200) == 5 and live_leases(db) == 5
    assert codes.count(429) == 15
    assert n_workers(db) <= 8  # the registration limit held too


def test_forwarded_for_is_believed_from_a_configured_proxy(make_site) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site(leases_per_client=1, trusted_proxies=["127.0.0.1"])
    C.create_situation_tasks(db, target=5)
    for i in range(8):  # eight people behind the proxy: one lease each
        c = client_from(base, headers={"X-Forwarded-For": f"203.0.113.9, 198.51.100.{i + 1}"})
        assert start(c, f"behind{i}").status_code == 200
    assert live_leases(db) == 8
    with db.read() as s:
        clients = set(s.scalars(select(Reservation.client)))
    assert clients == {f"198.51.100.{i + 1}/32" for i in range(8)}  # the right-most untrusted hop
    # the same client through the proxy twice: bounded (the left part of the header is ignored)
    again = client_from(base, headers={"X-Forwarded-For": "1.1.1.1, 198.51.100.1"})
    assert start(again, "behind-other").status_code == 429


def test_short_first_lease_returns_abandoned_slots_and_activity_extends_it(backend: str, tmp_path: Path) -> None:
    db = new_db(backend, tmp_path, first_lease_seconds=300, lease_seconds=1800)
    C.create_situation_tasks(db, target=1, emotions=["fear", "joy"])
    for w in ("grabber", "honest", "typist"):
        C.register_worker(db, w)
    t0 = 2_000_000.0
    grab = C.assign(db, "grabber", "situation", now=t0, client="192.0.2.1/32")
    typist = C.assign(db, "typist", "situation", now=t0, client="192.0.2.2/32")
    assert isinstance(grab, C.Assignment) and isinstance(typist, C.Assignment)
    assert grab.expires_at == t0 + 300 and grab.deadline == t0 + 1800
    assert isinstance(C.assign(db, "honest", "situation", now=t0 + 10), C.NoTask)  # both slots held
    # the typist is active: each heartbeat pushes the expiry, never past 30 minutes from the start
    from kyokan.crowd.assignment import extend

    assert extend(db, "typist", typist.token, now=t0 + 200) == t0 + 500
    assert extend(db, "grabber", typist.token, now=t0 + 250) is None  # not theirs
    t = t0 + 200
    while t < t0 + 1700:
        t += 250
        assert extend(db, "typist", typist.token, now=t) == min(t + 300, t0 + 1800)
    # the grabber did nothing: after 5 minutes their slot is someone else's
    a = C.assign(db, "honest", "situation", now=t0 + 301)
    assert isinstance(a, C.Assignment) and a.item_id == grab.item_id
    assert extend(db, "typist", typist.token, now=t0 + 1801) is None  # 30 minutes is the most
    # opening the task page again is activity too
    C.register_worker(db, "reloader")
    C.create_situation_tasks(db, target=1, emotions=["anger"])
    r = C.assign(db, "reloader", "situation", now=t0 + 2000)
    assert isinstance(r, C.Assignment)
    again = C.assign(db, "reloader", "situation", now=t0 + 2100, start=False)
    assert isinstance(again, C.Assignment) and again.resumed and again.expires_at == t0 + 2400
    db.dispose()


# --- squatting, ids --------------------------------------------------------------------------------
def test_visiting_someone_elses_id_does_not_lock_them_out(make_site) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site(leases_per_client=0)
    C.create_situation_tasks(db, target=3)
    squatter = client_from(base, "127.0.0.9")
    for path in ("/w/victim", "/w/victim/task/situation", "/w/victim/mine", "/w/victim/claim", "/w/victim/task/dialogue"):
        assert squatter.get(path).status_code in (200, 303), path
    assert n_workers(db) == 0
    victim = client_from(base, "127.0.0.10")
    page = start(victim, "victim")
    assert page.status_code == 200 and 'id="recovery-key"' in page.text
    assert submit_form(victim, "victim", page.text, text="外来で長く待たされて不安だった").status_code == 303
    # someone who got in first with an id: the admin's new key ends their binding
    squatter2 = client_from(base, "127.0.0.9")
    sq_page = start(squatter2, "victim2")
    assert sq_page.status_code == 200
    key = C.reset_worker_key(db, "victim2", "test")
    r = squatter2.get("/w/victim2/mine")
    assert r.status_code == 303 and squatter2.get("/w/victim2").headers["location"] == "/w/victim2/claim"
    stale = submit_form(squatter2, "victim2", sq_page.text, text="乗っ取った人の文章")
    assert stale.status_code == 303 and stale.headers["location"] == "/w/victim2"
    real = client_from(base, "127.0.0.11")
    claim = real.get("/w/victim2/claim")
    assert real.post("/w/victim2/claim", data={"csrf_token": csrf(claim.text), "key": key}).status_code == 303
    resumed = real.get("/w/victim2/task/situation")  # the lease is the id's: the real worker finishes it
    assert task_token(resumed.text) == task_token(sq_page.text)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission).where(Submission.worker_id == "victim2")) == 0


def test_invite_only_ids_need_their_key(make_site) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site(worker_registration="invite", leases_per_client=0)
    C.create_situation_tasks(db, target=3)
    keys = C.create_workers(db, ["W100", "W200"])
    c = client_from(base)
    assert c.get("/w/W999").status_code == 404  # not invited
    assert start(c, "W999").status_code == 404 and n_workers(db) == 2
    assert c.get("/w/W100").headers["location"] == "/w/W100/claim"  # invited: the key is needed
    claim = c.get("/w/W100/claim")
    assert c.post("/w/W100/claim", data={"csrf_token": csrf(claim.text), "key": keys["W100"]}).status_code == 303
    assert 'name="token"' in start(c, "W100").text


@pytest.mark.parametrize("path", ["/w/victim%0A", "/w/victim%0a/task/situation", "/w/victim%0D", "/w/%0Avictim",
                                  "/w/victim%00", "/w/vict%09im", "/w/victim%E2%80%8B", "/?worker_id=victim%0A"])
def test_control_characters_in_worker_ids_are_refused(make_site, path: str) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site()
    C.create_situation_tasks(db, target=3)
    c = client_from(base)
    home = c.get("/login")
    assert c.get(path).status_code in (400, 404)
    if "/task/" in path:
        assert c.post(path, data={"csrf_token": csrf(home.text), "action": "start"}).status_code in (400, 404)
    assert n_workers(db) == 0
    with pytest.raises(C.NotFound):
        C.register_worker(db, "victim\n")


# --- sessions and logins -----------------------------------------------------------------------------
def _replay(base: str, cookies: httpx.Cookies) -> int:
    c = client_from(base)
    for cookie in cookies.jar:
        c.cookies.set(cookie.name, cookie.value)
    return c.get("/review").status_code


def test_replayed_cookie_is_refused_after_logout_password_and_role_change(make_site) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site()
    rev = login(base, "rev")
    stolen = httpx.Cookies(rev.cookies)
    assert _replay(base, stolen) == 200  # the copy works while the session lives
    page = rev.get("/review")
    assert rev.post("/logout", data={"csrf_token": csrf(page.text)}).status_code == 303
    assert _replay(base, stolen) == 303  # logged out: the copy is dead too
    # a password reset (CLI / add_user) ends every session of the account
    rev = login(base, "rev")
    stolen = httpx.Cookies(rev.cookies)
    C.add_user(db, "rev", PASSWORD + " v2", "reviewer")
    assert _replay(base, stolen) == 303 and rev.get("/review").status_code == 303
    # so does a role change
    lead = login(base, "lead")
    stolen = httpx.Cookies(lead.cookies)
    assert lead.get("/admin/workers").status_code == 200
    C.add_user(db, "lead", PASSWORD, "reviewer")
    assert _replay(base, stolen) == 303
    # changing one's own password in the browser ends the other sessions, keeps this one
    a, b = login(base, "admin"), login(base, "admin")
    acct = a.get("/account")
    r = a.post("/account/password", data={"csrf_token": csrf(acct.text), "current": PASSWORD,
                                          "new": "a brand new passphrase", "again": "a brand new passphrase"})
    assert r.status_code == 303
    assert b.get("/review").status_code == 303 and a.get("/review").status_code == 200
    assert C.authenticate(db, "admin", "a brand new passphrase") is not None
    # and disabling an account
    stolen = httpx.Cookies(a.cookies)
    from kyokan.crowd.reviewing import set_user_active

    set_user_active(db, "admin", False)
    assert _replay(base, stolen) == 303


def _kyokan(*args: str, stdin: str | None, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KYOKAN, *args], input=stdin, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, stdin=None if stdin is not None else subprocess.DEVNULL)


def test_piped_password_wins_over_the_exported_one(backend: str, tmp_path: Path, cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db = new_db(backend, tmp_path)
    env = {"KYOKAN_CROWD_PASSWORD": "the exported admin passphrase", "KYOKAN_CROWD_DB": db.url}
    r = _kyokan("crowd", "user", "add", "rev2", "--role", "reviewer", stdin="short\n", env=env)
    assert r.returncode == 2 and "at least 10 characters" in r.stderr and "Traceback" not in r.stderr
    with db.read() as s:
        assert s.scalar(select(User.id).where(User.username == "rev2")) is None
    C.add_user(db, "rev2", "a long first passphrase", "reviewer")  # the piped one must replace it
    r = _kyokan("crowd", "user", "add", "rev2", "--role", "reviewer", stdin="a long piped passphrase\n", env=env)
    assert r.returncode == 0, r.stderr
    assert C.authenticate(db, "rev2", "a long piped passphrase") is not None
    assert C.authenticate(db, "rev2", "the exported admin passphrase") is None
    # nothing piped (stdin closed): the exported one is used; in process, stdin replaced
    monkeypatch.setenv("KYOKAN_CROWD_PASSWORD", "the exported admin passphrase")
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115
    assert cli("crowd", "user", "add", "rev3", "--role", "reviewer", "--db", db.url).code == 0
    assert C.authenticate(db, "rev3", "the exported admin passphrase") is not None
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("tiny\n"))
    r2 = cli("crowd", "init", "--db", db.url, "--admin", "boss")
    assert r2.code == 2 and "at least 10 characters" in r2.stderr
    monkeypatch.setattr(sys, "stdin", io.StringIO("a piped admin passphrase\n"))
    assert cli("crowd", "init", "--db", db.url, "--admin", "boss").code == 0
    assert C.authenticate(db, "boss", "a piped admin passphrase") is not None
    db.dispose()


def _try_login(c: httpx.Client, username: str, password: str) -> int:
    page = c.get("/login")
    return c.post("/login", data={"csrf_token": csrf(page.text), "username": username,
                                  "password": password}).status_code


def test_a_stranger_cannot_lock_a_reviewer_out(make_site) -> None:  # type: ignore[no-untyped-def]
    # the default allowances, except a smaller one for the account (fewer password checks to run)
    base, db = make_site(login_free_failures={"ip": 30, "ipacct": 10, "acct": 24, "dev": 10})
    me = client_from(base, "127.0.0.1")
    assert _try_login(me, "rev", PASSWORD) == 303  # this browser has logged in as rev before
    page = me.get("/review")
    me.post("/logout", data={"csrf_token": csrf(page.text)})
    stranger = client_from(base, "127.0.0.1")  # same network, no cookies
    codes = [_try_login(stranger, "rev", f"guess {i}") for i in range(40)]
    assert codes[:10] == [401] * 10 and codes.count(401) <= 14 and codes.count(429) >= 25  # guesses are bounded ...
    assert _try_login(me, "rev", PASSWORD) == 303  # ... and the reviewer still gets in
    assert _try_login(client_from(base, "127.0.0.2"), "rev", PASSWORD) == 303  # and from elsewhere
    # strangers on many networks exhaust the account's budget for strangers only
    for n in range(3, 5):
        s = client_from(base, f"127.0.0.{n}")
        for i in range(11):
            _try_login(s, "rev", f"guess {n}.{i}")
    assert _try_login(client_from(base, "127.0.0.20"), "rev", PASSWORD) == 429
    assert _try_login(me, "rev", PASSWORD) == 303
    with db.read() as s:
        from kyokan.crowd.models import AuditEntry

        failed = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "login.failed"))
    assert failed is not None and failed <= 14 + 2 * 11


@pytest.mark.slow  # a load test: 60 concurrent logins against a server process
def test_a_login_flood_does_not_grow_server_memory(backend: str, tmp_path: Path) -> None:
    """60 concurrent failed logins from 60 addresses against a real `kyokan crowd serve`."""
    import psutil

    from kyokan.crowd.pgtemp import free_port, wait_port

    db = new_db(backend, tmp_path)
    C.add_user(db, "rev", PASSWORD, "reviewer")
    port = free_port()
    srv = subprocess.Popen([KYOKAN, "crowd", "serve", "--db", db.url, "--host", "127.0.0.1", "--port", str(port)],
                           env={**os.environ, "KYOKAN_CROWD_SECRET": SECRET}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_port("127.0.0.1", port, 60)
        base = f"http://127.0.0.1:{port}"
        proc = psutil.Process(srv.pid)
        clients = [client_from(base, f"127.0.1.{n}") for n in range(1, 61)]
        pages = [c.get("/login") for c in clients]  # forms first: only the POSTs race
        assert _try_login(client_from(base, "127.0.2.1"), "rev", "warm up the hash") == 401
        rss0 = proc.memory_info().rss
        peak = [rss0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                with contextlib.suppress(psutil.Error):
                    peak.append(proc.memory_info().rss)
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        go = threading.Barrier(len(clients))

        def attempt(i: int) -> int:
            go.wait()
            return clients[i].post("/login", data={"csrf_token": csrf(pages[i].text), "username": "rev",
                                                   "password": f"wrong {i}"}).status_code

        with ThreadPoolExecutor(len(clients)) as ex:
            codes = list(ex.map(attempt, range(len(clients))))
        stop.set()
        sampler.join()
    finally:
        srv.terminate()
        srv.wait(timeout=30)
    assert set(codes) <= {401, 503} and 500 not in codes
    assert codes.count(401) >= 2  # some were checked, the rest were told to come back
    growth = (max(peak) - rss0) / 2**20
    assert growth < 200, f"server RSS grew {growth:.0f} MiB during the flood"  # was 1,250 MiB
    db.dispose()


# --- screens -----------------------------------------------------------------------------------
def test_invisible_and_direction_characters_do_not_pass_the_screens(make_site, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site(leases_per_client=0)
    C.create_situation_tasks(db, target=5)
    c = client_from(base)
    page = start(c, "w-zw")
    r = submit_form(c, "w-zw", page.text, text="看護師に「死\u200bね」と言われた")
    assert r.status_code == 303
    with db.read() as s:
        sub = s.scalars(select(Submission).where(Submission.worker_id == "w-zw")).one()
    assert sub.status == "flagged" and sub.content["text"] == "看護師に「死ね」と言われた"
    for text in ("\u200b\u200b\u200b\u200b", "\u200d\ufeff\u2060\u3000", "\u202e怖かった経験です", "検査\x00結果", "痛\x1b[31mい"):
        page = start(c, "w-zw")
        assert submit_form(c, "w-zw", page.text, text=text).status_code == 400, repr(text)
    # dialogue turns of only zero-width characters
    C.import_situations(db, [{"id": "z-s1", "emotion": "fear", "lang": "ja", "situation": "手術の前夜"}])
    C.create_dialogue_tasks(db, target=2)
    page = start(c, "w-zw", "dialogue")
    turns = {f"turn_{i}": t for i, t in enumerate(DIALOGUE)}
    turns["turn_3"] = "\u200b\u200c\u200d"
    assert submit_form(c, "w-zw", page.text, "dialogue", **turns).status_code == 400
    # rating comments get the same checks as every other text
    C.create_rating_tasks(db, rating_packets(tmp_path, 2))
    for comment in ("nul\x00here", "esc\x1b[2J", "\u202eright-to-left"):
        page = start(c, "w-zw", "rating")
        assert submit_form(c, "w-zw", page.text, "rating", **{"rating_0.empathy": "4"}, comment=comment).status_code == 400
    page = start(c, "w-zw", "rating")
    assert submit_form(c, "w-zw", page.text, "rating", **{"rating_0.empathy": "4"},
                       comment="よかった\u200b").status_code == 303
    with db.read() as s:
        stored = [x.content for x in s.scalars(select(Submission).where(Submission.kind == "rating"))]
    assert [x["comment"] for x in stored] == ["よかった"]


# --- blocked workers, skipped leases -----------------------------------------------------------
def test_blocked_worker_and_skipped_lease_cannot_submit(make_site) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site(leases_per_client=0)
    C.create_situation_tasks(db, target=5)
    w = client_from(base)
    page = start(w, "bad-w")
    admin = login(base, "admin")
    wp = admin.get("/admin/workers")
    assert admin.post("/admin/workers/bad-w/block", data={"csrf_token": csrf(wp.text)}).status_code == 303
    r = submit_form(w, "bad-w", page.text, text="ブロック前に取った課題")
    assert r.status_code == 403
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 0
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
        assert s.scalar(select(Reservation.status).where(Reservation.worker_id == "bad-w")) == "revoked"
    assert "no-task" in start(w, "bad-w").text  # and no new task
    assert live_leases(db) == 0  # the slot went back
    # the service refuses too, for a lease that had timed out before the block
    C.register_worker(db, "late-w")
    t0 = time.time() - 10_000
    a = C.assign(db, "late-w", "situation", now=t0)
    assert isinstance(a, C.Assignment)
    C.set_blocked(db, "late-w", True, "test")
    with pytest.raises(C.Forbidden):
        C.submit(db, "late-w", a.token, {"text": "期限切れの課題"})
    # a skipped lease
    g = client_from(base, "127.0.0.3")
    page = start(g, "skip-w")
    tok = task_token(page.text)
    assert g.post("/w/skip-w/task/situation", data={"csrf_token": csrf(page.text), "token": tok,
                                                   "action": "skip"}).status_code == 303
    r = submit_form(g, "skip-w", page.text, text="スキップした課題を送る")
    assert r.status_code == 409
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission)) == 0


# --- concurrency -----------------------------------------------------------------------------------
def test_concurrent_rejections_respect_the_cap(backend: str, tmp_path: Path) -> None:
    db = new_db(backend, tmp_path)
    C.create_situation_tasks(db, target=1)
    for rnd, wid in enumerate(("victim-a", "victim-b")):
        C.register_worker(db, wid)
        uids = []
        for i in range(10):
            a = C.assign(db, wid, "situation")
            assert isinstance(a, C.Assignment)
            uids.append(C.submit(db, wid, a.token, {"text": f"状況その{rnd}-{i}"}).uid)
        go = threading.Barrier(10)

        def reject(uid: str, go: threading.Barrier = go) -> str:
            go.wait()
            try:
                C.review(db, REV, uid, "reject")
                return "ok"
            except C.Conflict as e:
                return e.code

        with ThreadPoolExecutor(10) as ex:
            outcomes = list(ex.map(reject, uids))
        assert sorted(outcomes) == ["ok"] * 3 + ["rejection_cap"] * 7, outcomes
        with db.read() as s:
            st = C.rejection_stats(s, wid, 0.3)
            voids = s.scalar(select(func.count()).select_from(LedgerEntry).where(
                LedgerEntry.worker_id == wid, LedgerEntry.status == "void"))
        assert (st.rejected, voids) == (3, 3)
    db.dispose()


def test_no_false_no_tasks_while_slots_are_free(backend: str, tmp_path: Path) -> None:
    """40 workers race for 100 free slots on 5 items (each item locked by someone most of the
    time): every one of them gets a task, in every round."""
    db = new_db(backend, tmp_path)
    C.import_situations(db, [{"id": f"ft-{i}", "emotion": "fear", "lang": "ja", "situation": f"状況 {i}"}
                             for i in range(5)])
    C.create_dialogue_tasks(db, target=20)
    for rnd in range(3):
        workers = [f"r{rnd}-w{i:02d}" for i in range(40)]
        for w in workers:
            C.register_worker(db, w)
        go = threading.Barrier(len(workers))

        def take(w: str, go: threading.Barrier = go) -> Any:
            go.wait()
            return C.assign(db, w, "dialogue")

        with ThreadPoolExecutor(len(workers)) as ex:
            got = list(ex.map(take, workers))
        misses = [g for g in got if isinstance(g, C.NoTask)]
        assert misses == [], f"round {rnd}: {len(misses)} false 'no tasks' with free slots"
        # half of them submit while the next round races (items change under the pick)
        for w, a in zip(workers[::2], got[::2], strict=True):
            C.submit(db, w, a.token, {"turns": [{"text": t} for t in DIALOGUE]})
        for w, a in zip(workers[1::2], got[1::2], strict=True):
            C.release(db, w, a.token)
    with db.read() as s:
        from kyokan.crowd.models import Item

        for it in s.scalars(select(Item)):
            assert it.n_submitted + it.n_reserved <= it.target
    db.dispose()


# --- malformed requests ----------------------------------------------------------------------------
MALFORMED_GET = [
    "/review?page=%C2%B2", "/review?page=999999999999999999", "/review?page=-1", "/review?page=1e3",
    "/review/%00", "/review/s-000001%00", "/review/" + "x" * 300, "/w/%00", "/w/a%00b/task/situation",
    "/w/ok-w/sub/%00", "/w/ok-w/task/%00", "/admin/audit?page=%C2%B2", "/admin/audit?view=%00",
    "/login?next=%0d%0aSet-Cookie:x=1", "/review?lang=%00", "/review?kind=%00&status=%00",
    "/static/..%2f..%2fdb.py", "/static/%00",
]


def test_malformed_requests_get_4xx_never_500(make_site) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site(leases_per_client=0)
    C.create_situation_tasks(db, target=5)
    admin = login(base, "admin")
    w = client_from(base)
    page = start(w, "ok-w")
    assert submit_form(w, "ok-w", page.text, text="普通の状況です").status_code == 303
    uid = db_uid(db)
    for path in MALFORMED_GET:
        for c in (admin, w):
            r = c.get(path)
            assert 400 <= r.status_code < 500 or r.status_code in (200, 303), (path, r.status_code)
            assert r.status_code != 500
    assert admin.get("/review?page=%C2%B2").status_code == 400
    assert admin.get("/review?page=999999999999999999").status_code == 400
    tok = csrf(admin.get("/admin").text)
    posts: list[tuple[httpx.Client, str, dict[str, str]]] = [
        (admin, f"/review/{uid}", {"action": "approve", "version": "²"}),
        (admin, f"/review/{uid}", {"action": "approve", "version": "99999999999999999999"}),
        (admin, f"/review/{uid}", {"action": "approve\x00", "version": "1"}),
        (admin, f"/review/{uid}", {"action": "approve", "version": "1", "note": "memo\x00"}),
        (admin, f"/review/{uid}", {"action": "approve", "version": "1", "next": "/review\r\nX: y"}),
        (admin, f"/review/{uid}", {"action": "save", "kind": "situation", "has_content": "1", "text": "a\x00b"}),
        (admin, "/review/s-%00", {"action": "approve"}),
        (admin, "/admin/tasks/situation", {"target": "²"}),
        (admin, "/admin/tasks/situation", {"target": "99999999999999999999"}),
        (admin, "/admin/tasks/dialogue", {"target": "0"}),
        (admin, "/admin/tasks/situation", {"taxonomy": "goemotions28\x00"}),
        (admin, "/admin/workers/%00/block", {}),
        (admin, "/admin/workers/ok-w%0A/block", {}),
        (admin, "/admin/workers/nobody/block", {}),
        (admin, "/admin/workers/ok-w/explode", {}),
        (w, "/w/ok-w/task/situation", {"action": "submit", "token": "\x00" * 20, "text": "x"}),
        (w, "/w/ok-w/task/situation", {"action": "submit", "token": "a" * 64, "text": "普通の状況"}),
        (w, "/w/ok-w/task/situation", {"action": "ping", "token": "\x00"}),
        (w, "/w/ok-w/task/situation", {"action": "skip", "token": "../../etc"}),
        (w, "/w/ok-w/task/rating", {"action": "submit", "token": "x" * 30}),
        (w, "/w/ok-w/task/%00", {"action": "start"}),
        (w, "/w/ok-w/claim", {"key": "\x00" * 64}),
        (w, "/login", {"username": "rev\x00", "password": "x"}),
        (w, "/login", {"username": "r" * 500, "password": "\x00" * 300}),
        (w, "/login", {"username": "ｒｅｖ", "password": PASSWORD}),
        (w, "/login", {"username": "rev²", "password": PASSWORD}),
    ]
    for c, path, data in posts:
        r = c.post(path, data={"csrf_token": csrf(c.get("/admin" if c is admin else "/w/ok-w").text), **data})
        assert 400 <= r.status_code < 500 or r.status_code == 303, (path, data, r.status_code, r.text[:300])
    assert tok
    # rating values that float() would take but a rating must not
    C.create_rating_tasks(db, [{"id": "mal", "payload": {"items": [{"code": "mal", "item": {}}], "metrics": ["e"],
                                                          "scale": {"min": 1, "max": 5}}, "target": 5, "lang": "ja"}])
    for v in ("٣", "1_0", "inf", "nan", "1e308", "²", "4\x00", "9" * 400):
        page = start(w, "ok-w", "rating")
        r = submit_form(w, "ok-w", page.text, "rating", **{"rating_0.e": v})
        assert r.status_code == 400, (v, r.status_code)
    # the server is still there and answers normally
    assert w.get("/healthz").json() == {"ok": True}
    # raw requests a client library would not send
    port = int(base.rsplit(":", 1)[1])
    import socket

    broken = b"--zz\r\nContent-Disposition: form-data; name=\"a\r\n\r\nbroken"
    for raw in (b"GET /w/a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /review?page=\xb2 HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /w/\xe6\xad\xbb HTTP/1.1\r\nHost: x\r\n\r\n",
                b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
                b"Content-Length: " + str(len(broken)).encode() + b"\r\n\r\n" + broken):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(raw)
            status = sock.recv(200).split(b"\r\n", 1)[0]
        assert status.startswith(b"HTTP/1.1 4"), (raw, status)


def db_uid(db: C.CrowdDB) -> str:
    with db.read() as s:
        return str(s.scalars(select(Submission.uid).order_by(Submission.id)).first())


def test_admin_settings_never_open_a_server_path(make_site, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site()
    own = tmp_path / "tax.json"  # a file the server could read if it took paths
    own.write_text(json.dumps({"name": "mine", "labels": [{"id": "a"}]}), encoding="utf-8")
    admin = login(base, "admin")
    for tax in ("../../../../etc/passwd", "/etc/passwd", str(own), "..\\..\\x.json", "goemotions28/../../x"):
        page = admin.get("/admin")
        r = admin.post("/admin/tasks/situation", data={"csrf_token": csrf(page.text), "taxonomy": tax, "target": "2"})
        assert r.status_code == 400, tax
        assert "root:" not in r.text
    assert C.create_situation_tasks.__name__  # the library itself still takes paths from the CLI
    with db.read() as s:
        from kyokan.crowd.models import Item

        assert s.scalar(select(func.count()).select_from(Item)) == 0
    page = admin.get("/admin")
    assert admin.post("/admin/tasks/situation", data={"csrf_token": csrf(page.text), "taxonomy": "plutchik8",
                                                      "target": "2"}).status_code == 303


def test_registration_flood_does_not_hide_reviewer_actions(make_site) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site(leases_per_client=0)
    C.create_situation_tasks(db, target=5)
    C.register_worker(db, "real")
    a = C.assign(db, "real", "situation")
    assert isinstance(a, C.Assignment)
    uid = C.submit(db, "real", a.token, {"text": "本当の投稿"}).uid
    C.review(db, REV, uid, "approve")
    for i in range(210):  # more than one page of registrations
        C.register_worker(db, f"flood{i}")
    lead = login(base, "lead")
    page = lead.get("/admin/audit").text
    assert f">{uid}<" in page and "approve" in page and "flood1" not in page
    workers = lead.get("/admin/audit?view=workers").text
    assert "worker.register" in workers and "(211)" in workers
    assert lead.get("/admin/audit?view=workers&page=1").status_code == 200


# --- withdrawn situations --------------------------------------------------------------------------
def test_removed_situation_withdraws_its_dialogue_items(make_site) -> None:  # type: ignore[no-untyped-def]
    base, db = make_site(leases_per_client=0)
    C.create_situation_tasks(db, target=2, emotions=["fear"])
    C.register_worker(db, "sw1")
    a = C.assign(db, "sw1", "situation")
    assert isinstance(a, C.Assignment)
    sit = C.submit(db, "sw1", a.token, {"text": "救急外来で長く待った"}).uid
    C.review(db, REV, sit, "approve")
    assert len(C.create_dialogue_tasks(db, target=5)) == 1
    w = client_from(base)
    page = start(w, "dw1", "dialogue")
    assert "救急外来" in page.text
    C.review(db, LEAD, sit, "remove", note="個人情報")
    turns = {f"turn_{i}": t for i, t in enumerate(DIALOGUE)}
    r = submit_form(w, "dw1", page.text, "dialogue", **turns)
    assert r.status_code == 409
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Submission).where(Submission.kind == "dialogue")) == 0
        assert s.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "dialogue")) == 0
    assert "no-task" in start(client_from(base, "127.0.0.2"), "dw2", "dialogue").text
    # a flagged situation pauses its items; kept, they take workers again
    C.register_worker(db, "sw2")
    b = C.assign(db, "sw2", "situation")
    assert isinstance(b, C.Assignment)
    sit2 = C.submit(db, "sw2", b.token, {"text": "検査の結果を待つ夜"}).uid
    C.review(db, REV, sit2, "approve")
    C.create_dialogue_tasks(db, target=5)
    C.review(db, REV, sit2, "flag")
    C.register_worker(db, "dw3")
    assert isinstance(C.assign(db, "dw3", "dialogue"), C.NoTask)
    C.review(db, LEAD, sit2, "keep")
    got = C.assign(db, "dw3", "dialogue")
    assert isinstance(got, C.Assignment) and got.situation_uid == sit2
