"""The web app: server-rendered pages for workers (no login; platform worker id in the URL,
bound to the browser when they start their first task) and for reviewers, leads and admins
(password login, sessions kept in the database).

Security: every POST carries the session's CSRF token; every page is rendered with Jinja2
autoescaping; bodies are size-limited before parsing; paths, queries and form fields are
checked before they reach the database (hostile input gets a 4xx, never a 500); workers,
networks and logins are rate-limited; a worker can only see their own submissions; the signing
key comes from the environment. The only script is the task page's heartbeat (same origin).
"""

from __future__ import annotations

import json
import re
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import DataError, StatementError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kyokan.crowd import assignment as A
from kyokan.crowd import queries as Q
from kyokan.crowd import reviewing as R
from kyokan.crowd import sessions as S
from kyokan.crowd import tasks as T
from kyokan.crowd.content import metrics_of, rated_items, turn_roles
from kyokan.crowd.db import CrowdDB
from kyokan.crowd.errors import CrowdError
from kyokan.crowd.i18n import LANGS, translate
from kyokan.crowd.models import KINDS, STATUSES
from kyokan.crowd.security import (
    Busy,
    RateLimiter,
    Signer,
    client_address,
    client_key,
    configure_hashing,
    csrf_ok,
    new_csrf,
    secret_from_env,
)

HERE = Path(__file__).parent
COOKIE = "kyokan_crowd"
DEVICE_COOKIE = "kyokan_device"
DEVICE_DAYS = 90
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    (b"cache-control", b"no-store"),
]
#: at most this many password checks in flight per client network (a burst of logins from one
#: place queues at the back-off check instead of at the hash gate)
LOGIN_IN_FLIGHT = 4
_PAGE = re.compile(r"[0-9]{1,6}")
_UINT = re.compile(r"[0-9]{1,9}")
_NEXT = re.compile(r"/[A-Za-z0-9/_.~%?&=+,;:@!$'()*-]{0,500}")
_UID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
MAX_TARGET = 100_000
MAX_PAGE = 100_000


# raw non-ASCII or control bytes, or a percent-encoded control character (%00–%1F, %7F)
_BAD_TARGET = re.compile(rb"[^\x21-\x7e]|%(?:[01][0-9A-Fa-f]|7[Ff])")


def _bad_target(raw: bytes) -> bool:
    """Whether a request target holds what no browser sends: raw non-ASCII or control bytes, or
    control characters once decoded."""
    return _BAD_TARGET.search(raw) is not None


class SessionData(dict[str, Any]):
    """The cookie's contents; remembers whether a handler changed it (top-level assignments and
    removals; handlers assign new values rather than mutating nested ones)."""

    changed = False

    def __setitem__(self, key: str, value: Any) -> None:
        if self.get(key, _MISSING) != value:
            self.changed = True
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.changed = True
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self.changed = True
        return super().pop(key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]


_MISSING = object()


