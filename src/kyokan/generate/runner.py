"""Generation as a resumable job: records in, format-checked generated records out.

Every output row is a kyokan dialogue record whose ``meta.generation`` holds the raw model output,
the format verdict (``format_ok``, ``reason``, ``notes``), the model spec (``model``) and its
provenance (``model_info``), the task, template name@version, the sampling parameters with the
row's own seed, usage and attempts. Rows are appended as they finish; a rerun skips ids already
in the output (so a killed job resumes), rows whose model call failed for good are not written
(the rerun retries them: nothing lost, nothing duplicated), and once every row is there the file
is rewritten in input order.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kyokan.errors import KyokanError
from kyokan.generate.parse import ParseResult, parse_dialogue, parse_response
from kyokan.generate.templates import (
    STYLES,
    TASKS,
    PromptTemplate,
    get_template,
    load_template_file,
)
from kyokan.models.base import ChatModel, Completion, GenerationParams, Message
from kyokan.provenance import derive_seed, sha256_text

#: version of the ``meta.generation`` record (kyokan.records.GenerationInfo)
GENERATION_SCHEMA = 2

if TYPE_CHECKING:
    from kyokan.records import GenerationSummary


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate and how; recorded (hashed) in every row."""

    task: str = "dialogue"
    #: template language; None = each record's own ``lang``
    lang: str | None = None
    exchanges: int = 2
    #: None = task default (dialogue 512, response 256; with length control 256 / 64)
    max_new_tokens: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    samples: int = 1
    length_control: bool = False
    #: length-control target (Japanese: characters, English: words); None = template default
    target_length: int | None = None
    #: response task: "chat" (dialogue as chat turns, EmPO) or "transcript"
    style: str = "chat"
    #: response task: "last" (the last listener turn) or "all" (every listener turn)
    turn: str = "last"
    template_file: str | None = None
    taxonomy: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise KyokanError(f"unknown task {self.task!r} (dialogue or response)")
        if self.style not in STYLES:
            raise KyokanError(f"unknown style {self.style!r} (chat or transcript)")
        if self.turn not in ("last", "all"):
            raise KyokanError(f"--turn must be last or all, got {self.turn!r}")
        if self.exchanges < 1:
            raise KyokanError("exchanges must be ≥ 1")
        if self.samples < 1:
            raise KyokanError("samples must be ≥ 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise KyokanError("max_new_tokens must be ≥ 1")
        if not 0 <= self.temperature <= 5 or not 0 < self.top_p <= 1:
            raise KyokanError("temperature must be in [0, 5] and top_p in (0, 1]")

    @property
    def effective_max_new_tokens(self) -> int:
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        if self.task == "dialogue":
            return 256 if self.length_control else 512
        return 64 if self.length_control else 256

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["max_new_tokens"] = self.effective_max_new_tokens
        return d


@dataclass
class Job:
    id: str
    record: dict[str, Any]
    messages: list[Message]
    params: GenerationParams
    template: PromptTemplate
    sample: int
    #: response task: the context turns and the reference reply (None when the dialogue ends on
    #: a speaker turn)
    context: list[dict[str, str]] | None = None
    reference: str | None = None
    response_index: int | None = None


@dataclass
class RunSummary:
    total: int = 0
    skipped: int = 0
    written: int = 0
    format_ok: int = 0
    format_bad: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    seconds: float = 0.0
    output: str = ""
    complete: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_seed(seed: int, row_id: str, sample: int) -> int:
    """A per-row seed from the run seed, the row id and the sample number (stable across runs and
    resumptions, independent of order and batching)."""
    return derive_seed(seed, row_id, sample)


def emotion_name(label: str | None, lang: str, taxonomy: str | None = None) -> str:
    """The label's display name in the prompt language (English lower-cased)."""
    if not label:
        return "（不明）" if lang.startswith("ja") else "unknown"
    from kyokan.taxonomy import DEFAULT_TAXONOMY, available, get_taxonomy

    names = [taxonomy] if taxonomy else [DEFAULT_TAXONOMY, *[n for n in available() if n != DEFAULT_TAXONOMY]]
    taxes = []
    for n in names:
        try:
            taxes.append(get_taxonomy(n))
        except Exception:
            continue
    # a taxonomy that has the label as a canonical id first (ed32 "afraid" stays "afraid"), then aliases
    for tax in sorted(taxes, key=lambda t: label not in t.ids):
        if label in tax:
            name = tax.label(label).name("ja" if lang.startswith("ja") else "en")
            return name if lang.startswith("ja") else name.lower()
    return label


def _template_for(cfg: GenerateConfig, lang: str, cache: dict[str, PromptTemplate]) -> PromptTemplate:
    if lang not in cache:
        cache[lang] = (load_template_file(cfg.template_file, cfg.task, lang) if cfg.template_file
                       else get_template(cfg.task, lang))
    return cache[lang]


def build_jobs(records: Iterable[dict[str, Any]], cfg: GenerateConfig) -> list[Job]:
    """One job per (record[, listener turn], sample), in input order; ids are unique."""
    jobs: list[Job] = []
    cache: dict[str, PromptTemplate] = {}
    seen: set[str] = set()
    for rec in records:
        lang = cfg.lang or str(rec.get("lang") or "en")
        tpl = _template_for(cfg, lang, cache)
        emo = emotion_name(rec.get("emotion"), tpl.lang, cfg.taxonomy)
        targets: list[tuple[str, list[Message], dict[str, Any]]] = []
        if cfg.task == "dialogue":
            msgs = tpl.dialogue_messages(rec, emotion=emo, exchanges=cfg.exchanges,
                                         length_control=cfg.length_control, target=cfg.target_length)
            targets.append((str(rec["id"]), msgs, {}))
        else:
            turns = list(rec.get("turns") or [])
            ends: list[int] = []  # index of the turn to generate (a listener turn, or past the end)
            listener_idx = [i for i, t in enumerate(turns) if t["role"] == "listener" and i > 0]
            if cfg.turn == "all":
                ends = listener_idx
            elif turns and turns[-1]["role"] == "speaker":
                ends = [len(turns)]
            elif listener_idx:
                ends = [listener_idx[-1]]
            for i in ends:
                ctx = [dict(t) for t in turns[:i]]
                if not ctx or ctx[-1]["role"] != "speaker":
                    continue
                msgs = tpl.response_messages(rec, ctx, emotion=emo, style=cfg.style,
                                             length_control=cfg.length_control, target=cfg.target_length)
                rid = str(rec["id"]) if cfg.turn == "last" else f"{rec['id']}@{i}"
                ref = turns[i]["text"] if i < len(turns) else None
                targets.append((rid, msgs, {"context": ctx, "reference": ref, "response_index": i}))
        for rid, msgs, extra in targets:
            for s in range(cfg.samples):
                jid = rid if cfg.samples == 1 else f"{rid}~{s}"
                if jid in seen:
                    raise KyokanError(f"duplicate id {jid!r} in the input: ids must be unique to resume safely")
                seen.add(jid)
                params = GenerationParams(max_new_tokens=cfg.effective_max_new_tokens, temperature=cfg.temperature,
                                          top_p=cfg.top_p, seed=row_seed(cfg.seed, rid, s))
                jobs.append(Job(jid, rec, msgs, params, tpl, s, **extra))
    return jobs


def config_fingerprint(cfg: GenerateConfig, model_spec: str) -> str:
    """What must match for a rerun to append to an existing output."""
    d = cfg.to_dict()
    d["model"] = model_spec
    blob = json.dumps(d, sort_keys=True, ensure_ascii=False)
    return sha256_text(blob)[:16]


def make_row(job: Job, comp: Completion, cfg: GenerateConfig, model_spec: str, model_info: dict[str, Any],
             fingerprint: str) -> dict[str, Any]:
    """The output record for one finished job."""
    rec = job.record
    pr: ParseResult
    if cfg.task == "dialogue":
        pr = parse_dialogue(comp.text, exchanges=cfg.exchanges, finish_reason=comp.finish_reason,
                            placeholders=job.template.placeholders())
        turns = [t.to_dict() for t in pr.turns]
    else:
        pr = parse_response(comp.text, finish_reason=comp.finish_reason)
        turns = list(job.context or []) + [t.to_dict() for t in pr.turns]
    if rec.get("lang", "").startswith("ja"):
        import unicodedata

        turns = [{"role": t["role"], "text": unicodedata.normalize("NFKC", t["text"])} for t in turns]
    prompt_blob = json.dumps(job.messages, ensure_ascii=False, sort_keys=True)
    # a reply cut at max_new_tokens is incomplete whatever the parser made of it: its own status
    status = "truncated" if comp.finish_reason == "length" else ("ok" if pr.format_ok else "format_violation")
    gen: dict[str, Any] = {
        "kind": "kyokan.generation",
        "version": GENERATION_SCHEMA,
        "task": cfg.task,
        "model": model_spec,
        "status": status,
        "raw": comp.text,
        **pr.to_meta(),
        "finish_reason": comp.finish_reason,
        "template": job.template.key(),
        "template_digest": job.template.digest(),
        "prompt_lang": job.template.lang,
        "prompt_sha256": sha256_text(prompt_blob),
        "params": job.params.to_dict(),
        # what the backend really used (a server may decode greedily whatever was asked)
        "sampling": comp.sampling,
        "seed": job.params.seed,
        "run_seed": cfg.seed,
        "sample": job.sample,
        "length_control": cfg.length_control,
        "usage": comp.usage.to_dict(),
        "attempts": comp.attempts,
        "source_id": rec["id"],
        "config": fingerprint,
        "model_info": model_info,
    }
    if cfg.task == "dialogue":
        gen["exchanges"] = cfg.exchanges
    else:
        gen["style"] = cfg.style
        gen["response_index"] = job.response_index
        gen["reference"] = job.reference
    meta = {"source": "generated", "generation": gen}
    return {"id": job.id, "situation_id": rec["situation_id"], "emotion": rec.get("emotion"),
            "lang": rec.get("lang"), "situation": rec.get("situation", ""), "turns": turns, "meta": meta}


async def run_jobs(model: ChatModel, jobs: Sequence[Job], write: Callable[[Job, Completion], None], *,
                   in_flight: int = 8, on_fail: Callable[[Job, BaseException], None] | None = None) -> None:
    """Run jobs with at most ``in_flight`` calls pending; ``write`` is called as each finishes."""
    sem = asyncio.Semaphore(max(1, in_flight))
    pending: set[asyncio.Task[None]] = set()

    async def one(job: Job) -> None:
        try:
            comp = await model.agenerate(job.messages, job.params)
        except Exception as e:  # recorded; the row stays missing so a rerun retries it
            if on_fail is not None:
                on_fail(job, e)
            return
        finally:
            sem.release()
        write(job, comp)

    try:
        for job in jobs:
            await sem.acquire()
            t = asyncio.create_task(one(job))
            pending.add(t)
            t.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*list(pending))
    finally:
        for t in list(pending):
            t.cancel()
        await model.aclose()


