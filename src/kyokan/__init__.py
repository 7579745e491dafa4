"""kyokan (共感): emotion-grounded empathetic dialogue — data, preference pairs, SFT/DPO,
LLM judging and honest evaluation. Implements EmplifAI and EmPO; Japanese first."""

__version__ = "0.2.0"

__all__ = ["__version__"]
