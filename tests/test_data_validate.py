import json
from pathlib import Path

import pytest

from kyokan.data import sample_path, validate_path

MALFORMED = Path(__file__).parent / "data" / "malformed"
EXPECTED = json.loads((MALFORMED / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_corpus_cli(cli, name):
    path = MALFORMED / name
    r = cli("data", "validate", path)
    if not EXPECTED[name]:
        assert r.code == 0, r.stderr
        return
    assert r.code == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for needle in EXPECTED[name]:
        assert needle in r.stderr, (needle, r.stderr)
    # every problem line names this file
    for line in r.stderr.splitlines():
        if line.startswith(("...",)) or "invalid record" in line:
            continue
        assert line.startswith(str(path)), line


def test_bundled_samples_are_valid(cli):
    r = cli("data", "validate", sample_path("ja"))
    assert r.code == 0 and "168 valid" in r.stdout
    r = cli("data", "validate", sample_path("ed-en"))
    assert r.code == 0 and "64 valid" in r.stdout


def test_bom_crlf_and_japanese_label_normalised():
    res = validate_path(str(MALFORMED / "bom_crlf_valid.jsonl"))
    assert res.ok and res.valid == 2
    from kyokan.data import read_records

    recs = list(read_records(MALFORMED / "bom_crlf_valid.jsonl"))
    assert [r["emotion"] for r in recs] == ["fear", "fear"]


def _line(**kw):
    d = {"id": "x", "situation_id": "s", "emotion": "joy", "lang": "ja", "situation": "ｓｉｔ",
         "turns": [{"role": "speaker", "text": "ﾃｽﾄ"}, {"role": "listener", "text": "はい"}], "meta": {}}
    d.update(kw)
    return json.dumps(d, ensure_ascii=False)


def test_problem_cap_and_count(cli, tmp_path):
    f = tmp_path / "many.jsonl"
    f.write_text("\n".join(_line(id=f"d{i}", emotion="nope") for i in range(120)) + "\n", encoding="utf-8")
    r = cli("data", "validate", f, "--max-problems", "10")
    assert r.code == 2
    errs = [x for x in r.stderr.splitlines() if "emotion: unknown label" in x]
    assert len(errs) == 10
    assert "... and 110 more problems" in r.stderr


def test_skip_invalid_loses_nothing(cli, tmp_path):
    f = tmp_path / "mixed.jsonl"
    lines = [_line(id="a"), "{broken", _line(id="b", emotion="zzz"), _line(id="c"), _line(id="a")]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "clean.jsonl"
    r = cli("data", "validate", f, "--skip-invalid", "-o", out)
    assert r.code == 0, r.stderr
    good = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    rej = [json.loads(x) for x in (tmp_path / "clean.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [g["id"] for g in good] == ["a", "c"]
    assert [x["line"] for x in rej] == [2, 3, 5]
    assert rej[0]["record"] == "{broken" and "malformed JSON" in rej[0]["problems"][0]
    assert "duplicate id" in rej[2]["problems"][0]
    assert len(good) + len(rej) == len(lines)
    # NFKC on Japanese text
    assert good[0]["situation"] == "sit" and good[0]["turns"][0]["text"] == "テスト"


def test_alternation_and_unlabelled(tmp_path, cli):
    f = tmp_path / "a.jsonl"
    f.write_text(_line(turns=[{"role": "speaker", "text": "a"}, {"role": "speaker", "text": "b"}]) + "\n"
                 + _line(id="y", emotion=None) + "\n", encoding="utf-8")
    r = cli("data", "validate", f)
    assert r.code == 2
    assert ":1: turns[1].role: two speaker turns in a row" in r.stderr
    assert ":2: emotion: is null" in r.stderr
    g = tmp_path / "b.jsonl"
    g.write_text(_line(id="y", emotion=None) + "\n", encoding="utf-8")
    assert cli("data", "validate", g, "--allow-unlabelled").code == 0


def test_missing_file_and_folder(cli, tmp_path):
    r = cli("data", "validate", tmp_path / "nope.jsonl")
    assert r.code == 2 and "no such file" in r.stderr
    r = cli("data", "validate", tmp_path)
    assert r.code == 2 and "Traceback" not in r.stderr


def test_validate_subprocess_exit_code(tmp_path):
    """The installed console script itself: exit 2, no traceback."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("kyokan") or str(Path(sys.executable).parent / "kyokan")
    r = subprocess.run([exe, "data", "validate", str(MALFORMED / "cp932.jsonl")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "Shift_JIS" in r.stderr and "Traceback" not in r.stderr
