"""Built-in response metrics; each module registers one metric (a new metric is a new file plus
an import line here, or ``register_metric`` on a class in the user's own code)."""

from kyokan.metrics.response import bertscore, diff_epitome, iva, length, nidf, tries

__all__ = ["bertscore", "diff_epitome", "iva", "length", "nidf", "tries"]
