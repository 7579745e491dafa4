"""One chat-model interface (messages in, text out; batched; async-friendly) and its backends.

    from kyokan.models import load_model, GenerationParams
    model = load_model("smollm2-135m")                       # packaged, offline
    model = load_model("hf:/path/to/model", adapter="lora/")  # local transformers (+ LoRA)
    model = load_model("openai:gpt-4o-mini")                  # any OpenAI-compatible endpoint
    model.generate([{"role": "user", "content": "Hi"}], GenerationParams(max_new_tokens=32)).text
"""

from kyokan.models.base import (
    ChatModel,
    Completion,
    GenerationParams,
    Message,
    ModelError,
    ServerConfigError,
    TokenLogprob,
    Usage,
    apply_stop,
)
from kyokan.models.packaged import PACKAGED, PackagedModel, ensure_local
from kyokan.models.registry import (
    Backend,
    available_backends,
    load_model,
    parse_spec,
    register_backend,
)

__all__ = [
    "PACKAGED",
    "Backend",
    "ChatModel",
    "Completion",
    "GenerationParams",
    "Message",
    "ModelError",
    "PackagedModel",
    "ServerConfigError",
    "TokenLogprob",
    "Usage",
    "apply_stop",
    "available_backends",
    "ensure_local",
    "load_model",
    "parse_spec",
    "register_backend",
]
