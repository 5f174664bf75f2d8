"""Pluggable pieces behind stable interfaces: tokenizer, embeddings (later: chat models)."""
