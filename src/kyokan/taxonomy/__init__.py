"""Emotion taxonomies: label sets, names in English and Japanese, sentiment groups, opposites."""

from kyokan.taxonomy.model import Dyad, Label, Opposite, Taxonomy, fold
from kyokan.taxonomy.registry import (
    DEFAULT_TAXONOMY,
    available,
    get_taxonomy,
    load_taxonomy_file,
    register,
)

__all__ = [
    "DEFAULT_TAXONOMY",
    "Dyad",
    "Label",
    "Opposite",
    "Taxonomy",
    "available",
    "fold",
    "get_taxonomy",
    "load_taxonomy_file",
    "register",
]
