"""End to end in a real browser (Playwright driving Debian's chromium), on SQLite and
PostgreSQL: one worker writes a situation, a reviewer approves it and opens round 2, another
worker writes a dialogue, the reviewer approves it, and the export is valid kyokan data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import kyokan.crowd as C
from crowd_util import BACKENDS, DIALOGUE, PASSWORD, SECRET, LiveServer, new_db
from kyokan.data import validate_path
from kyokan.taxonomy import get_taxonomy

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


def _expiry(db: C.CrowdDB, wid: str) -> float:
    from sqlalchemy import select

    from kyokan.crowd.models import Reservation

    with db.read() as s:
        return float(s.scalars(select(Reservation.expires_at).where(Reservation.worker_id == wid,
                                                                    Reservation.status == "active")).one())


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_rounds_and_review_in_a_browser(backend: str, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    # a 15 s first lease: the page pings every 5 s while the worker types
    db = new_db(backend, tmp_path, first_lease_seconds=15)
    C.create_situation_tasks(db, target=1, emotions=["fear"])
    C.add_user(db, "lead", PASSWORD, "admin")
    app = C.create_app(db, secret=SECRET.encode())
    with LiveServer(app) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            # round 1: worker A writes a situation
            a = browser.new_context(locale="ja-JP").new_page()
            a.goto(srv.url + "/w/worker-a")
            expect(a.locator("#new-worker")).to_be_visible()  # visiting registers nothing
            a.click("#start-situation")  # starting does: the key is shown once, on the task
            expect(a.locator("#recovery-key")).to_be_visible()
            expect(a.locator("#emotion")).to_have_text(get_taxonomy("goemotions28").label("fear").ja)
            a.fill("#text", "夜中に胸が苦しくなり、救急車を呼ぶべきか迷って怖かった。")
            # the heartbeat extends the short first lease while the worker types
            before = _expiry(db, "worker-a")
            a.wait_for_timeout(600)
            a.type("#text", "本当に")
            expect(a.locator("#deadline")).to_have_attribute("data-live", "1", timeout=15_000)
            assert _expiry(db, "worker-a") > before
            a.click("#submit")
            expect(a.locator(".flash")).to_contain_text("送信しました")
            expect(a.locator("#no-task")).to_be_visible()  # target 1 reached: the item closed

            # review: the lead logs in, approves it and opens round 2
            r = browser.new_context().new_page()
            r.goto(srv.url + "/review?kind=situation")
            r.fill("#username", "lead")
            r.fill("#password", PASSWORD)
            r.click("#login")
            expect(r.locator(".sub")).to_have_count(1)
            r.click(".sub button.approve")
            expect(r.locator(".flash")).to_be_visible()
            r.goto(srv.url + "/admin")
            r.fill("form[action='/admin/tasks/dialogue'] input[name=target]", "1")
            r.click("#create-dialogues")
            expect(r.locator(".flash")).to_contain_text("1")

            # round 2: worker B writes a two-exchange dialogue for that situation
            b = browser.new_context(locale="ja-JP").new_page()
            b.goto(srv.url + "/w/worker-b")
            b.click("#start-dialogue")
            expect(b.locator("#recovery-key")).to_be_visible()
            expect(b.locator("#situation")).to_contain_text("救急車を呼ぶべきか")
            for i, text in enumerate(DIALOGUE):
                b.fill(f"#turn_{i}", text)
            shot = tmp_path / "dialogue_page.png"
            b.screenshot(path=str(shot), full_page=True)
            if os.environ.get("KYOKAN_CROWD_SCREENSHOT"):
                shutil.copy(shot, os.environ["KYOKAN_CROWD_SCREENSHOT"])
            assert shot.stat().st_size > 10_000
            b.click("#submit")
            expect(b.locator(".flash")).to_contain_text("送信しました")
            b.goto(srv.url + "/w/worker-b/mine")
            expect(b.locator(".sub")).to_have_count(1)
            expect(b.locator("body")).not_to_contain_text("救急車を呼ぶべきか迷って怖かった")  # A's text is not B's

            # review of round 2: open the entry, approve from its page
            r.goto(srv.url + "/review?kind=dialogue")
            r.click(".sub a")
            r.click("#act-approve")
            expect(r.locator(".flash")).to_contain_text("承認")  # back in the queue, now empty
            expect(r.locator(".sub")).to_have_count(0)
        finally:
            browser.close()
    out = tmp_path / "emplifai.jsonl"
    C.export(db, out)
    assert validate_path(str(out)).ok
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == 1 and recs[0]["emotion"] == "fear" and [t["text"] for t in recs[0]["turns"]] == DIALOGUE
    res = cli("data", "validate", str(out))
    assert res.code == 0, res.stderr
    db.dispose()
