"""EmPO (Sotolar et al.): Tables 2, 4, 5, 7 and §4.3 from the public release (``kyokan reproduce empo``)."""

from kyokan.reproduce.empo.published import TABLE7_PAIRS, Published, published
from kyokan.reproduce.empo.run import EmpoOptions, comparison_csv, reproduce_empo

__all__ = ["TABLE7_PAIRS", "EmpoOptions", "Published", "comparison_csv", "published", "reproduce_empo"]
