"""Shared text normalisation (kyokan.text.clean_text / is_blank / bidi_controls) and its use by
`kyokan data validate`: turns that are empty once invisible characters are removed are refused."""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from kyokan.text import BIDI_CONTROLS, INVISIBLE, bidi_controls, clean_text, is_blank

# Cf (format) characters that do render: Arabic/Syriac prepended concatenation marks and
# Egyptian hieroglyph format controls; everything else in Cf must be removed
VISIBLE_FORMAT = {0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x6DD, 0x70F, 0x890, 0x891, 0x8E2, 0x110BD,
                  0x110CD, *range(0x13430, 0x13440)}


def test_attack_strings_are_normalised() -> None:
    assert clean_text("死\u200bね") == "死ね"  # the screen bypass from the attack report
    assert clean_text("死\ufeffね\u2060") == "死ね"
    assert clean_text("ｼﾈ") == "シネ" and clean_text("ＡＢＣ１") == "ABC1"  # NFKC
    assert clean_text("abc\u202edef") == "abcdef"
    assert clean_text("e\u0301") == "é"  # combining marks are kept (composed), not dropped
    for blank in ("", " ", "\u200b\u200b\u200b", "\u3000\u2800", "\ufeff\n\u200d", "\u202e", "\u3164\uffa0",
                  "\U000e0041\U000e0042"):
        assert is_blank(blank), repr(blank)
    for text in ("a", " 痛い", "\u200bい", "\u202eabc", "。", "😀"):
        assert not is_blank(text), repr(text)
    assert bidi_controls("a\u202eb\u2066c\u202e") == ["U+202E", "U+2066"] and bidi_controls("普通") == []


def test_every_invisible_format_character_is_covered() -> None:
    """Checked against the Unicode database: each Cf character is removed unless it renders."""
    missing = [f"U+{c:04X}" for c in range(sys.maxunicode + 1)
               if unicodedata.category(chr(c)) == "Cf" and c not in VISIBLE_FORMAT
               and chr(c) not in INVISIBLE | BIDI_CONTROLS]
    assert missing == []
    assert all(unicodedata.category(c) in ("Cf", "Cn", "Mn", "Lo") for c in INVISIBLE)


BLANKISH = [*sorted(INVISIBLE | BIDI_CONTROLS), " ", "\t", "\n", "\u3000", "\u2800", "a", "あ", "\u00a0"]


@given(st.text(alphabet=st.sampled_from(BLANKISH)))
def test_is_blank_agrees_with_clean_text(text: str) -> None:
    # two implementations (anchored regex vs NFKC + translate + strip) must agree
    assert is_blank(text) == (clean_text(text).replace("\u2800", "").strip() == "")


@given(st.text())
def test_clean_text_is_idempotent_and_leaves_no_invisible(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once
    assert not (set(once) & (INVISIBLE | BIDI_CONTROLS))


def test_data_validate_rejects_invisible_only_turns(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def rec(i: int, situation: str, turns: list[str]) -> str:
        return json.dumps({"id": f"d{i}", "situation_id": "s1", "emotion": "fear", "lang": "ja", "situation": situation,
                           "turns": [{"role": r, "text": t} for r, t in zip(["speaker", "listener"] * 2, turns, strict=False)]},
                          ensure_ascii=True)

    path = tmp_path / "z.jsonl"
    path.write_text("\n".join([rec(1, "夜に胸が痛い", ["怖い", "大丈夫ですよ"]),
                               rec(2, "夜に胸が痛い", ["怖い", "\u200b\u200b\u200d"]),
                               rec(3, "\u2060\u3000", ["怖い", "そうですね"]),
                               rec(4, "夜", ["\ufeff", "はい"])]) + "\n", encoding="utf-8")
    r = cli("data", "validate", str(path))
    assert r.code == 2 and "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith(str(path) + ":")]
    assert f"{path}:2: turns[1].text: is empty after normalisation" in r.stderr
    assert f"{path}:3: situation: is empty after normalisation" in r.stderr
    assert f"{path}:4: turns[0].text: is empty after normalisation" in r.stderr
    assert not any(x.startswith(f"{path}:1:") for x in lines)
