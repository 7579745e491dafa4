"""Offline test helpers that users can use too: a tiny random causal LM with a real packaged
tokenizer (no network), and (from kyokan.testing.openai_server) a loopback OpenAI-compatible server."""

from kyokan.testing.openai_server import Fault, OpenAIServer, Reply
from kyokan.testing.tiny import packaged_tokenizer_dir, tiny_causal_lm

__all__ = ["Fault", "OpenAIServer", "Reply", "packaged_tokenizer_dir", "tiny_causal_lm"]
