"""Dialogue generation: prompt templates (EmplifAI dialogue task, EmPO response task; ja/en), a
tolerant format-checking parser, and a resumable generation job.

    from kyokan.generate import GenerateConfig, generate_file
    from kyokan.models import load_model
    summary = generate_file(records, load_model("smollm2-135m"), "gen.jsonl", GenerateConfig(lang="en"))
"""

from kyokan.generate.parse import ParseResult, match_tag, parse_dialogue, parse_response
from kyokan.generate.runner import (
    GenerateConfig,
    Job,
    RunSummary,
    build_jobs,
    config_fingerprint,
    emotion_name,
    generate_file,
    make_row,
    row_seed,
    run_jobs,
)
from kyokan.generate.templates import (
    PromptTemplate,
    get_template,
    load_template_file,
    register_template,
    templates,
)

__all__ = [
    "GenerateConfig",
    "Job",
    "ParseResult",
    "PromptTemplate",
    "RunSummary",
    "build_jobs",
    "config_fingerprint",
    "emotion_name",
    "generate_file",
    "get_template",
    "load_template_file",
    "make_row",
    "match_tag",
    "parse_dialogue",
    "parse_response",
    "register_template",
    "row_seed",
    "run_jobs",
    "templates",
]
