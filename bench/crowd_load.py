"""Load benchmark of `kyokan crowd` (loopback only, bounded): N concurrent simulated workers
(asyncio keep-alive connections parsed with httptools — a lean client, so the load generator
leaves the CPU to the server — each from its own loopback address 127.0.0.N so the per-client
lease bound is real) against `kyokan crowd serve` (uvicorn, one process) on 127.0.0.1, until every slot is
filled. Each operation is what a browser does: press "start" (takes a lease and shows the task)
and submit the form. Checks zero target overshoot, zero lost submissions and zero false "no
tasks" (a "no tasks" answer while the database, read right after it, still had an item with room
for that worker: room only shrinks during the run, so that answer was wrong). Prints throughput
(starts + submissions per second), p50/p99 latencies, overshoot/lost/false-no-task counts for
SQLite and PostgreSQL side by side, per run and as medians over ``--runs``.

    .venv/bin/python bench/crowd_load.py                     # both databases, 50 workers, 2,000 submissions, 3 runs
    .venv/bin/python bench/crowd_load.py --backend sqlite --workers 20 --submissions 500 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
KYOKAN = str(ROOT / ".venv" / "bin" / "kyokan")
TURNS = ["検査の結果が出るまで眠れません。", "待つ時間はつらいですよね。", "悪い結果を想像してしまいます。",
         "そう感じるのは自然なことです。"]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


class Client:
    """One browser: a keep-alive HTTP/1.1 connection from its own loopback address, with cookies."""

    def __init__(self, host: str, port: int, local: str) -> None:
        self.host, self.port, self.local = host, port, local
        self.cookies: dict[str, str] = {}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        import httptools

        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=(self.local, 0))
        body = urlencode(form).encode() if form is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        if form is not None:
            head.append("Content-Type: application/x-www-form-urlencoded")
        if self.cookies:
            head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        chunks: list[bytes] = []
        done = asyncio.Event()
        cookies = self.cookies

        class Proto:
            def on_header(self, name: bytes, value: bytes) -> None:
                if name.lower() == b"set-cookie":
                    k, _, v = value.decode("latin-1").split(";", 1)[0].partition("=")
                    cookies[k.strip()] = v.strip()

            def on_body(self, b: bytes) -> None:
                chunks.append(b)

            def on_message_complete(self) -> None:
                done.set()

        parser = httptools.HttpResponseParser(Proto())
        assert self.reader is not None
        while not done.is_set():
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            parser.feed_data(data)
        return parser.get_status_code(), b"".join(chunks).decode("utf-8", "replace")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] * 1000


def setup_db(url: str, submissions: int, per_item: int) -> None:
    import kyokan.crowd as C

    # production defaults (lease bound 5 per client, short first lease), rate limits out of the way
    cfg = C.CrowdConfig(submits_per_minute=1_000_000, requests_per_minute=1_000_000,
                        registrations_per_minute=1_000_000, submits_per_minute_per_client=1_000_000)
    db = C.init_db(url, config=cfg)
    n_items = submissions // per_item
    C.import_situations(db, [{"id": f"bench-{i:04d}", "emotion": "fear", "lang": "ja",
                              "situation": f"ベンチマーク用の状況 {i}"} for i in range(n_items)])
    C.create_dialogue_tasks(db, target=per_item)
    db.dispose()


class RoomCheck:
    """Reads the database after a "no tasks" answer: is there still an item with room that this
    worker never held?"""

    def __init__(self, url: str) -> None:
        from kyokan.crowd import CrowdDB

        self.db = CrowdDB(url)

    def room_for(self, wid: str) -> int:
        from sqlalchemy import exists, func, select

        from kyokan.crowd.models import Item, Reservation

        with self.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(Item).where(
                Item.closed.is_(False), Item.withdrawn.is_(False), Item.n_submitted + Item.n_reserved < Item.target,
                ~exists().where(Reservation.item_id == Item.id, Reservation.worker_id == wid))) or 0)


async def worker(port: int, i: int, stats: dict[str, Any], deadline: float, check: RoomCheck) -> None:
    wid = f"bench-w{i:03d}"
    c = Client("127.0.0.1", port, f"127.0.{1 + i // 250}.{1 + i % 250}")
    try:
        status, text = await c.request("GET", f"/w/{wid}")
        assert status == 200, (status, text[:300])
        tok = _CSRF.search(text).group(1)  # type: ignore[union-attr]
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            status, text = await c.request("POST", f"/w/{wid}/task/dialogue", {"csrf_token": tok, "action": "start"})
            stats["assign_lat"].append(time.perf_counter() - t0)
            if status != 200:
                stats["errors"].append(f"start {status}")
                return
            m = _TOKEN.search(text)
            if m is None:  # "no tasks": right only if nothing this worker may take has room
                stats["no_task"] += 1
                if await asyncio.to_thread(check.room_for, wid):
                    stats["false_no_task"] += 1
                return
            stats["assignments"] += 1
            tok = _CSRF.search(text).group(1)  # type: ignore[union-attr]
            data = {"csrf_token": tok, "token": m.group(1), "action": "submit"}
            data.update({f"turn_{k}": f"{t}（{wid}）" for k, t in enumerate(TURNS)})
            t0 = time.perf_counter()
            status, _ = await c.request("POST", f"/w/{wid}/task/dialogue", data)
            stats["submit_lat"].append(time.perf_counter() - t0)
            if status == 303:
                stats["accepted"].append(m.group(1))
            else:
                stats["errors"].append(f"submit {status}")
    finally:
        await c.close()


def verify(url: str, accepted: list[str], per_item: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from kyokan.crowd import CrowdDB
    from kyokan.crowd.models import Item, Reservation, Submission

    db = CrowdDB(url)
    with db.read() as s:
        n_sub = s.scalar(select(func.count()).select_from(Submission).where(Submission.source == "crowd")) or 0
        tokens = set(s.scalars(select(Reservation.token).join(Submission, Submission.reservation_id == Reservation.id)))
        overshoot = sum(max(0, n - per_item) for n in s.execute(
            select(func.count()).select_from(Submission).where(Submission.item_id.is_not(None))
            .group_by(Submission.item_id)).scalars())
        bad_counters = s.scalar(select(func.count()).select_from(Item).where(
            Item.n_submitted + Item.n_reserved > Item.target)) or 0
        full = s.scalar(select(func.count()).select_from(Item).where(Item.n_submitted == Item.target)) or 0
        items = s.scalar(select(func.count()).select_from(Item)) or 0
    db.dispose()
    return {"db_submissions": n_sub, "lost": len(set(accepted) - tokens), "unacknowledged": len(tokens - set(accepted)),
            "overshoot": overshoot + bad_counters, "items_full": f"{full}/{items}"}


def _cpu(procs: list[Any]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # a backend that exited
            continue
    return total


def _pg_procs(url: str) -> list[Any]:
    """The PostgreSQL server's processes (postmaster and its backends) listening on the URL's port."""
    import psutil
    from sqlalchemy.engine import make_url

    port = make_url(url).port
    out = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if "postgres" in (p.info["name"] or "") and any(f"-p {port}" in " ".join(p.info["cmdline"] or [])
                                                            for _ in [0]):
                out.append(p)
                out.extend(p.children(recursive=True))
        except Exception:
            continue
    return out


def run(backend: str, url: str, workers: int, submissions: int, per_item: int, time_limit: float) -> dict[str, Any]:
    import psutil

    setup_db(url, submissions, per_item)
    from kyokan.crowd.pgtemp import free_port, wait_port

    port = free_port()
    env = dict(os.environ, KYOKAN_CROWD_SECRET=secrets.token_urlsafe(32))
    srv = subprocess.Popen([KYOKAN, "crowd", "serve", "--db", url, "--host", "127.0.0.1", "--port", str(port)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    check = RoomCheck(url)
    try:
        wait_port("127.0.0.1", port, 60)
        stats: dict[str, Any] = {"assign_lat": [], "submit_lat": [], "accepted": [], "errors": [], "assignments": 0,
                                 "no_task": 0, "false_no_task": 0}
        deadline = time.monotonic() + time_limit
        server = psutil.Process(srv.pid)
        pg = _pg_procs(url) if backend == "postgresql" else []
        cpu0 = (_cpu([server]), _cpu(pg), time.process_time())

        async def main() -> float:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(port, i, stats, deadline, check) for i in range(workers)))
            return time.perf_counter() - t0

        wall = asyncio.run(main())
        pg = _pg_procs(url) if backend == "postgresql" else []  # backends opened during the run
        cpu1 = (_cpu([server]), _cpu(pg), time.process_time())
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait(timeout=30)
        check.db.dispose()
    ops = stats["assignments"] + len(stats["accepted"])
    res = {"backend": backend, "workers": workers, "target_slots": submissions, "wall_s": round(wall, 2),
           "assignments": stats["assignments"], "submissions": len(stats["accepted"]),
           "ops_per_s": round(ops / wall, 1),
           "assign_p50_ms": round(pct(stats["assign_lat"], 0.5), 1), "assign_p99_ms": round(pct(stats["assign_lat"], 0.99), 1),
           "submit_p50_ms": round(pct(stats["submit_lat"], 0.5), 1), "submit_p99_ms": round(pct(stats["submit_lat"], 0.99), 1),
           "all_p99_ms": round(pct(stats["assign_lat"] + stats["submit_lat"], 0.99), 1),
           "no_task": stats["no_task"], "false_no_task": stats["false_no_task"],
           # CPU per operation: seconds of work, not of waiting, so comparable on a loaded machine
           "server_cpu_ms_per_op": round(1000 * (cpu1[0] - cpu0[0]) / max(ops, 1), 2),
           "db_cpu_ms_per_op": round(1000 * (cpu1[1] - cpu0[1]) / max(ops, 1), 2) if backend == "postgresql" else None,
           "client_cpu_ms_per_op": round(1000 * (cpu1[2] - cpu0[2]) / max(ops, 1), 2),
           "errors": len(stats["errors"]), "error_kinds": sorted(set(stats["errors"]))[:5]}
    res.update(verify(url, stats["accepted"], per_item))
    res["ok"] = (res["overshoot"] == 0 and res["lost"] == 0 and res["unacknowledged"] == 0
                 and res["false_no_task"] == 0 and res["submissions"] == submissions == res["db_submissions"])
    return res


ROWS = [("ops/s", "ops_per_s"), ("server CPU ms/op", "server_cpu_ms_per_op"), ("db CPU ms/op", "db_cpu_ms_per_op"),
        ("client CPU ms/op", "client_cpu_ms_per_op"), ("start p50 ms", "assign_p50_ms"), ("start p99 ms", "assign_p99_ms"),
        ("submit p50 ms", "submit_p50_ms"), ("submit p99 ms", "submit_p99_ms"), ("submissions", "submissions"),
        ("overshoot", "overshoot"), ("lost", "lost"), ("false no-tasks", "false_no_task"), ("errors", "errors")]


def table(results: list[dict[str, Any]], runs: int) -> str:
    backends = list(dict.fromkeys(r["backend"] for r in results))
    lines = [f"{'':16}" + "".join(f"{b:>24}" for b in backends)]
    for label, key in ROWS:
        cells = []
        for b in backends:
            xs = [r[key] for r in results if r["backend"] == b]
            if any(x is None for x in xs):
                cells.append("-")
                continue
            med = statistics.median(xs)
            cells.append(f"{med:g}")
        lines.append(f"{label:16}" + "".join(f"{c:>24}" for c in cells))
    if runs > 1:
        for b in backends:
            lines.append(f"ops/s per run, {b}: " + ", ".join(f"{r['ops_per_s']:g}" for r in results if r["backend"] == b))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--workers", type=int, default=50)
    ap.add_argument("--submissions", type=int, default=2000)
    ap.add_argument("--per-item", type=int, default=20, help="target per item (items = submissions / per-item)")
    ap.add_argument("--runs", type=int, default=3, help="runs per database (medians are reported)")
    ap.add_argument("--time-limit", type=float, default=180.0, help="stop the clients after this many seconds")
    ap.add_argument("--pg-no-fsync", action="store_true", help="PostgreSQL with fsync off (to see the disk's share)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    load0 = os.getloadavg()
    results = []
    for _ in range(a.runs):  # interleaved, so both databases see the same background load
        if a.backend in ("sqlite", "both"):
            with tempfile.TemporaryDirectory() as d:
                results.append(run("sqlite", str(Path(d) / "bench.db"), a.workers, a.submissions, a.per_item, a.time_limit))
        if a.backend in ("postgres", "both"):
            from kyokan.crowd.pgtemp import TempPostgres

            with TempPostgres(fsync=not a.pg_no_fsync) as pg:  # durable settings (fsync on) by default
                results.append(run("postgresql", pg.create_database(), a.workers, a.submissions, a.per_item,
                                   a.time_limit))
    load1 = os.getloadavg()
    if a.json:
        print(json.dumps({"runs": results, "loadavg_before": load0, "loadavg_after": load1}, indent=2))
    else:
        for r in results:
            print(f"[{r['backend']}] {r['workers']} workers, {r['submissions']}/{r['target_slots']} submissions "
                  f"+ {r['assignments']} starts in {r['wall_s']} s = {r['ops_per_s']} ops/s; overshoot {r['overshoot']}, "
                  f"lost {r['lost']}, false no-tasks {r['false_no_task']}, errors {r['errors']} {r['error_kinds']}; "
                  f"items full {r['items_full']}; {'OK' if r['ok'] else 'FAILED'}")
        print(f"\nmedians of {a.runs} run(s), {a.workers} workers, {a.submissions} slots; "
              f"load average {load0[0]:.1f} → {load1[0]:.1f} on {os.cpu_count()} cores"
              + (" (loaded: other work shares the machine)" if max(load0[0], load1[0]) > 1.5 else ""))
        print(table(results, a.runs))
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
