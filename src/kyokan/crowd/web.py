"""The web app: server-rendered pages for workers (no login; platform worker id in the URL,
bound to the browser on first use), reviewers, leads and admins (password login).

Security: every POST carries the session's CSRF token; every page is rendered with Jinja2
autoescaping; bodies are size-limited before parsing; workers and logins are rate-limited;
a worker can only see their own submissions; the signing key comes from the environment.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kyokan.crowd import assignment as A
from kyokan.crowd import queries as Q
from kyokan.crowd import reviewing as R
from kyokan.crowd import tasks as T
from kyokan.crowd.content import metrics_of, rated_items, turn_roles
from kyokan.crowd.db import CrowdDB
from kyokan.crowd.errors import CrowdError
from kyokan.crowd.i18n import LANGS, translate
from kyokan.crowd.models import KINDS, STATUSES
from kyokan.crowd.security import RateLimiter, Signer, csrf_ok, new_csrf, secret_from_env

HERE = Path(__file__).parent
COOKIE = "kyokan_crowd"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; style-src 'self'; img-src 'self' data:; script-src 'none'; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"cache-control", b"no-store"),
]


class CrowdMiddleware:
    """Session cookie (signed), body size limit, security headers — as plain ASGI, so it adds
    almost nothing per request."""

    def __init__(self, app: ASGIApp, *, signer: Signer, db: CrowdDB, secure: bool) -> None:
        self.app, self.signer, self.db, self.secure = app, signer, db, secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if scope["method"] in ("POST", "PUT", "PATCH"):
            limit = self.db.config().max_body_bytes
            cl = headers.get(b"content-length")
            if cl is None:
                await PlainTextResponse("Length Required", status_code=411)(scope, receive, send)
                return
            try:
                n = int(cl)
            except ValueError:
                n = limit + 1
            if n > limit:
                await PlainTextResponse("Request Entity Too Large", status_code=413)(scope, receive, send)
                return
        session: dict[str, Any] | None = None
        raw = _cookie(headers.get(b"cookie", b"").decode("latin-1"), COOKIE)
        if raw:
            session = self.signer.unsign(raw)
        if session is None:
            session = {}
        if not session.get("csrf"):
            session["csrf"] = new_csrf()
        before = json.dumps(session, sort_keys=True) if raw else ""
        scope["session"] = session

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                hdrs = list(message.get("headers", []))
                hdrs.extend(SECURITY_HEADERS)
                after = json.dumps(scope["session"], sort_keys=True)
                if after != before:
                    val = f"{COOKIE}={self.signer.sign(scope['session'])}; Path=/; HttpOnly; SameSite=Lax; Max-Age={self.signer.max_age}"
                    if self.secure:
                        val += "; Secure"
                    hdrs.append((b"set-cookie", val.encode("latin-1")))
                message["headers"] = hdrs
            await send(message)

        await self.app(scope, receive, send_wrapped)


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

    return get_taxonomy(name)


def create_app(db: CrowdDB | str, *, secret: bytes | None = None, dev: bool = False,
               secure_cookies: bool = False) -> FastAPI:
    """The ASGI app. ``secret`` defaults to ``KYOKAN_CROWD_SECRET`` from the environment."""
    if not isinstance(db, CrowdDB):
        db = CrowdDB(db)
    db.require_schema()
    signer = Signer(secret if secret is not None else secret_from_env(dev=dev))
    limiter = RateLimiter()
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True), auto_reload=False)
    env.filters["fmt_time"] = lambda t: time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else ""
    env.filters["pct"] = lambda x: f"{100 * float(x):.0f}%"

    app = FastAPI(title="kyokan crowd", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db = db
    app.state.limiter = limiter
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(CrowdMiddleware, signer=signer, db=db, secure=secure_cookies)

    # --- helpers -------------------------------------------------------------------------------
    def sess(request: Request) -> dict[str, Any]:
        return request.scope["session"]  # type: ignore[no-any-return]

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
        sess(request).setdefault("flash", []).append([msg, kw])

    def emo_name(emotion: str | None, lang: str, taxonomy: str = "goemotions28") -> str:
        if not emotion:
            return ""
        try:
            return str(_taxonomy(taxonomy).label(emotion).name(lang))
        except (KeyError, Exception):
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
            "flashes": [translate(lang, k, **kw) for k, kw in flashes],
            "switch_url": f"{here}?{urlencode(qs)}", "cfg": db.config(), "kinds": KINDS,
            "statuses": STATUSES,
        }
        c.update(ctx or {})
        return HTMLResponse(env.get_template(name).render(**c), status_code=status)

    def error_page(request: Request, status: int, key: str, **kw: Any) -> HTMLResponse:
        lang = lang_of(request)
        return render(request, "error.html", {"message": translate(lang, key, **kw)}, status)

    async def form(request: Request) -> Any:
        """The parsed form; 403 unless it carries this session's CSRF token."""
        f = await request.form(max_files=0, max_fields=200)
        if not csrf_ok(sess(request).get("csrf"), f.get("csrf_token")):  # type: ignore[arg-type]
            raise Denied(error_page(request, 403, "csrf_failed"))
        return f

    def client_ip(request: Request) -> str:
        return request.client.host if request.client else "?"

    def require(request: Request, role: str) -> R.Actor:
        s = sess(request)
        name = s.get("user")
        actor = R.get_actor(db, name) if name else None
        if actor is None:
            if name:
                s.pop("user", None)
                s.pop("role", None)
            nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise Denied(RedirectResponse(f"/login?next={quote(nxt)}", status_code=303))
        if not actor.at_least(role):
            raise Denied(error_page(request, 403, "forbidden"))
        return actor

    def worker(request: Request, wid: str) -> str:
        """The worker id, if this browser is bound to it; else a redirect to claim it."""
        try:
            A.check_worker_id(wid)
        except CrowdError:
            raise Denied(error_page(request, 404, "not_found")) from None
        if wid not in sess(request).get("workers", []):
            raise Denied(RedirectResponse(f"/w/{quote(wid)}", status_code=303))
        wait = limiter.hit(f"req:{wid}", db.config().requests_per_minute)
        if wait:
            raise Denied(too_many(request, wait))
        return wid

    def too_many(request: Request, wait: float) -> HTMLResponse:
        r = error_page(request, 429, "too_many", s=int(wait) + 1)
        r.headers["Retry-After"] = str(int(wait) + 1)
        return r

    @app.exception_handler(Denied)
    async def _denied(request: Request, exc: Denied) -> Response:
        return exc.response

    @app.exception_handler(CrowdError)
    async def _crowd_error(request: Request, exc: CrowdError) -> Response:
        return render(request, "error.html", {"message": str(exc)}, exc.status)

    # --- public --------------------------------------------------------------------------------
    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"ok": True})

    @app.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        wid = request.query_params.get("worker_id", "").strip()
        if wid:
            return RedirectResponse(f"/w/{quote(wid)}", status_code=303)
        return render(request, "index.html")

    # --- workers -------------------------------------------------------------------------------
    @app.get("/w/{wid}", response_class=HTMLResponse)
    async def worker_home(request: Request, wid: str) -> Response:
        try:
            A.check_worker_id(wid)
        except CrowdError:
            return error_page(request, 404, "not_found")
        s = sess(request)
        bound = s.get("workers", [])
        new_key = None
        if wid not in bound:
            wait = limiter.hit(f"reg:{client_ip(request)}", db.config().registrations_per_minute)
            if wait:
                return too_many(request, wait)
            new_key = await run_in_threadpool(A.register_worker, db, wid)
            if new_key is None:
                return RedirectResponse(f"/w/{quote(wid)}/claim", status_code=303)
            s["workers"] = [*bound, wid][-5:]
        worker(request, wid)
        summary = await run_in_threadpool(Q.worker_summary, db, wid)
        prog = await run_in_threadpool(Q.progress, db)
        return render(request, "worker_home.html", {"wid": wid, "summary": summary, "progress": prog,
                                                     "new_key": new_key})

    @app.get("/w/{wid}/claim", response_class=HTMLResponse)
    async def claim_page(request: Request, wid: str) -> Response:
        return render(request, "claim.html", {"wid": wid, "error": None})

    @app.post("/w/{wid}/claim", response_class=HTMLResponse)
    async def claim(request: Request, wid: str) -> Response:
        f = await form(request)
        wait = limiter.hit(f"claim:{wid}", 10) or limiter.hit(f"claimip:{client_ip(request)}", 30)
        if wait:
            return too_many(request, wait)
        ok = await run_in_threadpool(A.verify_worker_key, db, wid, str(f.get("key", ""))[:64])
        if not ok:
            return render(request, "claim.html", {"wid": wid, "error": translate(lang_of(request), "bad_key")}, 403)
        s = sess(request)
        s["workers"] = [*[w for w in s.get("workers", []) if w != wid], wid][-5:]
        return RedirectResponse(f"/w/{quote(wid)}", status_code=303)

    @app.get("/w/{wid}/mine", response_class=HTMLResponse)
    async def mine(request: Request, wid: str) -> Response:
        worker(request, wid)
        subs = await run_in_threadpool(Q.worker_submissions, db, wid)
        return render(request, "mine.html", {"wid": wid, "subs": subs})

    @app.get("/w/{wid}/sub/{uid}", response_class=HTMLResponse)
    async def my_sub(request: Request, wid: str, uid: str) -> Response:
        worker(request, wid)
        sub = await run_in_threadpool(A.own_submission, db, wid, uid)
        return render(request, "mine.html", {"wid": wid, "subs": [sub]})

    def task_ctx(a: A.Assignment, wid: str) -> dict[str, Any]:
        cfg = db.config()
        ctx: dict[str, Any] = {"a": a, "wid": wid, "roles": turn_roles(cfg.exchanges), "values": {}, "error": None}
        if a.kind == "rating":
            ctx.update(_rating_ctx(a.payload))
        return ctx

    @app.get("/w/{wid}/task/{kind}", response_class=HTMLResponse)
    async def task_page(request: Request, wid: str, kind: str) -> Response:
        worker(request, wid)
        A.check_kind(kind)
        got = await run_in_threadpool(A.assign, db, wid, kind)
        if isinstance(got, A.NoTask):
            return render(request, "no_task.html", {"wid": wid, "kind": kind, "why": got})
        return render(request, f"task_{kind}.html", task_ctx(got, wid))

    @app.post("/w/{wid}/task/{kind}", response_class=HTMLResponse)
    async def task_submit(request: Request, wid: str, kind: str) -> Response:
        f = await form(request)
        worker(request, wid)
        A.check_kind(kind)
        token = str(f.get("token", ""))[:64]
        if f.get("action") == "skip":
            await run_in_threadpool(A.release, db, wid, token)
            flash(request, "skipped_ok")
            return RedirectResponse(f"/w/{quote(wid)}/task/{kind}", status_code=303)
        raw, values = _content_from_form(kind, f, db.config().exchanges)
        wait = limiter.hit(f"sub:{wid}", db.config().submits_per_minute)
        try:
            if wait:
                raise CrowdError(translate(lang_of(request), "too_many", s=int(wait) + 1), code="rate")
            res = await run_in_threadpool(A.submit, db, wid, token, raw)
        except CrowdError as e:
            a = await run_in_threadpool(A.assignment_by_token, db, wid, token)
            if a is None:
                return error_page(request, 404, "not_found")
            ctx = task_ctx(a, wid)
            msg = translate(lang_of(request), "lease_expired") if e.code == "lease_expired" else str(e)
            ctx.update(values=values, error=msg)
            r = render(request, f"task_{a.kind}.html", ctx, 429 if e.code == "rate" else e.status)
            if wait:
                r.headers["Retry-After"] = str(int(wait) + 1)
            return r
        flash(request, "submitted_ok", uid=res.uid)
        return RedirectResponse(f"/w/{quote(wid)}/task/{kind}", status_code=303)

    # --- login ---------------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> Response:
        return render(request, "login.html", {"next": _safe_next(request.query_params.get("next")), "error": None})

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        f = await form(request)
        username = str(f.get("username", ""))[:64]
        nxt = _safe_next(str(f.get("next", "")))
        wait = limiter.hit(f"login:{client_ip(request)}", 20) or limiter.hit(f"loginu:{username}", 10)
        if wait:
            return too_many(request, wait)
        actor = await run_in_threadpool(R.authenticate, db, username, str(f.get("password", ""))[:200])
        if actor is None:
            await run_in_threadpool(_audit, db, f"ip:{client_ip(request)}", "login.failed", username)
            return render(request, "login.html", {"next": nxt, "error": translate(lang_of(request), "login_failed")}, 401)
        s = sess(request)
        s["user"], s["role"] = actor.username, actor.role
        s["csrf"] = new_csrf()  # new token on privilege change
        await run_in_threadpool(_audit, db, actor.label, "login", actor.username)
        return RedirectResponse(nxt or ("/admin" if actor.at_least("admin") else "/review"), status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await form(request)
        s = sess(request)
        s.pop("user", None)
        s.pop("role", None)
        s["csrf"] = new_csrf()
        return RedirectResponse("/login", status_code=303)

    # --- review --------------------------------------------------------------------------------
    @app.get("/review", response_class=HTMLResponse)
    async def review_list(request: Request) -> Response:
        actor = require(request, "reviewer")
        qp = request.query_params
        kind = qp.get("kind") if qp.get("kind") in KINDS else None
        st = qp.get("status", "pending")
        status = st if st in STATUSES else None
        page = max(0, int(qp.get("page", "0")) if qp.get("page", "0").isdigit() else 0)
        rows, total = await run_in_threadpool(
            lambda: Q.review_queue(db, kind=kind, status=status, limit=50, offset=50 * page))
        return render(request, "review_list.html", {"rows": rows, "total": total, "kind": kind, "status": status,
                                                     "page": page, "actor": actor,
                                                     "here": request.url.path + "?" + request.url.query})

    @app.get("/review/{uid}", response_class=HTMLResponse)
    async def review_detail(request: Request, uid: str) -> Response:
        actor = require(request, "reviewer")
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

    @app.post("/review/{uid}", response_class=HTMLResponse)
    async def review_post(request: Request, uid: str) -> Response:
        f = await form(request)
        actor = require(request, "reviewer")
        action = str(f.get("action", ""))
        version = str(f.get("version", ""))
        note = str(f.get("note", ""))[:2000]
        nxt = _safe_next(str(f.get("next", "")))
        content = None
        kind = str(f.get("kind", ""))
        if kind in KINDS and f.get("has_content"):
            content, _ = _content_from_form(kind, f, db.config().exchanges)
        try:
            await run_in_threadpool(
                lambda: R.review(db, actor, uid, None if action in ("", "save") else action, note=note,
                                 content=content, expected_version=int(version) if version.isdigit() else None))
        except CrowdError as e:
            d = await run_in_threadpool(Q.submission_detail, db, uid)
            if d is None:
                return error_page(request, 404, "not_found")
            return render(request, "review_detail.html", detail_ctx(d, actor, request, str(e)), e.status)
        flash(request, "done_ok", uid=uid, action=translate(lang_of(request), action or "save_edit"))
        return RedirectResponse(nxt or f"/review/{quote(uid)}", status_code=303)

    # --- admin ---------------------------------------------------------------------------------
    @app.get("/admin", response_class=HTMLResponse)
    async def admin(request: Request) -> Response:
        actor = require(request, "reviewer")
        prog = await run_in_threadpool(Q.progress, db)
        its = await run_in_threadpool(Q.items, db, None, 2000)
        from kyokan.taxonomy.registry import available

        return render(request, "admin.html", {"progress": prog, "items": its, "actor": actor,
                                               "taxonomies": available()})

    @app.post("/admin/tasks/{kind}", response_class=HTMLResponse)
    async def admin_tasks(request: Request, kind: str) -> Response:
        f = await form(request)
        actor = require(request, "admin")
        tgt = str(f.get("target", ""))
        target = int(tgt) if tgt.isdigit() and int(tgt) > 0 else None
        if kind == "situation":
            tax = str(f.get("taxonomy", "goemotions28"))
            created = await run_in_threadpool(
                lambda: T.create_situation_tasks(db, taxonomy=tax, target=target, actor=actor.label))
        elif kind == "dialogue":
            created = await run_in_threadpool(
                lambda: T.create_dialogue_tasks(db, target=target, actor=actor.label))
        else:
            return error_page(request, 404, "not_found")
        flash(request, "created_n", n=len(created))
        return RedirectResponse("/admin", status_code=303)

    @app.get("/admin/workers", response_class=HTMLResponse)
    async def admin_workers(request: Request) -> Response:
        actor = require(request, "lead")
        rows = await run_in_threadpool(Q.workers_table, db)
        return render(request, "workers.html", {"rows": rows, "actor": actor})

    @app.post("/admin/workers/{wid}/{op}", response_class=HTMLResponse)
    async def admin_worker_op(request: Request, wid: str, op: str) -> Response:
        await form(request)
        actor = require(request, "admin")
        if op == "reset-key":
            key = await run_in_threadpool(A.reset_worker_key, db, wid, actor.label)
            flash(request, "new_key", wid=wid, key=key)
        elif op in ("block", "unblock"):
            await run_in_threadpool(_set_blocked, db, wid, op == "block", actor.label)
        else:
            return error_page(request, 404, "not_found")
        return RedirectResponse("/admin/workers", status_code=303)

    @app.get("/admin/audit", response_class=HTMLResponse)
    async def admin_audit(request: Request) -> Response:
        actor = require(request, "lead")
        rows = await run_in_threadpool(Q.audit_log, db, 300)
        return render(request, "audit.html", {"rows": rows, "actor": actor})

    return app


# --- form parsing ---------------------------------------------------------------------------
def _content_from_form(kind: str, f: Any, exchanges: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(content for the service, values to put back into the form on error)."""
    if kind == "situation":
        text = str(f.get("text", ""))
        return {"text": text}, {"text": text}
    if kind == "dialogue":
        roles = turn_roles(exchanges)
        texts = [str(f.get(f"turn_{i}", "")) for i in range(len(roles))]
        return ({"turns": [{"role": r, "text": t} for r, t in zip(roles, texts, strict=True)]},
                {f"turn_{i}": t for i, t in enumerate(texts)})
    ratings = {k.removeprefix("rating_"): str(v) for k, v in f.items() if k.startswith("rating_")}
    comment = str(f.get("comment", ""))
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
    """Only same-site paths (no open redirect)."""
    if nxt and nxt.startswith("/") and not nxt.startswith("//") and "\\" not in nxt:
        return nxt
    return None


def _audit(db: CrowdDB, actor: str, action: str, target: str) -> None:
    from kyokan.crowd.models import AuditEntry

    with db.write() as s:
        s.add(AuditEntry(at=time.time(), actor=actor, action=action, target=target[:200], detail={}))


def _set_blocked(db: CrowdDB, wid: str, blocked: bool, actor: str) -> None:
    from kyokan.crowd.models import AuditEntry, Worker

    with db.write() as s:
        w = s.get(Worker, wid)
        if w is None:
            raise CrowdError(f"no worker {wid!r}")
        w.blocked = blocked
        s.add(AuditEntry(at=time.time(), actor=actor, action="worker.block" if blocked else "worker.unblock",
                         target=wid, detail={}))
