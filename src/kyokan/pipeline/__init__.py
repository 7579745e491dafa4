"""One config, one command: the whole pipeline in a run directory (``kyokan run``, ``kyokan demo``)."""

from kyokan.pipeline.config import STAGES, RunConfig, load_config
from kyokan.pipeline.runner import REGISTRY, Runner, StageContext, stage

__all__ = ["REGISTRY", "STAGES", "RunConfig", "Runner", "StageContext", "load_config", "stage"]
