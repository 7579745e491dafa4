"""`kyokan crowd` commands through the real entry point (SQLite): init, tasks, users, config,
status, export; bad input exits 2 without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import kyokan.crowd as C
from kyokan.data import validate_path


def test_cli_round_trip(cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "c.db")
    monkeypatch.setenv("KYOKAN_CROWD_PASSWORD", "a long admin passphrase")
    r = cli("crowd", "init", "--db", db, "--admin", "lead", "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["revision"] == C.head_revision()
    assert cli("crowd", "init", "--db", db).code == 0  # idempotent
    r = cli("crowd", "tasks", "situations", "--db", db, "--target", "2", "--emotions", "fear,joy", "--json")
    assert json.loads(r.stdout)["created"] == 2
    sits = tmp_path / "s.jsonl"
    sits.write_text('{"id": "f1", "emotion": "悲しみ", "situation": "母が入院した"}\n', encoding="utf-8")
    r = cli("crowd", "tasks", "dialogues", "--db", db, "--from", str(sits), "--target", "1", "--json")
    assert r.code == 0 and json.loads(r.stdout)["keys"] == ["dialogue:f1"]
    assert cli("crowd", "config", "--db", db, "--set", "pay.dialogue=60", "--set", "rejection_cap=0.25").code == 0
    cfg = json.loads(cli("crowd", "config", "--db", db, "--json").stdout)
    assert cfg["pay"]["dialogue"] == 60 and cfg["rejection_cap"] == 0.25
    handle = C.CrowdDB(db)
    C.register_worker(handle, "w1")
    a = C.assign(handle, "w1", "dialogue")
    assert isinstance(a, C.Assignment)
    uid = C.submit(handle, "w1", a.token, {"turns": [{"text": t} for t in ("つらい", "そうですね", "はい", "大丈夫")]}).uid
    C.review(handle, C.authenticate(handle, "lead", "a long admin passphrase"), uid, "approve")  # type: ignore[arg-type]
    st = json.loads(cli("crowd", "status", "--db", db, "--json").stdout)
    assert st["dialogue"]["submitted"] == 1 and st["dialogue"]["statuses"] == {"approved": 1}
    out = tmp_path / "out.jsonl"
    r = cli("crowd", "export", "--db", db, "-o", str(out), "--situations", str(tmp_path / "sits.jsonl"), "--json")
    assert r.code == 0 and json.loads(r.stdout)["dialogues"] == 1
    assert validate_path(str(out)).ok and cli("data", "validate", str(out)).code == 0
    assert (tmp_path / "out.provenance.json").exists()


def test_cli_errors_are_clean(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("crowd", "status", "--db", str(tmp_path / "never.db"))
    assert r.code == 2 and "not initialised" in r.stderr and "Traceback" not in r.stderr
    r = cli("crowd", "status", "--db", "mysql://x/y")
    assert r.code == 2 and "only sqlite and postgresql" in r.stderr
    db = str(tmp_path / "c.db")
    assert cli("crowd", "init", "--db", db).code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("id,emotion,situation\nx,happyness,t\n", encoding="utf-8")
    r = cli("crowd", "tasks", "dialogues", "--db", db, "--from", str(bad))
    assert r.code == 2 and f"{bad}:2: emotion: unknown label 'happyness'" in r.stderr
    r = cli("crowd", "config", "--db", db, "--set", "nonsense=1")
    assert r.code == 2 and "unknown key" in r.stderr
    r = cli("crowd", "tasks", "situations", "--db", db, "--emotions", "feer")
    assert r.code == 2 and "did you mean 'fear'" in r.stderr


def test_crowd_package_is_lazy_and_complete() -> None:
    """`kyokan` start-up does not pay for SQLAlchemy (every command did, ~0.8 s), and every public
    name of kyokan.crowd still resolves."""
    import subprocess
    import sys

    import kyokan.crowd

    assert all(getattr(kyokan.crowd, n, None) is not None for n in kyokan.crowd.__all__)
    code = "import sys, kyokan.cli; print('sqlalchemy' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"
