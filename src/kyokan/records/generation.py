"""Generated dialogues: the rows of ``kyokan generate`` (``generate/<system>/generated.jsonl``).

A generated row is a kyokan dialogue record (any dialogue tool reads it) whose
``meta.generation`` holds the raw output, the verdict and where it came from; the record's kind
and version live there too, since the dialogue format admits no extra top-level fields."""

from __future__ import annotations

from typing import Any, Literal

from kyokan.records.base import Part, Record, register

#: ok: the requested format, complete; format_violation: the parser rejected it;
#: truncated: generation stopped at max_new_tokens (the text may still parse, but it is cut)
GenerationStatus = Literal["ok", "format_violation", "truncated"]


class Turn(Part):
    role: Literal["speaker", "listener"]
    text: str


class GenerationInfo(Part):
    kind: Literal["kyokan.generation"] = "kyokan.generation"
    version: Literal[2] = 2
    task: Literal["dialogue", "response"]
    #: the system label the rows are keyed by (a model spec, or the pipeline's system name)
    model: str
    status: GenerationStatus
    raw: str
    format_ok: bool
    reason: str | None = None
    notes: list[str] = []
    finish_reason: str | None = None
    template: str
    template_digest: str
    prompt_lang: str | None = None
    prompt_sha256: str
    params: dict[str, Any]
    seed: int
    run_seed: int
    sample: int = 0
    length_control: bool = False
    usage: dict[str, int] = {}
    attempts: int = 1
    source_id: str
    #: fingerprint of the generation settings (a rerun appends only with the same one)
    config: str
    model_info: dict[str, Any] = {}
    exchanges: int | None = None
    style: str | None = None
    response_index: int | None = None
    reference: str | None = None


class GeneratedMeta(Part):
    source: str = "generated"
    generation: GenerationInfo


@register
class GeneratedDialogue(Record):
    KIND = "kyokan.generation"
    VERSION = 2
    DESCRIPTION = "a generated dialogue or reply (kyokan generate): a dialogue record with meta.generation"

    id: str
    situation_id: str
    emotion: str | None = None
    lang: str | None = None
    situation: str = ""
    turns: list[Turn]
    meta: GeneratedMeta

    @classmethod
    def declared(cls, obj: dict[str, Any]) -> tuple[Any, Any]:
        meta = obj.get("meta")
        gen = meta.get("generation") if isinstance(meta, dict) else None
        if not isinstance(gen, dict):
            return None, None
        return gen.get("kind"), gen.get("version")

    @property
    def generation(self) -> GenerationInfo:
        return self.meta.generation

    @property
    def system(self) -> str:
        return self.meta.generation.model

    @property
    def status(self) -> GenerationStatus:
        return self.meta.generation.status

    def reply_index(self) -> int | None:
        """Index of the last listener turn (the generated reply), None when there is none or it
        is the first turn."""
        idx = max((i for i, t in enumerate(self.turns) if t.role == "listener"), default=None)
        return idx if idx else None

    @property
    def reply(self) -> str | None:
        """The generated reply (the last listener turn) when the output kept the format."""
        i = self.reply_index()
        if not self.meta.generation.format_ok or i is None:
            return None
        return self.turns[i].text

    @property
    def context(self) -> str:
        """The last speaker turn before the reply (EmPO's context for IVA)."""
        i = self.reply_index()
        before = self.turns[:i] if i is not None else self.turns
        speaker = [t.text for t in before if t.role == "speaker"]
        return speaker[-1] if speaker else ""

    def generated_chars(self) -> int | None:
        """Characters the model wrote, whitespace excluded: the reply for the response task, every
        listener turn for the dialogue task (the speaker turns there are generated too, but the
        paper's length-bias check is about the supporter's replies). None without a reply."""
        g = self.meta.generation
        if not g.format_ok:
            return None
        if g.task == "response":
            r = self.reply
            return None if r is None else sum(1 for ch in r if not ch.isspace())
        return sum(1 for t in self.turns if t.role == "listener" for ch in t.text if not ch.isspace())


@register
class GenerationSummary(Record):
    KIND = "kyokan.generation.summary"
    VERSION = 1
    DESCRIPTION = "one generation file's accounting: rows per status (ok, format_violation, truncated)"

    kind: Literal["kyokan.generation.summary"] = "kyokan.generation.summary"
    version: Literal[1] = 1
    source: str
    output: str
    #: rows in the output file
    rows: int
    #: rows per status: ok, format_violation, truncated (every status listed, zeros included)
    status: dict[str, int]
    #: rows whose format the parser accepted (truncated rows may be among them)
    format_ok: int
    #: every requested row is in the file (no call failed for good)
    complete: bool
    failed: int = 0
    usage: dict[str, int] = {}
    seconds: float | None = None
