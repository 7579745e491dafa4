"""LLM-as-a-judge on a rubric (EmplifAI's seven metrics by default): format rule first, cached,
concurrent, fault-tolerant, and honest about what it could not score.

    from kyokan.judge import Judge, JudgeConfig, get_rubric, judge_file
    from kyokan.models import load_model
    judge = load_model("openai:gemini-2.5-flash", base_url=URL)
    res = judge_file("generated.jsonl", "judged.jsonl", [judge], get_rubric(), JudgeConfig(lang="ja"),
                     cache_path="judge.sqlite")
    res.summary["table"]   # source model -> metric -> {mean, sd, n, unscored, format_violations}
"""

from kyokan.judge.cache import AnswerCache, cache_key
from kyokan.judge.engine import STATUSES, CallStats, Judge, JudgeConfig, source_model
from kyokan.judge.formatrule import DEFAULT_EXCHANGES, format_violation, response_length
from kyokan.judge.pairwise import PairwiseJudge, judge_pairs_file, pair_up, summarize_pairwise
from kyokan.judge.parse import (
    Parsed,
    ParsedWinner,
    parse_score,
    parse_scores,
    parse_winner,
    parse_winners,
)
from kyokan.judge.prompts import (
    PROMPT_VERSION,
    all_in_one_messages,
    pairwise_messages,
    per_metric_messages,
)
from kyokan.judge.rubric import (
    DEFAULT_RUBRIC,
    EMPLIFAI_METRICS,
    Metric,
    Rubric,
    available_rubrics,
    get_rubric,
    load_rubric_file,
    rubric_from_dict,
)
from kyokan.judge.runner import (
    RunResult,
    ajudge_file,
    cache_path_for,
    judge_file,
    read_input,
    summary_path_for,
)
from kyokan.judge.summary import summarize, table4_markdown

__all__ = [
    "DEFAULT_EXCHANGES",
    "DEFAULT_RUBRIC",
    "EMPLIFAI_METRICS",
    "PROMPT_VERSION",
    "STATUSES",
    "AnswerCache",
    "CallStats",
    "Judge",
    "JudgeConfig",
    "Metric",
    "PairwiseJudge",
    "Parsed",
    "ParsedWinner",
    "Rubric",
    "RunResult",
    "ajudge_file",
    "all_in_one_messages",
    "available_rubrics",
    "cache_key",
    "cache_path_for",
    "format_violation",
    "get_rubric",
    "judge_file",
    "judge_pairs_file",
    "load_rubric_file",
    "pair_up",
    "pairwise_messages",
    "parse_score",
    "parse_scores",
    "parse_winner",
    "parse_winners",
    "per_metric_messages",
    "read_input",
    "response_length",
    "rubric_from_dict",
    "source_model",
    "summarize",
    "summarize_pairwise",
    "summary_path_for",
    "table4_markdown",
]
