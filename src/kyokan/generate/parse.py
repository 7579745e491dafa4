"""Tolerant parsing of model output into speaker/listener turns, with an honest verdict.

The parser recovers what it can (code fences, chatter around the dialogue, Markdown bold or
bullets around tags, full-width colons and brackets, ``<think>`` blocks, wrapping quotes) but a
dialogue that does not have exactly the requested turns, alternating and starting with the
speaker, is ``format_ok = False`` with the reason — EmplifAI rates those the lowest. Recovered
text is kept either way, and the raw output is always stored beside it by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kyokan.data.record import Turn

#: tag words accepted for each role (case-insensitive; matched after full-width → ASCII folding)
SPEAKER_TAGS = ("speaker", "patient", "user", "client", "患者", "話し手", "相談者", "患者さん", "ユーザー", "A")
LISTENER_TAGS = ("listener", "supporter", "assistant", "counselor", "counsellor", "支援者", "聞き手",
                 "サポーター", "支援者さん", "相手", "B")
_ROLE = {t.lower(): "speaker" for t in SPEAKER_TAGS} | {t.lower(): "listener" for t in LISTENER_TAGS}

# full-width ASCII (！..～) and the ideographic space → ASCII; one character to one character, so
# offsets found on the folded line are valid on the original line
_FOLD = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def _tag_re(tags: list[str]) -> re.Pattern[str]:
    alts = "|".join(re.escape(t) for t in sorted(tags, key=len, reverse=True))
    return re.compile(
        r"^\s*(?:[-*•・>]\s*|\d{1,2}\s*[.)、]\s*|#{1,6}\s*)?"  # bullet, numbering, heading
        r"(?:\*\*|__|\*)?\s*[\[【(「]?\s*"  # bold, opening bracket
        rf"(?P<tag>{alts})"
        r"(?:\s*[0-9]{1,2}|(?<=[^\x00-\x7f])[A-Za-z0-9]{1,2})?"  # "Patient 1", "患者A"
        r"\s*(?:\([^)\n]{0,24}\))?"  # "(Aさん)", "(turn 1)"
        r"\s*[\]】)」]?\s*(?:\*\*|__|\*)?\s*"  # closing bracket, bold
        r"(?P<sep>:|(?<=[\]】]))"  # a colon, or a closing bracket alone: 【患者】…
        r"\s*(?:\*\*|__)?\s*(?P<text>.*)$",
        re.IGNORECASE,
    )


_TAG_RE = _tag_re(list(_ROLE))
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_QUOTES = (("「", "」"), ("『", "』"), ('"', '"'), ("“", "”"), ("'", "'"))


@dataclass
class ParseResult:
    turns: list[Turn]
    format_ok: bool
    reason: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_meta(self) -> dict[str, Any]:
        return {"format_ok": self.format_ok, "reason": self.reason, "notes": list(dict.fromkeys(self.notes))}


def match_tag(line: str) -> tuple[str, str] | None:
    """``(role, text)`` when ``line`` starts with a speaker/listener tag, else None."""
    m = _TAG_RE.match(line.translate(_FOLD))
    if not m:
        return None
    return _ROLE[m.group("tag").lower()], line[m.start("text"):].strip()


def strip_quotes(text: str) -> str:
    t = text.strip()
    for a, b in _QUOTES:
        if len(t) >= 2 and t.startswith(a) and t.endswith(b) and a not in t[1:-1] and b not in t[1:-1]:
            return t[1:-1].strip()
    return t


def _clean(raw: str, notes: list[str]) -> tuple[str, str | None]:
    """Remove reasoning blocks and code fences; returns (text, fatal reason or None)."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    if _THINK_RE.search(text):
        text = _THINK_RE.sub("", text)
        notes.append("removed a <think> block")
    low = text.lower()
    if "<think>" in low and "</think>" not in low:
        return "", "unfinished <think> block (no answer after the reasoning)"
    if "</think>" in low:  # templates that open the block in the prompt
        text = text[low.rindex("</think>") + len("</think>"):]
        notes.append("removed reasoning before </think>")
    lines = text.split("\n")
    if any(_FENCE_RE.match(ln) for ln in lines):
        notes.append("removed code fences")
        # prefer the inside of the first fenced block that holds tags
        blocks: list[list[str]] = []
        cur: list[str] | None = None
        for ln in lines:
            if _FENCE_RE.match(ln):
                if cur is None:
                    cur = []
                else:
                    blocks.append(cur)
                    cur = None
            elif cur is not None:
                cur.append(ln)
        if cur:
            blocks.append(cur)  # an unclosed fence (often cut by max tokens)
        tagged = [b for b in blocks if any(match_tag(ln) for ln in b)]
        if tagged:
            outside = [ln for ln in lines if ln.strip() and not _FENCE_RE.match(ln)]
            if len(outside) > sum(len([x for x in b if x.strip()]) for b in tagged[:1]):
                notes.append("extra text outside the code block")
            lines = tagged[0]
        else:
            lines = [ln for ln in lines if not _FENCE_RE.match(ln)]
    return "\n".join(lines).strip(), None


