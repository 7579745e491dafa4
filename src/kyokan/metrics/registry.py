"""Response metrics are a registry: a metric is one module under ``kyokan.metrics.response`` (or a
user's own) whose class is decorated with ``@register_metric``. Each metric returns per-example
values (one dict per example, ``None`` where undefined) and optional system-level fields; the
runner turns every numeric per-example field into a system mean with a bootstrap 95% interval."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kyokan.errors import KyokanError


@dataclass
class Example:
    """One generated reply to score: ``context`` is the last speaker turn (the prompt), ``history``
    all turns before the reply, ``reference`` the gold reply when there is one."""

    id: str
    response: str
    context: str
    reference: str | None = None
    lang: str = "en"
    history: list[dict[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricOutput:
    per_example: list[dict[str, float | int | None]]
    #: fields reported as-is in summary.json under the metric's name (counts, coverage, versions)
    system: dict[str, Any] = field(default_factory=dict)
    #: per-example fields that get a mean and bootstrap CI (default: every numeric field)
    aggregate: list[str] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    licenses: list[dict[str, str]] = field(default_factory=list)


@dataclass
class MetricContext:
    """Settings shared by all metrics of one run (the CLI fills it from its options)."""

    lang: str = "en"
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    out_dir: str | None = None
    #: utterances of the reference corpus (for NIDF count tables built on the fly)
    reference_corpus: list[str] | None = None
    #: the metric profile whose rules apply (kyokan.metrics.profiles)
    profile: str = "kyokan"


class ResponseMetric(ABC):
    name: str = ""
    #: a short statement of the definition, copied into summary.json
    definition: str = ""

    def available(self, ctx: MetricContext) -> str | None:
        """None when the metric can run with these settings, else why not (it is then skipped
        and the reason recorded)."""
        return None

    @abstractmethod
    def compute(self, examples: list[Example], ctx: MetricContext) -> MetricOutput:
        ...


_REGISTRY: dict[str, type[ResponseMetric]] = {}


def register_metric(cls: type[ResponseMetric]) -> type[ResponseMetric]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    import kyokan.metrics.response  # noqa: F401 - registers the built-in metrics


def available_metrics() -> list[str]:
    _load_builtin()
    return list(_REGISTRY)


def get_metric(name: str) -> ResponseMetric:
    _load_builtin()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise KyokanError(f"unknown metric {name!r}; available: {', '.join(_REGISTRY)}") from None


MetricFactory = Callable[[], ResponseMetric]
