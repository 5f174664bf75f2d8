"""Graph nodes: plain functions `(state, runtime) -> dict` of state updates."""
