"""Shared helpers for the crowd tests: a real PostgreSQL server (started once per session from
Debian's binaries), SQLite/PostgreSQL database fixtures, a real uvicorn server on loopback,
and small HTTP helpers."""

from __future__ import annotations

import atexit
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kyokan.crowd import CrowdConfig, CrowdDB, init_db
from kyokan.crowd.pgtemp import TempPostgres, find_bindir, free_port

SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse battery"

_PG: TempPostgres | None = None
_PG_ERROR: str | None = None
_PG_LOCK = threading.Lock()


def postgres() -> TempPostgres:
    """The session's PostgreSQL server (skips the test when no server binaries exist)."""
    global _PG, _PG_ERROR
    with _PG_LOCK:
        if _PG is None and _PG_ERROR is None:
            if find_bindir() is None:
                _PG_ERROR = "no PostgreSQL server binaries (apt-get install postgresql)"
            else:
                _PG = TempPostgres().start()  # a failure to start is an error, not a skip
                atexit.register(_PG.stop)
    if _PG_ERROR:
        pytest.skip(_PG_ERROR)
    assert _PG is not None
    return _PG


def fast_config(**kw: Any) -> CrowdConfig:
    """Defaults, with the rate limits and the per-client lease bound out of the way of tests that
    are not about them (every test client is on 127.0.0.1)."""
    cfg = CrowdConfig(submits_per_minute=10_000, requests_per_minute=100_000, registrations_per_minute=100_000,
                      submits_per_minute_per_client=100_000, leases_per_client=0)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def new_db(backend: str, tmp_path: Path, **cfg: Any) -> CrowdDB:
    url = str(tmp_path / "crowd.db") if backend == "sqlite" else postgres().create_database()
    return init_db(url, config=fast_config(**cfg))


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def crowd(backend: str, tmp_path: Path) -> Iterator[CrowdDB]:
    db = new_db(backend, tmp_path)
    yield db
    db.dispose()


class LiveServer:
    """The app on uvicorn in a background thread, on 127.0.0.1 and a free port. ``proxy_headers``
    is uvicorn's own X-Forwarded-For handling (on by default in uvicorn; ``kyokan crowd serve``
    turns it off)."""

    def __init__(self, app: Any, *, proxy_headers: bool = False) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="off", proxy_headers=proxy_headers))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        end = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > end or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


def csrf(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def task_token(html: str) -> str:
    m = _TOKEN.search(html)
    assert m, "no task token in the page"
    return m.group(1)


def start(c: httpx.Client, wid: str, kind: str = "situation") -> httpx.Response:
    """Press "start" on the worker page: registers a new id, takes a lease, returns the task page."""
    page = c.get("/login")  # a page with a form: it carries the session's CSRF token
    return c.post(f"/w/{wid}/task/{kind}", data={"csrf_token": csrf(page.text), "action": "start"})


def worker_client(base: str, wid: str, kind: str = "situation", **kw: Any) -> httpx.Client:
    """A browser-like client bound to a new worker id: it has started (and holds) one task of
    ``kind``, which registered the id."""
    c = httpx.Client(base_url=base, follow_redirects=False, timeout=30, **kw)
    r = start(c, wid, kind)
    assert r.status_code == 200 and 'name="token"' in r.text, r.text
    return c


def submit_form(c: httpx.Client, wid: str, page: str, kind: str = "situation", **fields: str) -> httpx.Response:
    """Submit the task shown on ``page`` with the given form fields."""
    return c.post(f"/w/{wid}/task/{kind}", data={"csrf_token": csrf(page), "token": task_token(page),
                                                 "action": "submit", **fields})


def login(base: str, username: str, password: str = PASSWORD) -> httpx.Client:
    c = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    page = c.get("/login")
    r = c.post("/login", data={"csrf_token": csrf(page.text), "username": username, "password": password})
    assert r.status_code == 303, r.text
    return c


DIALOGUE = ["最近、検査の結果を待っていて落ち着きません。", "結果を待つ時間は本当に長く感じますよね。",
            "悪い結果だったらと考えてしまいます。", "そう考えてしまうのは自然なことです。一緒に待ちましょう。"]