class CrowdMiddleware:
    """Request hygiene (control characters in the path or query → 400; body size limit), the
    signed session cookie, the client's network, security headers — as plain ASGI, so it adds
    almost nothing per request."""

    def __init__(self, app: ASGIApp, *, signer: Signer, db: CrowdDB, secure: bool) -> None:
        self.app, self.signer, self.db, self.secure = app, signer, db, secure
        self._verified: dict[str, tuple[str, float]] = {}

    def unsign(self, raw: str) -> dict[str, Any] | None:
        """A verified cookie's contents. A cookie seen in the last minutes skips the HMAC (its JSON
        is kept, so each request still gets its own dict); after that it is verified again, expiry
        included."""
        hit = self._verified.get(raw)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return json.loads(hit[0])  # type: ignore[no-any-return]
        data = self.signer.unsign(raw)
        if data is not None:
            if len(self._verified) > 20_000:
                self._verified.clear()
            self._verified[raw] = (json.dumps(data), now + 600)
        return data

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "replace")
        qs = scope.get("query_string") or b""
        if _bad_target(raw_path) or _bad_target(qs):
            await PlainTextResponse("Bad Request: control characters in the URL", status_code=400)(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cfg = self.db.config()
        if scope["method"] in ("POST", "PUT", "PATCH"):
            limit = cfg.max_body_bytes
            cl = headers.get(b"content-length")
            if cl is None:
                await PlainTextResponse("Length Required", status_code=411)(scope, receive, send)
                return
            n = int(cl) if cl.isdigit() and len(cl) < 12 else limit + 1
            if n > limit:
                await PlainTextResponse("Request Entity Too Large", status_code=413)(scope, receive, send)
                return
        client = scope.get("client")
        fwd = tuple(v.decode("latin-1") for k, v in scope.get("headers") or [] if k == b"x-forwarded-for")
        scope["kyokan.client"] = _client(client[0] if client else None, fwd, tuple(cfg.trusted_proxies),
                                         cfg.client_prefix_v4, cfg.client_prefix_v6)
        raw = _cookie(headers.get(b"cookie", b"").decode("latin-1"), COOKIE)
        found = self.unsign(raw) if raw else None
        session = SessionData(found or {})
        if not isinstance(session.get("csrf"), str):
            session["csrf"] = new_csrf()
        if found is None:
            session.changed = True  # a new or unreadable cookie: send a fresh one
        scope["session"] = session

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                hdrs = list(message.get("headers", []))
                hdrs.extend(SECURITY_HEADERS)
                if scope["session"].changed:
                    val = f"{COOKIE}={self.signer.sign(scope['session'])}; Path=/; HttpOnly; SameSite=Lax; Max-Age={self.signer.max_age}"
                    if self.secure:
                        val += "; Secure"
                    hdrs.append((b"set-cookie", val.encode("latin-1")))
                message["headers"] = hdrs
            await send(message)

        await self.app(scope, receive, send_wrapped)


@lru_cache(maxsize=8192)
def _client(peer: str | None, fwd: tuple[str, ...], trusted: tuple[str, ...], v4: int, v6: int) -> str:
    return client_key(client_address(peer, list(fwd), trusted), v4, v6)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


class Denied(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


@lru_cache(maxsize=8)
def _taxonomy(name: str) -> Any:
    from kyokan.taxonomy import get_taxonomy
    from kyokan.taxonomy.registry import available

    # names only: a page must never make the server open a path it was given
    return get_taxonomy(name if name in available() else "goemotions28")


def _uint(value: Any, *, top: int) -> int | None:
    """A non-negative whole number written in ASCII digits and at most ``top``; else None
    (``"²".isdigit()`` is true, ``int("²")`` fails: never trust isdigit)."""
    if not isinstance(value, str) or not _UINT.fullmatch(value):
        return None
    n = int(value)
    return n if n <= top else None


def create_app(db: CrowdDB | str, *, secret: bytes | None = None, dev: bool = False,
               secure_cookies: bool = False) -> Starlette:
    """The ASGI app. ``secret`` defaults to ``KYOKAN_CROWD_SECRET`` from the environment.

    Serve it with the ASGI server's own proxy-header handling off (``kyokan crowd serve`` does;
    uvicorn's default believes X-Forwarded-For from a loopback peer): set ``trusted_proxies``
    in the config instead."""
    if not isinstance(db, CrowdDB):
        db = CrowdDB(db)
    db.require_schema()
    key = secret if secret is not None else secret_from_env(dev=dev)
    signer = Signer(key)
    device_signer = Signer(key, max_age=DEVICE_DAYS * 86400, purpose="device")
    limiter = RateLimiter()
    cfg0 = db.config()
    configure_hashing(cfg0.max_concurrent_hashes, cfg0.hash_queue)
    in_flight: dict[str, int] = {}
    in_flight_lock = threading.Lock()
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True), auto_reload=False)
    env.filters["fmt_time"] = lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else ""
    env.filters["pct"] = lambda x: f"{100 * float(x):.0f}%"

    # plain Starlette: routing and handlers, nothing per request that the app does not use
    routes: list[BaseRoute] = [Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")]
    handlers: dict[Any, Any] = {}

    def route(path: str, methods: tuple[str, ...] = ("GET",)) -> Any:
        def deco(fn: Any) -> Any:
            async def endpoint(request: Request) -> Response:
                return await fn(request, **request.path_params)  # type: ignore[no-any-return]

            routes.append(Route(path, endpoint, methods=list(methods)))
            return fn
        return deco

    def on_error(exc_type: Any) -> Any:
        def deco(fn: Any) -> Any:
            handlers[exc_type] = fn
            return fn
        return deco

    # --- helpers -------------------------------------------------------------------------------
    def sess(request: Request) -> dict[str, Any]:
        return request.scope["session"]  # type: ignore[no-any-return]

    def client_of(request: Request) -> str:
        return str(request.scope.get("kyokan.client") or "?")

    def lang_of(request: Request) -> str:
        q = request.query_params.get("lang")
        s = sess(request)
        if q in LANGS:
            if s.get("lang") != q:
                s["lang"] = q
            return q
        lang = s.get("lang")
        return lang if lang in LANGS else db.config().ui_lang

    def flash(request: Request, msg: str, **kw: Any) -> None:
        fl = sess(request).get("flash")
        fl = fl if isinstance(fl, list) else []
        if len(fl) < 5:
            sess(request)["flash"] = [*fl, [msg, kw]]  # assigned, not appended: marks the session changed

    def emo_name(emotion: str | None, lang: str, taxonomy: str = "goemotions28") -> str:
        if not emotion:
            return ""
        try:
            return str(_taxonomy(str(taxonomy)).label(emotion).name(lang))
        except Exception:
            return emotion

    def render(request: Request, name: str, ctx: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
        lang = lang_of(request)
        s = sess(request)
        flashes = s.pop("flash", []) if s.get("flash") else []
        here = request.url.path
        other = "en" if lang == "ja" else "ja"
        qs = dict(request.query_params)
        qs["lang"] = other
        c: dict[str, Any] = {
            "lang": lang, "csrf": s["csrf"], "user": s.get("user"), "role": s.get("role"),
            "t": lambda key, **kw: translate(lang, key, **kw),
            "emo": lambda e, tax="goemotions28": emo_name(e, lang, tax),
            "flashes": [translate(lang, str(k), **(kw if isinstance(kw, dict) else {})) for k, kw in flashes
                        if isinstance(k, str)],
            "switch_url": f"{quote(here)}?{urlencode(qs)}", "cfg": db.config(), "kinds": KINDS,
            "statuses": STATUSES,
        }
        c.update(ctx or {})
        return HTMLResponse(env.get_template(name).render(**c), status_code=status)

    def error_page(request: Request, status: int, key: str, **kw: Any) -> HTMLResponse:
        lang = lang_of(request)
        return render(request, "error.html", {"message": translate(lang, key, **kw)}, status)

    async def form(request: Request) -> Any:
        """The parsed form; 403 unless it carries this session's CSRF token. URL-encoded bodies
        (what the pages send) are parsed with the standard library; multipart with Starlette's."""
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            try:
                f: Any = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True,
                                        max_num_fields=200))
            except (UnicodeDecodeError, ValueError):
                raise Denied(error_page(request, 400, "bad_request")) from None
        else:
            f = await request.form(max_files=0, max_fields=200)
        token = f.get("csrf_token")
        if not isinstance(token, str) or not csrf_ok(sess(request).get("csrf"), token):
            raise Denied(error_page(request, 403, "csrf_failed"))
        return f

    def field(f: Any, name: str, limit: int = 200) -> str:
        v = f.get(name, "")
        return v[:limit] if isinstance(v, str) else ""

    def too_many(request: Request, wait: float) -> HTMLResponse:
        r = error_page(request, 429, "too_many", s=int(wait) + 1)
        r.headers["Retry-After"] = str(int(wait) + 1)
        return r

    # --- staff sessions ------------------------------------------------------------------------
    def require(request: Request, role: str) -> R.Actor:
        s = sess(request)
        sid = s.get("sid")
        su = S.session_user(db, sid) if isinstance(sid, str) else None
        if su is None:
            for k in ("sid", "user", "role"):
                s.pop(k, None)
            nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise Denied(RedirectResponse(f"/login?next={quote(_safe_next(nxt) or '/review')}", status_code=303))
        if s.get("user") != su.username or s.get("role") != su.role:  # the header shows the live role
            s["user"], s["role"] = su.username, su.role
        request.scope["kyokan.session_id"] = su.session_id
        actor = R.Actor(su.username, su.role)
        if not actor.at_least(role):
            raise Denied(error_page(request, 403, "forbidden"))
        return actor

    # --- worker binding ------------------------------------------------------------------------
    def bindings(request: Request) -> dict[str, str]:
        b = sess(request).get("workers")
        return {k: v for k, v in b.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(b, dict) else {}

    def bind(request: Request, wid: str, fingerprint: str) -> None:
        b = bindings(request)
        b.pop(wid, None)
        b[wid] = fingerprint
        sess(request)["workers"] = dict(list(b.items())[-5:])

    def unbind(request: Request, wid: str) -> None:
        b = bindings(request)
        if b.pop(wid, None) is not None:
            sess(request)["workers"] = b

    def check_wid(request: Request, wid: str) -> str:
        try:
            return A.check_worker_id(wid)
        except CrowdError:
            raise Denied(error_page(request, 404, "not_found")) from None

    def worker(request: Request, wid: str) -> str:
        """The binding fingerprint, if this browser is bound to the worker id; else a redirect to
        the worker page (which offers to start or to claim it). Rate-limited per worker."""
        check_wid(request, wid)
        fp = bindings(request).get(wid)
        if fp is None:
            raise Denied(RedirectResponse(f"/w/{quote(wid)}", status_code=303))
        wait = limiter.hit(f"req:{wid}", db.config().requests_per_minute)
        if wait:
            raise Denied(too_many(request, wait))
        return fp

    async def verified(request: Request, wid: str) -> str:
        """Like ``worker`` and also checks the binding against the database (a reset key unbinds)."""
        fp = worker(request, wid)
        cur = await run_in_threadpool(A.worker_binding, db, wid)
        if cur is None or cur[0] != fp:
            unbind(request, wid)
            raise Denied(RedirectResponse(f"/w/{quote(wid)}", status_code=303))
        return fp

    def unbound(request: Request, wid: str) -> Response:
        unbind(request, wid)
        return RedirectResponse(f"/w/{quote(wid)}", status_code=303)

    # --- error handlers ------------------------------------------------------------------------
    @on_error(Denied)
    async def _denied(request: Request, exc: Denied) -> Response:
        return exc.response

    @on_error(CrowdError)
    async def _crowd_error(request: Request, exc: CrowdError) -> Response:
        return render(request, "error.html", {"message": str(exc)}, exc.status)

    @on_error(Busy)
    async def _busy(request: Request, exc: Busy) -> Response:
        r = error_page(request, 503, "busy")
        r.headers["Retry-After"] = "2"
        return r

    @on_error(DataError)
    async def _data_error(request: Request, exc: DataError) -> Response:
        # a value the database cannot hold (too long, NUL, out of range) that slipped past the checks
        return error_page(request, 400, "bad_request")

    @on_error(StatementError)
    async def _statement_error(request: Request, exc: StatementError) -> Response:
        if isinstance(exc.orig, OverflowError | ValueError | UnicodeError):
            return error_page(request, 400, "bad_request")
        raise exc

    # --- public --------------------------------------------------------------------------------
    @route("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @route("/")
    async def index(request: Request) -> Response:
        wid = request.query_params.get("worker_id", "").strip()
        if wid:
            check_wid(request, wid)
            return RedirectResponse(f"/w/{quote(wid)}", status_code=303)
        return render(request, "index.html")

    # --- workers -------------------------------------------------------------------------------
    @route("/w/{wid}")
    async def worker_home(request: Request, wid: str) -> Response:
        """Visiting takes nothing and registers nothing: an id is registered when its worker
        starts a task, so visiting someone else's id cannot lock them out."""
        check_wid(request, wid)
        cur = await run_in_threadpool(A.worker_binding, db, wid)
        fp = bindings(request).get(wid)
        prog = await run_in_threadpool(Q.progress, db)
        if cur is None:
            if fp is not None:
                unbind(request, wid)
            if db.config().worker_registration == "invite":
                return error_page(request, 404, "not_invited")
            return render(request, "worker_home.html", {"wid": wid, "summary": None, "progress": prog,
                                                         "blocked": False})
        if fp != cur[0]:
            if fp is not None:
                unbind(request, wid)
            return RedirectResponse(f"/w/{quote(wid)}/claim", status_code=303)
        worker(request, wid)
        summary = await run_in_threadpool(Q.worker_summary, db, wid)
        return render(request, "worker_home.html", {"wid": wid, "summary": summary, "progress": prog,
                                                     "blocked": cur[1]})

    @route("/w/{wid}/claim")
    async def claim_page(request: Request, wid: str) -> Response:
        check_wid(request, wid)
        return render(request, "claim.html", {"wid": wid, "error": None})

    @route("/w/{wid}/claim", ("POST",))
    async def claim(request: Request, wid: str) -> Response:
        check_wid(request, wid)
        f = await form(request)
        # per network only: the key has 60 bits, and a per-id limit would let a stranger lock
        # the real worker out of claiming their own id
        wait = limiter.hit(f"claimip:{client_of(request)}", 30)
        if wait:
            return too_many(request, wait)
        fp = await run_in_threadpool(A.verify_worker_key, db, wid, field(f, "key", 64))
        if fp is None:
            return render(request, "claim.html", {"wid": wid, "error": translate(lang_of(request), "bad_key")}, 403)
        bind(request, wid, fp)
        await run_in_threadpool(_audit, db, f"worker:{wid}", "worker.claim", wid, {"client": client_of(request)})
        return RedirectResponse(f"/w/{quote(wid)}", status_code=303)

    @route("/w/{wid}/mine")
    async def mine(request: Request, wid: str) -> Response:
        await verified(request, wid)
        subs = await run_in_threadpool(Q.worker_submissions, db, wid)
        return render(request, "mine.html", {"wid": wid, "subs": subs})

    @route("/w/{wid}/sub/{uid}")
    async def my_sub(request: Request, wid: str, uid: str) -> Response:
        await verified(request, wid)
        sub = await run_in_threadpool(A.own_submission, db, wid, uid)
        return render(request, "mine.html", {"wid": wid, "subs": [sub]})

    def task_ctx(a: A.Assignment, wid: str, request: Request) -> dict[str, Any]:
        cfg = db.config()
        ping = max(5, min(60, int(min(cfg.first_lease_seconds, cfg.lease_seconds)) // 3))
        keys = sess(request).get("new_key")
        new_key = keys.get(wid) if isinstance(keys, dict) else None
        if new_key is not None:
            rest = {k: v for k, v in keys.items() if k != wid}  # type: ignore[union-attr]
            if rest:
                sess(request)["new_key"] = rest
            else:
                sess(request).pop("new_key", None)
        ctx: dict[str, Any] = {"a": a, "wid": wid, "roles": turn_roles(cfg.exchanges), "values": {}, "error": None,
                               "ping_every": ping, "new_key": new_key}
        if a.kind == "rating":
            ctx.update(_rating_ctx(a.payload))
        return ctx

    def no_task(request: Request, wid: str, kind: str, why: A.NoTask) -> HTMLResponse:
        return render(request, "no_task.html", {"wid": wid, "kind": kind, "why": why},
                      429 if why.reason == "client_limit" else 200)

    @route("/w/{wid}/task/{kind}")
    async def task_page(request: Request, wid: str, kind: str) -> Response:
        """The worker's live task (opening it again extends it); without one, a page to start one.
        A GET never takes a lease (link previews and prefetching cannot reserve items)."""
        check_wid(request, wid)
        A.check_kind(kind)
        if db.config().worker_registration == "open" and wid not in bindings(request):
            cur = await run_in_threadpool(A.worker_binding, db, wid)
            if cur is None:  # a new id: the start page registers it on POST
                has = await run_in_threadpool(A.open_for, db, wid, kind)
                return no_task(request, wid, kind, A.NoTask("not_started" if has else "none_open"))
        fp = worker(request, wid)
        try:
            got = await run_in_threadpool(lambda: A.assign(db, wid, kind, client=client_of(request), binding=fp,
                                                           start=False))
        except CrowdError as e:
            if e.code in ("unbound", "unknown_worker"):
                return unbound(request, wid)
            raise
        if isinstance(got, A.NoTask):
            if got.reason == "not_started" and not await run_in_threadpool(A.open_for, db, wid, kind):
                got = A.NoTask("none_open")
            return no_task(request, wid, kind, got)
        return render(request, f"task_{kind}.html", task_ctx(got, wid, request))

    async def start_task(request: Request, wid: str, kind: str) -> Response:
        cfg = db.config()
        client = client_of(request)
        if wid not in bindings(request):
            cur = await run_in_threadpool(A.worker_binding, db, wid)
            if cur is not None:
                return RedirectResponse(f"/w/{quote(wid)}/claim", status_code=303)
            if cfg.worker_registration == "invite":
                return error_page(request, 404, "not_invited")
            wait = limiter.hit(f"reg:{client}", cfg.registrations_per_minute)
            if wait:
                return too_many(request, wait)
            key = await run_in_threadpool(lambda: A.register_worker(db, wid, client=client))
            if key is None:  # registered by someone else a moment ago
                return RedirectResponse(f"/w/{quote(wid)}/claim", status_code=303)
            cur = await run_in_threadpool(A.worker_binding, db, wid)
            assert cur is not None
            bind(request, wid, cur[0])
            keys = sess(request).get("new_key")
            sess(request)["new_key"] = {**(keys if isinstance(keys, dict) else {}), wid: key}
        fp = worker(request, wid)
        try:
            got = await run_in_threadpool(lambda: A.assign(db, wid, kind, client=client, binding=fp))
        except CrowdError as e:
            if e.code in ("unbound", "unknown_worker"):
                return unbound(request, wid)
            raise
        if isinstance(got, A.NoTask):
            return no_task(request, wid, kind, got)
        return render(request, f"task_{kind}.html", task_ctx(got, wid, request))

    @route("/w/{wid}/task/{kind}", ("POST",))
    async def task_post(request: Request, wid: str, kind: str) -> Response:
        check_wid(request, wid)
        A.check_kind(kind)
        f = await form(request)
        action = field(f, "action", 20)
        if action == "start":
            return await start_task(request, wid, kind)
        fp = worker(request, wid)
        token = field(f, "token", 64)
        try:
            if action == "ping":
                exp = await run_in_threadpool(lambda: A.extend(db, wid, token, binding=fp))
                return JSONResponse({"live": exp is not None, "expires_at": exp}, status_code=200 if exp else 404)
            if action == "skip":
                if not A.valid_token(token):
                    return error_page(request, 404, "not_found")
                await run_in_threadpool(lambda: A.release(db, wid, token, binding=fp))
                flash(request, "skipped_ok")
                return RedirectResponse(f"/w/{quote(wid)}/task/{kind}", status_code=303)
        except CrowdError as e:
            if e.code == "unbound":
                return unbound(request, wid)
            raise
        return await submit_task(request, wid, kind, f, fp, token)

    async def submit_task(request: Request, wid: str, kind: str, f: Any, fp: str, token: str) -> Response:
        cfg = db.config()
        raw, values = _content_from_form(kind, f, cfg.exchanges)
        wait = limiter.hit(f"sub:{wid}", cfg.submits_per_minute) or limiter.hit(
            f"subnet:{client_of(request)}", cfg.submits_per_minute_per_client)
        try:
            if wait:
                raise CrowdError(translate(lang_of(request), "too_many", s=int(wait) + 1), code="rate")
            res = await run_in_threadpool(lambda: A.submit(db, wid, token, raw, binding=fp))
        except CrowdError as e:
            if e.code == "unbound":
                return unbound(request, wid)
            a = await run_in_threadpool(A.assignment_by_token, db, wid, token)
            if a is None or a.kind != kind:
                return error_page(request, 404, "not_found")
            if e.code not in ("rate", "lease_expired", "blocked", "withdrawn", "released", "revoked"):
                # the worker is still at it (fixing a too-short text): that is activity
                await run_in_threadpool(lambda: A.extend(db, wid, token, binding=fp))
            ctx = task_ctx(a, wid, request)
            msg = translate(lang_of(request), e.code) if e.code in (
                "lease_expired", "blocked", "withdrawn", "released", "revoked") else str(e)
            ctx.update(values=values, error=msg, closed=e.code in ("blocked", "withdrawn", "released", "revoked"))
            r = render(request, f"task_{a.kind}.html", ctx, 429 if e.code == "rate" else e.status)
            if wait:
                r.headers["Retry-After"] = str(int(wait) + 1)
            return r
        flash(request, "submitted_ok", uid=res.uid)
        return RedirectResponse(f"/w/{quote(wid)}/task/{kind}", status_code=303)

    # --- login ---------------------------------------------------------------------------------
    @route("/login")
    async def login_page(request: Request) -> Response:
        return render(request, "login.html", {"next": _safe_next(request.query_params.get("next")), "error": None})

    def device_of(request: Request, username: str) -> str | None:
        raw = request.cookies.get(DEVICE_COOKIE)
        d = device_signer.unsign(raw) if raw else None
        if d and d.get("u") == username and isinstance(d.get("d"), str) and len(d["d"]) <= 64:
            return str(d["d"])
        return None

    @route("/login", ("POST",))
    async def login(request: Request) -> Response:
        f = await form(request)
        username = field(f, "username", 100)
        password = field(f, "password", 201)
        nxt = _safe_next(field(f, "next", 600))
        client = client_of(request)
        ok_name = R.valid_username(username)
        device = device_of(request, username) if ok_name else None
        if device:  # a browser that logged in as this user before: only its own failures count
            keys = [f"dev:{device}"]
        elif ok_name:
            keys = [f"ip:{client}", f"ipacct:{client}|{username}", f"acct:{username}"]
        else:
            keys = [f"ip:{client}"]
        wait = await run_in_threadpool(S.throttle_wait, db, keys)
        if wait > 0:
            return too_many(request, wait)
        with in_flight_lock:
            if in_flight.get(client, 0) >= LOGIN_IN_FLIGHT:
                busy = True
            else:
                busy = False
                in_flight[client] = in_flight.get(client, 0) + 1
        if busy:
            return too_many(request, 1)
        try:
            actor = await run_in_threadpool(R.authenticate, db, username, password)
        finally:
            with in_flight_lock:
                in_flight[client] -= 1
                if not in_flight[client]:
                    del in_flight[client]
        if actor is None:
            await run_in_threadpool(S.throttle_fail, db, keys)
            await run_in_threadpool(_audit, db, f"ip:{client}", "login.failed", username if ok_name else "(malformed)", {})
            return render(request, "login.html", {"next": nxt, "error": translate(lang_of(request), "login_failed")}, 401)
        uid = await run_in_threadpool(R.user_id, db, actor.username)
        assert uid is not None
        old = sess(request).get("sid")
        if isinstance(old, str):
            await run_in_threadpool(S.revoke_session, db, old)
        token = await run_in_threadpool(lambda: S.create_session(db, uid, client=client))
        await run_in_threadpool(S.throttle_clear, db, [k for k in keys if k.startswith(("dev:", "ipacct:"))])
        s = sess(request)
        s["sid"], s["user"], s["role"] = token, actor.username, actor.role
        s["csrf"] = new_csrf()  # new token on privilege change
        await run_in_threadpool(_audit, db, actor.label, "login", actor.username, {"client": client})
        r = RedirectResponse(nxt or ("/admin" if actor.at_least("admin") else "/review"), status_code=303)
        dev = device or new_csrf()
        r.set_cookie(DEVICE_COOKIE, device_signer.sign({"u": actor.username, "d": dev}), max_age=DEVICE_DAYS * 86400,
                     path="/login", httponly=True, samesite="strict", secure=secure_cookies)
        return r

    @route("/logout", ("POST",))
    async def logout(request: Request) -> Response:
        await form(request)
        s = sess(request)
        sid = s.get("sid")
        if isinstance(sid, str):
            await run_in_threadpool(S.revoke_session, db, sid)
        for k in ("sid", "user", "role"):
            s.pop(k, None)
        s["csrf"] = new_csrf()
        return RedirectResponse("/login", status_code=303)

    @route("/account")
    async def account(request: Request) -> Response:
        actor = require(request, "reviewer")
        return render(request, "account.html", {"actor": actor, "error": None})

    @route("/account/password", ("POST",))
    async def account_password(request: Request) -> Response:
        f = await form(request)
        actor = require(request, "reviewer")
        new, again = field(f, "new", 201), field(f, "again", 201)
        try:
            if new != again:
                raise CrowdError(translate(lang_of(request), "password_mismatch"))
            n = await run_in_threadpool(lambda: R.change_password(
                db, actor.username, field(f, "current", 201), new, keep_session=request.scope.get("kyokan.session_id")))
        except CrowdError as e:
            return render(request, "account.html", {"actor": actor, "error": str(e)}, e.status)
        flash(request, "password_changed", n=n)
        return RedirectResponse("/account", status_code=303)

    # --- review --------------------------------------------------------------------------------
    @route("/review")
    async def review_list(request: Request) -> Response:
        actor = require(request, "reviewer")
        qp = request.query_params
        kind = qp.get("kind") if qp.get("kind") in KINDS else None
        st = qp.get("status", "pending")
        status = st if st in STATUSES else None
        page = _uint(qp.get("page", "0"), top=MAX_PAGE)
        if page is None:
            return error_page(request, 400, "bad_request")
        rows, total = await run_in_threadpool(
            lambda: Q.review_queue(db, kind=kind, status=status, limit=50, offset=50 * page))
        return render(request, "review_list.html", {"rows": rows, "total": total, "kind": kind, "status": status,
                                                     "page": page, "actor": actor,
                                                     "here": request.url.path + "?" + request.url.query})

    @route("/review/{uid}")
    async def review_detail(request: Request, uid: str) -> Response:
        actor = require(request, "reviewer")
        if not _UID.fullmatch(uid):
            return error_page(request, 404, "not_found")
        d = await run_in_threadpool(Q.submission_detail, db, uid)
        if d is None:
            return error_page(request, 404, "not_found")
        return render(request, "review_detail.html", detail_ctx(d, actor, request))

    def detail_ctx(d: dict[str, Any], actor: R.Actor, request: Request, error: str | None = None) -> dict[str, Any]:
        ctx = {"d": d, "actor": actor, "actions": _actions_for(d["status"], actor), "error": error,
               "next": _safe_next(request.query_params.get("next")) or "",
               "roles": turn_roles(db.config().exchanges)}
        if d["kind"] == "rating":
            ctx.update(_rating_ctx(d.get("payload") or {}))
        return ctx

    @route("/review/{uid}", ("POST",))
    async def review_post(request: Request, uid: str) -> Response:
        f = await form(request)
        actor = require(request, "reviewer")
        if not _UID.fullmatch(uid):
            return error_page(request, 404, "not_found")
        action = field(f, "action", 20)
        version_s = field(f, "version", 20)
        version = _uint(version_s, top=10**9) if version_s else None
        if version_s and version is None:
            return error_page(request, 400, "bad_request")
        note = field(f, "note", 2000)
        nxt = _safe_next(field(f, "next", 600))
        content = None
        kind = field(f, "kind", 20)
        if kind in KINDS and f.get("has_content"):
            content, _ = _content_from_form(kind, f, db.config().exchanges)
        try:
            await run_in_threadpool(
                lambda: R.review(db, actor, uid, None if action in ("", "save") else action, note=note,
                                 content=content, expected_version=version))
        except CrowdError as e:
            d = await run_in_threadpool(Q.submission_detail, db, uid)
            if d is None:
                return error_page(request, 404, "not_found")
            return render(request, "review_detail.html", detail_ctx(d, actor, request, str(e)), e.status)
        flash(request, "done_ok", uid=uid, action=translate(lang_of(request), action or "save_edit"))
        return RedirectResponse(nxt or f"/review/{quote(uid)}", status_code=303)

    # --- admin ---------------------------------------------------------------------------------
    @route("/admin")
    async def admin(request: Request) -> Response:
        actor = require(request, "reviewer")
        prog = await run_in_threadpool(Q.progress, db)
        its = await run_in_threadpool(Q.items, db, None, 2000)
        from kyokan.taxonomy.registry import available

        return render(request, "admin.html", {"progress": prog, "items": its, "actor": actor,
                                               "taxonomies": available()})

    @route("/admin/tasks/{kind}", ("POST",))
    async def admin_tasks(request: Request, kind: str) -> Response:
        from kyokan.taxonomy.registry import available

        f = await form(request)
        actor = require(request, "admin")
        tgt = field(f, "target", 20)
        target = _uint(tgt, top=MAX_TARGET) if tgt else None
        if tgt and not target:
            return error_page(request, 400, "bad_target", top=MAX_TARGET)
        if kind == "situation":
            tax = field(f, "taxonomy", 100) or "goemotions28"
            if tax not in available():  # a name from the list, never a path on the server
                return error_page(request, 400, "bad_taxonomy")
            created = await run_in_threadpool(
                lambda: T.create_situation_tasks(db, taxonomy=tax, target=target, actor=actor.label))
        elif kind == "dialogue":
            created = await run_in_threadpool(
                lambda: T.create_dialogue_tasks(db, target=target, actor=actor.label))
        else:
            return error_page(request, 404, "not_found")
        flash(request, "created_n", n=len(created))
        return RedirectResponse("/admin", status_code=303)

    @route("/admin/workers")
    async def admin_workers(request: Request) -> Response:
        actor = require(request, "lead")
        rows = await run_in_threadpool(Q.workers_table, db)
        return render(request, "workers.html", {"rows": rows, "actor": actor})

    @route("/admin/workers/{wid}/{op}", ("POST",))
    async def admin_worker_op(request: Request, wid: str, op: str) -> Response:
        await form(request)
        actor = require(request, "admin")
        check_wid(request, wid)
        if op == "reset-key":
            key = await run_in_threadpool(A.reset_worker_key, db, wid, actor.label)
            flash(request, "new_key", wid=wid, key=key)
        elif op in ("block", "unblock"):
            await run_in_threadpool(A.set_blocked, db, wid, op == "block", actor.label)
        else:
            return error_page(request, 404, "not_found")
        return RedirectResponse("/admin/workers", status_code=303)

    @route("/admin/audit")
    async def admin_audit(request: Request) -> Response:
        actor = require(request, "lead")
        qp = request.query_params
        view = qp.get("view", "staff")
        if view not in Q.AUDIT_VIEWS:
            return error_page(request, 400, "bad_request")
        page = _uint(qp.get("page", "0"), top=MAX_PAGE)
        if page is None:
            return error_page(request, 400, "bad_request")
        rows, counts = await run_in_threadpool(lambda: Q.audit_page(db, view, limit=200, offset=200 * page))
        return render(request, "audit.html", {"rows": rows, "actor": actor, "view": view, "page": page,
                                               "counts": counts, "views": Q.AUDIT_VIEWS})

    app = Starlette(routes=routes, exception_handlers=handlers,
                    middleware=[Middleware(CrowdMiddleware, signer=signer, db=db, secure=secure_cookies)])
    app.state.db = db
    app.state.limiter = limiter
    return app


# --- form parsing ---------------------------------------------------------------------------
def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _content_from_form(kind: str, f: Any, exchanges: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(content for the service, values to put back into the form on error)."""
    if kind == "situation":
        text = _str(f.get("text", ""))
        return {"text": text}, {"text": text}
    if kind == "dialogue":
        roles = turn_roles(exchanges)
        texts = [_str(f.get(f"turn_{i}", "")) for i in range(len(roles))]
        return ({"turns": [{"role": r, "text": t} for r, t in zip(roles, texts, strict=True)]},
                {f"turn_{i}": t for i, t in enumerate(texts)})
    ratings = {k.removeprefix("rating_"): _str(v) for k, v in f.items() if k.startswith("rating_")}
    comment = _str(f.get("comment", ""))
    return {"ratings": ratings, "comment": comment}, {"ratings": ratings, "comment": comment}


def _rating_ctx(payload: dict[str, Any]) -> dict[str, Any]:
    metrics = metrics_of(payload)
    for m in metrics:
        if m["kind"] == "likert":
            m["points"] = list(range(int(m["min"]), int(m["max"]) + 1))
    return {"metrics": metrics, "rated": rated_items(payload)}


def _actions_for(status: str, actor: R.Actor) -> list[str]:
    return [a for a, (frm, _to, role) in R.ACTIONS.items() if status in frm and actor.at_least(role)]


def _safe_next(nxt: str | None) -> str | None:
    """Only same-site paths of plain URL characters (no open redirect, nothing that could break
    the Location header)."""
    if nxt and _NEXT.fullmatch(nxt) and not nxt.startswith("//"):
        return nxt
    return None


def _audit(db: CrowdDB, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
    from kyokan.crowd.models import AuditEntry

    with db.write() as s:
        s.add(AuditEntry(at=time.time(), actor=actor[:80], action=action, target=target[:200], detail=detail))
