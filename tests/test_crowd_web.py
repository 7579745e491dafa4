"""The web app over real HTTP (uvicorn on loopback, SQLite): worker and reviewer flows and the
security rules — CSRF, escaping, size limits, rate limits, worker isolation, login, secrets."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
    task_token,
    worker_client,
)
from kyokan.crowd.security import Signer
from kyokan.errors import KyokanError


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, C.CrowdDB]]:
    db = new_db("sqlite", tmp_path_factory.mktemp("web"))
    C.create_situation_tasks(db, target=3)
    C.add_user(db, "rev", PASSWORD, "reviewer")
    C.add_user(db, "lead", PASSWORD, "lead")
    C.add_user(db, "admin", PASSWORD, "admin")
    old = os.environ.get("KYOKAN_CROWD_SECRET")
    os.environ["KYOKAN_CROWD_SECRET"] = SECRET
    try:
        app = C.create_app(db)
    finally:
        if old is None:
            os.environ.pop("KYOKAN_CROWD_SECRET", None)
        else:
            os.environ["KYOKAN_CROWD_SECRET"] = old
    with LiveServer(app) as srv:
        yield srv.url, db


def _submit_situation(c: httpx.Client, wid: str, text: str) -> httpx.Response:
    page = c.get(f"/w/{wid}/task/situation")
    assert page.status_code == 200, page.text
    if 'name="token"' not in page.text:  # no live task: start one
        page = start(c, wid)
        assert page.status_code == 200, page.text
    return c.post(f"/w/{wid}/task/situation", data={"csrf_token": csrf(page.text), "token": task_token(page.text),
                                                     "text": text, "action": "submit"})


def test_worker_flow_japanese_ui_and_headers(site: tuple[str, C.CrowdDB]) -> None:
    base, _db = site
    c = httpx.Client(base_url=base, timeout=30)
    home = c.get("/w/alice")
    assert home.status_code == 200 and 'lang="ja"' in home.text and "ワーカーページ" in home.text
    assert "<code>" not in home.text and "set-cookie" in home.headers
    h = home.headers
    assert h["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in h["content-security-policy"]
    cookie = h["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = start(c, "alice")  # starting the first task registers the id and shows the key, once
    assert re.search(r"<code>[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}</code>", page.text)
    assert "状況の作成" in page.text and "感情" in page.text
    again = c.get("/w/alice/task/situation")
    assert "<code>" not in again.text and task_token(again.text) == task_token(page.text)
    r = c.post("/w/alice/task/situation", data={"csrf_token": csrf(page.text), "token": task_token(page.text),
                                                 "text": "採血が怖くて泣いてしまった。", "action": "submit"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/w/alice/task/situation"
    nxt = c.get("/w/alice/task/situation")
    assert "送信しました（s-" in nxt.text
    assert "Write a situation" in c.get("/w/alice/task/situation?lang=en").text  # English on request
    mine = c.get("/w/alice/mine")
    assert "採血が怖くて泣いてしまった。" in mine.text


def test_csrf_required_on_every_post(site: tuple[str, C.CrowdDB]) -> None:
    base, _db = site
    c = worker_client(base, "csrf-w")
    page = c.get("/w/csrf-w/task/situation")
    tok = task_token(page.text)
    for data in ({"token": tok, "text": "テキスト"}, {"token": tok, "text": "テキスト", "csrf_token": "forged"}):
        r = c.post("/w/csrf-w/task/situation", data=data)
        assert r.status_code == 403
    assert c.post("/login", data={"username": "rev", "password": PASSWORD}).status_code == 403
    rc = login(base, "rev")
    assert rc.post("/review/s-000001", data={"action": "approve"}).status_code == 403
    assert rc.post("/logout", data={}).status_code == 403
    # a token from another session does not work either
    other = httpx.Client(base_url=base)
    assert other.post("/login", data={"csrf_token": csrf(page.text), "username": "rev",
                                      "password": PASSWORD}).status_code == 403


def test_user_text_is_escaped(site: tuple[str, C.CrowdDB]) -> None:
    base, _db = site
    c = worker_client(base, "xss-w")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    assert _submit_situation(c, "xss-w", evil).status_code == 303
    mine = c.get("/w/xss-w/mine").text
    assert "<script>alert" not in mine and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in mine
    rc = login(base, "rev")
    queue = rc.get("/review?kind=situation").text
    assert "<script>alert" not in queue and "&lt;img src=x onerror=alert(1)&gt;" in queue
    # a hostile worker id in the URL is refused, not reflected
    assert c.get("/w/%3Cscript%3E").status_code == 404


def test_size_limits(site: tuple[str, C.CrowdDB]) -> None:
    base, _db = site
    c = worker_client(base, "size-w")
    page = c.get("/w/size-w/task/situation")
    big = c.post("/w/size-w/task/situation", data={"csrf_token": csrf(page.text), "token": task_token(page.text),
                                                    "text": "あ" * 40_000})
    assert big.status_code == 413
    long = c.post("/w/size-w/task/situation", data={"csrf_token": csrf(page.text), "token": task_token(page.text),
                                                     "text": "あ" * 1001})
    assert long.status_code == 400 and "too long" in long.text
    assert "あ" * 1001 in long.text  # the worker's text comes back in the form
    # a huge declared body is refused before a byte of it is read; a body without a length too
    port = int(base.rsplit(":", 1)[1])
    for head in (b"Content-Length: 999999999\r\n", b"Transfer-Encoding: chunked\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                         + head + b"\r\n")
            status = sock.recv(200).split(b"\r\n", 1)[0]
        assert status in (b"HTTP/1.1 413 Request Entity Too Large", b"HTTP/1.1 411 Length Required"), status


def test_rate_limits(site: tuple[str, C.CrowdDB]) -> None:
    base, db = site
    cfg = db.config(fresh=True)
    cfg.submits_per_minute = 2
    db.save_config(cfg)
    try:
        c = worker_client(base, "rate-w")
        assert _submit_situation(c, "rate-w", "一件目の状況").status_code == 303
        assert _submit_situation(c, "rate-w", "二件目の状況").status_code == 303
        r = _submit_situation(c, "rate-w", "三件目の状況")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "三件目の状況" in r.text  # nothing typed is lost
    finally:
        cfg.submits_per_minute = 10_000
        db.save_config(cfg)
    bad = httpx.Client(base_url=base)
    codes = []
    for _ in range(12):
        p = bad.get("/login")
        codes.append(bad.post("/login", data={"csrf_token": csrf(p.text), "username": "ratelimited",
                                              "password": "wrong"}).status_code)
    assert codes[:10] == [401] * 10 and codes[-1] == 429


def test_workers_cannot_read_each_other(site: tuple[str, C.CrowdDB]) -> None:
    base, db = site
    a = worker_client(base, "iso-a")
    assert _submit_situation(a, "iso-a", "Aさんだけの秘密の状況").status_code == 303
    uid = re.search(r'id="sub-(s-\d+)"', a.get("/w/iso-a/mine").text).group(1)  # type: ignore[union-attr]
    assert a.get(f"/w/iso-a/sub/{uid}").status_code == 200
    b = worker_client(base, "iso-b")
    r = b.get("/w/iso-a/mine")  # another worker's page: must claim with the key first
    assert r.status_code == 303 and r.headers["location"] == "/w/iso-a"
    assert b.get("/w/iso-a").headers["location"] == "/w/iso-a/claim"
    assert "秘密" not in b.get("/w/iso-a/claim").text
    assert b.get(f"/w/iso-b/sub/{uid}").status_code == 404  # their own page, someone else's uid
    claim = b.get("/w/iso-a/claim")
    assert b.post("/w/iso-a/claim", data={"csrf_token": csrf(claim.text), "key": "AAAA-BBBB-CCCC"}).status_code == 403
    # the real owner's key does bind a new browser
    key = C.assign.__module__ and __import__("kyokan.crowd.assignment", fromlist=["x"]).reset_worker_key(db, "iso-a", "test")
    fresh = httpx.Client(base_url=base)
    claim = fresh.get("/w/iso-a/claim")
    assert fresh.post("/w/iso-a/claim", data={"csrf_token": csrf(claim.text), "key": key.lower()}).status_code == 303
    assert "秘密の状況" in fresh.get("/w/iso-a/mine").text


def test_login_required_and_roles(site: tuple[str, C.CrowdDB]) -> None:
    base, _db = site
    anon = httpx.Client(base_url=base)
    for path in ("/review", "/review/s-000001", "/admin", "/admin/workers", "/admin/audit"):
        r = anon.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    p = anon.get("/login")
    assert anon.post("/login", data={"csrf_token": csrf(p.text), "username": "rev",
                                     "password": "wrong password"}).status_code == 401
    rev = login(base, "rev")
    assert rev.get("/review").status_code == 200
    assert rev.get("/admin/workers").status_code == 403
    page = rev.get("/admin")
    assert rev.post("/admin/tasks/dialogue", data={"csrf_token": csrf(page.text)}).status_code == 403
    lead = login(base, "lead")
    assert lead.get("/admin/workers").status_code == 200 and lead.get("/admin/audit").status_code == 200
    # open redirects are refused
    p = anon.get("/login")
    r = anon.post("/login", data={"csrf_token": csrf(p.text), "username": "admin", "password": PASSWORD,
                                  "next": "//evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/admin"


def test_review_pages_and_rejection_cap_shown(site: tuple[str, C.CrowdDB]) -> None:
    base, _db = site
    w = worker_client(base, "rev-w")
    assert _submit_situation(w, "rev-w", "待合室で長時間待った").status_code == 303
    uid = re.search(r'id="sub-(s-\d+)"', w.get("/w/rev-w/mine").text).group(1)  # type: ignore[union-attr]
    rev = login(base, "rev")
    page = rev.get(f"/review/{uid}")
    assert "却下 0/1 件（上限 30%＝0 件、残り 0 件）" in page.text
    r = rev.post(f"/review/{uid}", data={"csrf_token": csrf(page.text), "action": "reject", "version": "1"})
    assert r.status_code == 409 and "rejection cap" in r.text
    r = rev.post(f"/review/{uid}", data={"csrf_token": csrf(page.text), "action": "approve", "version": "1",
                                         "kind": "situation", "has_content": "1", "text": "待合室で3時間待った",
                                         "note": "具体化"})
    assert r.status_code == 303
    detail = rev.get(f"/review/{uid}").text
    assert "待合室で3時間待った" in detail and "修正履歴" in detail and "承認" in detail
    lead = login(base, "lead")
    assert "rev-w" in lead.get("/admin/workers").text
    audit = lead.get("/admin/audit").text
    assert "approve" in audit and "edit" in audit


def test_secret_comes_from_environment(site: tuple[str, C.CrowdDB], monkeypatch: pytest.MonkeyPatch) -> None:
    base, db = site
    monkeypatch.delenv("KYOKAN_CROWD_SECRET", raising=False)
    with pytest.raises(KyokanError, match="KYOKAN_CROWD_SECRET"):
        C.create_app(db)
    monkeypatch.setenv("KYOKAN_CROWD_SECRET", "short")
    with pytest.raises(KyokanError, match="too short"):
        C.create_app(db)
    # a session cookie signed with another key is ignored: the forged reviewer is not logged in
    forged = Signer(b"not-the-server-secret-" * 3).sign({"csrf": "x", "user": "admin", "role": "admin"})
    r = httpx.get(base + "/admin", cookies={"kyokan_crowd": forged})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    # and a correctly signed cookie that names a user grants nothing either: sessions live in the
    # database, a cookie only carries a session id
    good = Signer(SECRET.encode()).sign({"csrf": "x", "user": "admin", "role": "admin"})
    assert httpx.get(base + "/admin", cookies={"kyokan_crowd": good}).status_code == 303


def test_dialogue_and_rating_forms(site: tuple[str, C.CrowdDB], tmp_path: Path) -> None:
    base, db = site
    C.import_situations(db, [{"id": "web-s1", "emotion": "fear", "lang": "ja", "situation": "手術前夜の不安"}])
    C.create_dialogue_tasks(db, target=1, situations=["web-s1"])
    c = worker_client(base, "dlg-w")
    page = start(c, "dlg-w", "dialogue")
    assert "手術前夜の不安" in page.text and "患者（話し手）" in page.text and "支援者（聞き手）" in page.text
    data = {"csrf_token": csrf(page.text), "token": task_token(page.text), "action": "submit"}
    data.update({f"turn_{i}": t for i, t in enumerate(DIALOGUE)})
    assert c.post("/w/dlg-w/task/dialogue", data=data).status_code == 303
    packets = tmp_path / "p.jsonl"
    packets.write_text('{"id": "wp1", "item": {"situation": "s", "response": "<b>r</b>"}, "metrics": ["empathy"]}\n')
    C.create_rating_tasks(db, C.read_rating_packets(packets), target=1)
    page = start(c, "dlg-w", "rating")
    assert 'name="rating_0.empathy"' in page.text and "&lt;b&gt;r&lt;/b&gt;" in page.text
    r = c.post("/w/dlg-w/task/rating", data={"csrf_token": csrf(page.text), "token": task_token(page.text),
                                              "rating_0.empathy": "4", "action": "submit"})
    assert r.status_code == 303
