"""retake-fsm: take an AI agent live on retake.tv and keep it live."""

__version__ = "0.1.0"
__all__ = ["__version__"]
