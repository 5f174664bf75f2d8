"""Answering engines: extractive (offline) and llm (a chat model), behind one protocol."""