def _existing(path: Path) -> tuple[set[str], str | None, str | None]:
    """Ids already in ``path`` and the config fingerprint and model of its first generated row."""
    from kyokan.io import read_rows, repair_torn_tail

    done: set[str] = set()
    fp = spec = None
    if not path.exists():
        return done, fp, spec
    repair_torn_tail(path)
    for row in read_rows(path):
        done.add(str(row["id"]))
        gen = (row.get("meta") or {}).get("generation") if isinstance(row.get("meta"), dict) else None
        if fp is None and isinstance(gen, dict):
            fp, spec = gen.get("config"), gen.get("model")
    return done, fp, spec


def generate_file(records: Iterable[dict[str, Any]], model: ChatModel, output: str | Path, cfg: GenerateConfig, *,
                  in_flight: int = 8, overwrite: bool = False, limit: int | None = None,
                  on_start: Callable[[int, int], None] | None = None,
                  on_row: Callable[[dict[str, Any] | None, BaseException | None], None] | None = None,
                  ) -> RunSummary:
    """Generate for ``records`` into the JSONL ``output``, resuming what a previous run left."""
    from kyokan.io import JsonlAppender, write_jsonl

    out = Path(output)
    if out.suffix.lower() not in (".jsonl", ".ndjson"):
        raise KyokanError(f"{out}: generation output must be .jsonl (rows are appended as they finish)")
    spec = model.spec or model.info().get("spec", "")
    fp = config_fingerprint(cfg, spec)
    jobs = build_jobs(records, cfg)
    if limit is not None:
        jobs = jobs[:limit]
    if overwrite and out.exists():
        out.unlink()
    done, old_fp, old_spec = _existing(out)
    if done and old_fp is not None and old_fp != fp:
        raise KyokanError(f"{out} holds rows made with other settings (model {old_spec!r}, config {old_fp}; now "
                          f"{spec!r}, {fp}): use another -o, or --overwrite to start again")
    todo = [j for j in jobs if j.id not in done]
    summary = RunSummary(total=len(jobs), skipped=len(jobs) - len(todo), output=str(out))
    info = {k: v for k, v in model.info().items() if k not in ("usage", "calls", "retries")}
    if on_start is not None:
        on_start(len(jobs), len(todo))
    t0 = time.perf_counter()
    appender = JsonlAppender(out)
    from kyokan.records import GeneratedDialogue

    def write(job: Job, comp: Completion) -> None:
        row = make_row(job, comp, cfg, spec, info, fp)
        GeneratedDialogue.model_validate(row)  # the writer holds itself to the record it promises
        appender.write(row)
        summary.written += 1
        if row["meta"]["generation"]["format_ok"]:
            summary.format_ok += 1
        else:
            summary.format_bad += 1
        summary.usage["prompt_tokens"] += comp.usage.prompt_tokens
        summary.usage["completion_tokens"] += comp.usage.completion_tokens
        if on_row is not None:
            on_row(row, None)

    def fail(job: Job, e: BaseException) -> None:
        summary.failed.append({"id": job.id, "error": f"{type(e).__name__}: {e}"})
        if on_row is not None:
            on_row(None, e)

    try:
        asyncio.run(run_jobs(model, todo, write, in_flight=in_flight, on_fail=fail))
    finally:
        appender.close()
        summary.seconds = round(time.perf_counter() - t0, 3)
    if not summary.failed:
        # everything is there: put the rows in input order (atomic rewrite), drop duplicate ids
        rows: dict[str, dict[str, Any]] = {}
        extra: list[dict[str, Any]] = []
        with open(out, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    if row["id"] not in rows:
                        rows[row["id"]] = row
        order = [j.id for j in jobs]
        in_jobs = set(order)
        extra = [r for k, r in rows.items() if k not in in_jobs]
        write_jsonl(out, [rows[k] for k in order if k in rows] + extra)
        summary.complete = all(k in rows for k in order)
    write_generation_summary(out, spec, summary)
    return summary


def summary_path_for(out: str | Path) -> Path:
    """``generated.jsonl`` → ``generated.summary.json`` (beside the rows, as the judge does)."""
    from kyokan.io import sidecar

    return sidecar(out, "summary")


def write_generation_summary(out: Path, spec: str, run: RunSummary) -> GenerationSummary:
    """Count the rows of ``out`` per status (the file's rows, so a resumed job counts them all)."""
    from kyokan.records import GeneratedDialogue, GenerationSummary, read_rows, write_record

    rows = read_rows(out, GeneratedDialogue) if out.exists() else []
    status = dict.fromkeys(("ok", "format_violation", "truncated"), 0)
    for r in rows:
        status[r.status] += 1
    rec = GenerationSummary(source=spec, output=out.name, rows=len(rows), status=status,
                            format_ok=sum(1 for r in rows if r.generation.format_ok), complete=run.complete,
                            failed=len(run.failed), usage=run.usage, seconds=run.seconds)
    write_record(summary_path_for(out), rec)
    return rec
