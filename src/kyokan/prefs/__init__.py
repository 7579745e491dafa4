"""EmPO preference pairs: chosen = the dialogue's own last listener turn; rejected = a reply from a
dialogue of the opposite emotion (or a same-situation hard negative, or a generated reply),
redrawn every epoch from a generator seeded by (seed, epoch)."""

from kyokan.prefs.build import PairSet, build_pairs, make_report, write_pairs
from kyokan.prefs.check import check_rows, load_pair_dir, pairable
from kyokan.prefs.pairs import (
    ROLE_MAP,
    EpochDraw,
    PairContext,
    Unpaired,
    dialogue_prompt,
    epoch_rng,
    listener_examples,
)
from kyokan.prefs.strategies import (
    STRATEGIES,
    ModelStrategy,
    OppositeStrategy,
    SameSituationStrategy,
    Strategy,
    get_strategy,
    register_strategy,
)

__all__ = [
    "ROLE_MAP",
    "STRATEGIES",
    "EpochDraw",
    "ModelStrategy",
    "OppositeStrategy",
    "PairContext",
    "PairSet",
    "SameSituationStrategy",
    "Strategy",
    "Unpaired",
    "build_pairs",
    "check_rows",
    "dialogue_prompt",
    "epoch_rng",
    "get_strategy",
    "listener_examples",
    "load_pair_dir",
    "make_report",
    "pairable",
    "register_strategy",
    "write_pairs",
]
