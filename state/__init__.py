"""Graph state and the run-time context schema."""

from adaptsum.state.context import Context

__all__ = ["Context"]
