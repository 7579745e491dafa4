"""The tolerant parser on messy model outputs: what it recovers and what it marks as broken."""

from __future__ import annotations

import pytest

from kyokan.generate import match_tag, parse_dialogue, parse_response

GOOD_JA = "患者：透析がつらいです。\n支援者：それはつらいですね。\n患者：毎回4時間なんです。\n支援者：長い時間、よく頑張っていますね。"


def texts(r) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(t.role, t.text) for t in r.turns]


def test_clean_dialogue() -> None:
    r = parse_dialogue(GOOD_JA)
    assert r.format_ok and r.reason is None and r.notes == []
    assert texts(r)[0] == ("speaker", "透析がつらいです。") and texts(r)[3][0] == "listener"


@pytest.mark.parametrize("raw", [
    GOOD_JA.replace("：", ":"),  # half-width colons
    GOOD_JA.replace("患者：", "患者 ： ").replace("支援者：", "支援者 ：　"),  # spaces, ideographic space
    GOOD_JA.replace("患者：", "**患者**：").replace("支援者：", "**支援者**："),  # Markdown bold
    GOOD_JA.replace("患者：", "- 患者：").replace("支援者：", "- 支援者："),  # bullets
    GOOD_JA.replace("患者：", "【患者】").replace("支援者：", "【支援者】"),  # brackets, no colon
    GOOD_JA.replace("患者：", "患者（Aさん）：").replace("支援者：", "支援者（Bさん）："),  # qualifiers
    GOOD_JA.replace("患者：", "患者：「").replace("。\n", "。」\n").replace("ね。\n", "ね。」\n"),  # 「」 quotes
    "```\n" + GOOD_JA + "\n```",  # a code fence
    "```text\n" + GOOD_JA + "\n```\n以上です。",  # a fence with a language and chatter after
    "<think>まず状況を整理する…</think>\n" + GOOD_JA,  # a reasoning block
    "ＰＡＴＩＥＮＴ：a\nＳｕｐｐｏｒｔｅｒ：b\nPatient 2: c\nSupporter (turn 4): d",  # full-width tags, numbering
])
def test_recoverable_formats(raw: str) -> None:
    r = parse_dialogue(raw)
    assert r.format_ok, r.reason
    assert [t.role for t in r.turns] == ["speaker", "listener", "speaker", "listener"]
    assert all(t.text and "：" not in t.text[:1] and not t.text.startswith(("「", "**")) for t in r.turns)


def test_quotes_and_markup_are_removed_from_text() -> None:
    r = parse_dialogue(GOOD_JA.replace("患者：透析がつらいです。", "**患者**：「透析がつらいです。」"))
    assert r.turns[0].text == "透析がつらいです。"


def test_extra_text_is_noted_not_fatal() -> None:
    r = parse_dialogue("以下が対話です。\n\n" + GOOD_JA + "\n\nいかがでしょうか？")
    assert r.format_ok
    assert "extra text before the dialogue" in r.notes and "extra text after the dialogue" in r.notes
    assert r.turns[3].text == "長い時間、よく頑張っていますね。"  # the trailing question is not in the turn


def test_continuation_lines_join_the_turn() -> None:
    r = parse_dialogue("Patient: I am scared.\nIt is my first surgery.\nSupporter: That is a lot.\n"
                       "Patient: Yes.\nSupporter: I'm here.")
    assert r.format_ok and r.turns[0].text == "I am scared.\nIt is my first surgery."


def test_missing_tags_recovered_but_marked() -> None:
    r = parse_dialogue("透析がつらいです。\nそれはつらいですね。\n毎回4時間なんです。\nよく頑張っていますね。")
    assert not r.format_ok and "no speaker/listener tags" in (r.reason or "")
    assert [t.role for t in r.turns] == ["speaker", "listener", "speaker", "listener"]
    r = parse_dialogue("I feel nervous about tomorrow. Can you help?")
    assert not r.format_ok and r.turns == [] and "expected 4 tagged turns" in (r.reason or "")


def test_wrong_turn_counts_and_order() -> None:
    three = "\n".join(GOOD_JA.split("\n")[:3])
    r = parse_dialogue(three)
    assert not r.format_ok and r.reason == "3 of 4 turns" and len(r.turns) == 3
    r = parse_dialogue(three, finish_reason="length")
    assert r.reason == "3 of 4 turns (cut off at max_new_tokens)"
    r = parse_dialogue(GOOD_JA + "\n患者：ありがとう。\n支援者：いつでも。")
    assert not r.format_ok and r.reason == "6 turns, expected 4 (2 exchanges)"
    assert parse_dialogue(GOOD_JA + "\n患者：ありがとう。\n支援者：いつでも。", exchanges=3).format_ok
    r = parse_dialogue("支援者：こんにちは。\n患者：a\n支援者：b\n患者：c")
    assert not r.format_ok and "turn 1 is the listener's" in (r.reason or "")
    r = parse_dialogue("患者：\n支援者：b\n患者：c\n支援者：d")
    assert not r.format_ok and r.reason == "turn 1 (speaker) is empty"


def test_truncated_last_turn_is_broken_but_complete_plus_ramble_is_fine() -> None:
    assert parse_dialogue(GOOD_JA, finish_reason="length").reason == "the last turn was cut off at max_new_tokens"
    assert parse_dialogue(GOOD_JA + "\n\nNote: this dialogue", finish_reason="length").format_ok


def test_empty_and_unfinished_thinking() -> None:
    assert parse_dialogue("   ").reason == "empty output"
    assert "unfinished <think>" in (parse_dialogue("<think>hmm, the patient").reason or "")


def test_tag_matcher_is_not_fooled_by_prose() -> None:
    assert match_tag("Patient: hi") == ("speaker", "hi")
    assert match_tag("患者A：はい") == ("speaker", "はい")
    assert match_tag("The patient said: hi") is None
    assert match_tag("Listener") is None  # no colon
    assert match_tag("Supporters: x") is None


def test_response_parsing() -> None:
    r = parse_response("That sounds really hard. I'm here for you.")
    assert r.format_ok and texts(r) == [("listener", "That sounds really hard. I'm here for you.")]
    r = parse_response("Listener: \"That sounds hard.\"")
    assert r.format_ok and r.turns[0].text == "That sounds hard." and "removed a listener tag" in r.notes
    r = parse_response("支援者：それはつらいですね。\n患者：はい。\n支援者：…")
    assert r.format_ok and r.turns[0].text == "それはつらいですね。"
    assert any("went on" in n for n in r.notes)
    r = parse_response("```\nI hear you.\n```")
    assert r.format_ok and r.turns[0].text == "I hear you."
    assert not parse_response("").format_ok
    assert parse_response("Speaker: me again").reason == "the reply is written as the speaker's turn"
    r = parse_response("I understand how", finish_reason="length")
    assert r.format_ok and "cut off at max_new_tokens" in r.notes


def test_copied_format_placeholders_break_the_format() -> None:
    from kyokan.generate import get_template

    for lang, text in (("ja", "患者：（患者の発言）\n支援者：（支援者の返答）\n患者：（患者の発言）\n支援者：（支援者の返答）"),
                       ("en", "Patient: <what the patient says>\nSupporter: <what the supporter says>\n" * 2)):
        ph = get_template("dialogue", lang).placeholders()
        r = parse_dialogue(text, placeholders=ph)
        assert not r.format_ok and "placeholder" in (r.reason or "")
        assert parse_dialogue(text).format_ok  # without the template's placeholders it looks like a dialogue
