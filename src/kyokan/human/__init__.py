"""Human evaluation: survey designs (EmplifAI groups, EmPO block-randomised batches), rating
packets and a separate key, rating import with clear errors, aggregation, judge-vs-human."""

from kyokan.human.agree import agree, load_judge
from kyokan.human.design import (
    BUILDERS,
    STYLES,
    Design,
    Item,
    SurveyStyle,
    Task,
    build_emplifai,
    build_empo,
)
from kyokan.human.packets import items_from_file, packets_csv, write_design
from kyokan.human.ratings import Rating, aggregate, attention_report, load_key, read_ratings
from kyokan.human.scales import EMPLIFAI_METRICS, EMPO_DIMENSIONS, Scale

__all__ = [
    "BUILDERS",
    "EMPLIFAI_METRICS",
    "EMPO_DIMENSIONS",
    "STYLES",
    "Design",
    "Item",
    "Rating",
    "Scale",
    "SurveyStyle",
    "Task",
    "aggregate",
    "agree",
    "attention_report",
    "build_emplifai",
    "build_empo",
    "items_from_file",
    "load_judge",
    "load_key",
    "packets_csv",
    "read_ratings",
    "write_design",
]
