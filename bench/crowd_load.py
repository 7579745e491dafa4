"""Load benchmark of `kyokan crowd` (loopback only, bounded): N concurrent simulated workers
(asyncio + httpx) against `kyokan crowd serve` (uvicorn, one process) on 127.0.0.1, until every
slot is filled. Checks zero target overshoot and zero lost submissions, prints throughput
(assignments + submissions per second) and p50/p99 latencies, on SQLite and PostgreSQL.

    .venv/bin/python bench/crowd_load.py                  # both databases, 50 workers, 2,000 submissions
    .venv/bin/python bench/crowd_load.py --backend sqlite --workers 20 --submissions 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
KYOKAN = str(ROOT / ".venv" / "bin" / "kyokan")
TURNS = ["検査の結果が出るまで眠れません。", "待つ時間はつらいですよね。", "悪い結果を想像してしまいます。",
         "そう感じるのは自然なことです。"]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] * 1000


def setup_db(url: str, submissions: int, per_item: int) -> None:
    import kyokan.crowd as C

    cfg = C.CrowdConfig(submits_per_minute=1_000_000, requests_per_minute=1_000_000,
                        registrations_per_minute=1_000_000)
    db = C.init_db(url, config=cfg)
    n_items = submissions // per_item
    C.import_situations(db, [{"id": f"bench-{i:04d}", "emotion": "fear", "lang": "ja",
                              "situation": f"ベンチマーク用の状況 {i}"} for i in range(n_items)])
    C.create_dialogue_tasks(db, target=per_item)
    db.dispose()


async def worker(base: str, wid: str, stats: dict[str, Any], deadline: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False) as c:
        r = await c.get(f"/w/{wid}")
        r.raise_for_status()
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            page = await c.get(f"/w/{wid}/task/dialogue")
            stats["assign_lat"].append(time.perf_counter() - t0)
            if page.status_code != 200:
                stats["errors"].append(f"GET {page.status_code}")
                return
            m = _TOKEN.search(page.text)
            if m is None:  # "no tasks": everything this worker may take is full
                stats["no_task"] += 1
                return
            stats["assignments"] += 1
            data = {"csrf_token": _CSRF.search(page.text).group(1), "token": m.group(1), "action": "submit"}  # type: ignore[union-attr]
            data.update({f"turn_{i}": f"{t}（{wid}）" for i, t in enumerate(TURNS)})
            t0 = time.perf_counter()
            r = await c.post(f"/w/{wid}/task/dialogue", data=data)
            stats["submit_lat"].append(time.perf_counter() - t0)
            if r.status_code == 303:
                stats["accepted"].append(m.group(1))
            else:
                stats["errors"].append(f"POST {r.status_code}")


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


def run(backend: str, url: str, workers: int, submissions: int, per_item: int, time_limit: float) -> dict[str, Any]:
    setup_db(url, submissions, per_item)
    from kyokan.crowd.pgtemp import free_port, wait_port

    port = free_port()
    env = dict(os.environ, KYOKAN_CROWD_SECRET=secrets.token_urlsafe(32))
    srv = subprocess.Popen([KYOKAN, "crowd", "serve", "--db", url, "--host", "127.0.0.1", "--port", str(port)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_port("127.0.0.1", port, 30)
        stats: dict[str, Any] = {"assign_lat": [], "submit_lat": [], "accepted": [], "errors": [], "assignments": 0,
                                 "no_task": 0}
        deadline = time.monotonic() + time_limit

        async def main() -> float:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(f"http://127.0.0.1:{port}", f"bench-w{i:03d}", stats, deadline)
                                   for i in range(workers)))
            return time.perf_counter() - t0

        wall = asyncio.run(main())
    finally:
        os.killpg(srv.pid, signal.SIGTERM)
        srv.wait(timeout=20)
    ops = stats["assignments"] + len(stats["accepted"])
    res = {"backend": backend, "workers": workers, "target_slots": submissions, "wall_s": round(wall, 2),
           "assignments": stats["assignments"], "submissions": len(stats["accepted"]),
           "ops_per_s": round(ops / wall, 1),
           "assign_p50_ms": round(pct(stats["assign_lat"], 0.5), 1), "assign_p99_ms": round(pct(stats["assign_lat"], 0.99), 1),
           "submit_p50_ms": round(pct(stats["submit_lat"], 0.5), 1), "submit_p99_ms": round(pct(stats["submit_lat"], 0.99), 1),
           "all_p99_ms": round(pct(stats["assign_lat"] + stats["submit_lat"], 0.99), 1),
           "errors": len(stats["errors"]), "error_kinds": sorted(set(stats["errors"]))[:5]}
    res.update(verify(url, stats["accepted"], per_item))
    res["ok"] = (res["overshoot"] == 0 and res["lost"] == 0 and res["unacknowledged"] == 0
                 and res["submissions"] == submissions == res["db_submissions"])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--workers", type=int, default=50)
    ap.add_argument("--submissions", type=int, default=2000)
    ap.add_argument("--per-item", type=int, default=20, help="target per item (items = submissions / per-item)")
    ap.add_argument("--time-limit", type=float, default=120.0, help="stop the clients after this many seconds")
    ap.add_argument("--pg-no-fsync", action="store_true", help="PostgreSQL with fsync off (to see the disk's share)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    results = []
    if a.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            results.append(run("sqlite", str(Path(d) / "bench.db"), a.workers, a.submissions, a.per_item, a.time_limit))
    if a.backend in ("postgres", "both"):
        from kyokan.crowd.pgtemp import TempPostgres

        with TempPostgres(fsync=not a.pg_no_fsync) as pg:  # durable settings (fsync on) by default
            results.append(run("postgresql", pg.create_database(), a.workers, a.submissions, a.per_item, a.time_limit))
    if a.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"[{r['backend']}] {r['workers']} workers, {r['submissions']}/{r['target_slots']} submissions "
                  f"+ {r['assignments']} assignments in {r['wall_s']} s = {r['ops_per_s']} ops/s; "
                  f"assign p50/p99 {r['assign_p50_ms']}/{r['assign_p99_ms']} ms, submit p50/p99 "
                  f"{r['submit_p50_ms']}/{r['submit_p99_ms']} ms; overshoot {r['overshoot']}, lost {r['lost']}, "
                  f"unacknowledged {r['unacknowledged']}, errors {r['errors']} {r['error_kinds']}; "
                  f"items full {r['items_full']}; {'OK' if r['ok'] else 'FAILED'}")
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