def parse_dialogue(raw: str, *, exchanges: int = 2, finish_reason: str | None = None,
                   placeholders: tuple[str, ...] = ()) -> ParseResult:
    """Turns of a generated dialogue of ``exchanges`` speaker→listener exchanges. A turn that just
    repeats one of ``placeholders`` (the prompt's format example, e.g. "（患者の発言）") breaks the
    format."""
    notes: list[str] = []
    text, fatal = _clean(raw or "", notes)
    if fatal:
        return ParseResult([], False, fatal, notes)
    if not text:
        return ParseResult([], False, "empty output", notes)
    expected = 2 * exchanges
    turns: list[list[str]] = []  # [role, text]
    roles: list[str] = []
    preamble: list[str] = []
    trailing: list[str] = []
    gap = False
    for line in text.split("\n"):
        tagged = match_tag(line)
        if tagged:
            role, body = tagged
            roles.append(role)
            turns.append([role, body])
            gap = False
            if trailing:
                notes.append("untagged text between turns was dropped")
                trailing = []
            continue
        if not line.strip():
            gap = bool(turns)
            continue
        if not turns:
            preamble.append(line.strip())
        elif gap:
            trailing.append(line.strip())
        else:  # a continuation line of the current turn
            turns[-1][1] = (turns[-1][1] + "\n" + line.strip()).strip()
    if not turns:
        body_lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
        if len(body_lines) == expected:
            rec = [Turn("speaker" if i % 2 == 0 else "listener", strip_quotes(t)) for i, t in enumerate(body_lines)]
            return ParseResult(rec, False, "no speaker/listener tags (turns recovered by line order)", notes)
        return ParseResult([], False, f"no speaker/listener tags found (expected {expected} tagged turns)", notes)
    if preamble:
        notes.append("extra text before the dialogue")
    if trailing:
        notes.append("extra text after the dialogue")
    out = [Turn("speaker" if r == "speaker" else "listener", strip_quotes(t)) for r, t in turns]
    truncated = finish_reason == "length"
    for i, t in enumerate(out):
        want = "speaker" if i % 2 == 0 else "listener"
        if t.role != want:
            return ParseResult(out, False, f"turn {i + 1} is the {t.role}'s, expected the {want}'s "
                                           "(turns alternate, speaker first)", notes)
        if not t.text:
            return ParseResult(out, False, f"turn {i + 1} ({t.role}) is empty", notes)
        if t.text in placeholders:
            return ParseResult(out, False, f"turn {i + 1} repeats the format's placeholder {t.text!r}", notes)
    if len(out) < expected:
        why = f"{len(out)} of {expected} turns"
        return ParseResult(out, False, why + (" (cut off at max_new_tokens)" if truncated else ""), notes)
    if len(out) > expected:
        return ParseResult(out, False, f"{len(out)} turns, expected {expected} ({exchanges} exchanges)", notes)
    if truncated and not trailing:
        return ParseResult(out, False, "the last turn was cut off at max_new_tokens", notes)
    return ParseResult(out, True, None, notes)


def parse_response(raw: str, *, finish_reason: str | None = None) -> ParseResult:
    """The listener's next reply: one turn."""
    notes: list[str] = []
    text, fatal = _clean(raw or "", notes)
    if fatal:
        return ParseResult([], False, fatal, notes)
    lines = text.split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        return ParseResult([], False, "empty output", notes)
    tagged = match_tag(lines[first])
    if tagged:
        role, body = tagged
        if role == "speaker":
            return ParseResult([], False, "the reply is written as the speaker's turn", notes)
        lines[first] = body
        notes.append("removed a listener tag")
    kept: list[str] = []
    for ln in lines[first:]:
        if kept and match_tag(ln):
            notes.append("the model went on with further turns; kept only the first reply")
            break
        kept.append(ln)
    reply = strip_quotes("\n".join(kept).strip())
    if finish_reason == "length":
        notes.append("cut off at max_new_tokens")
    if not reply:
        return ParseResult([], False, "empty reply", notes)
    return ParseResult([Turn("listener", reply)], True, None, notes)
