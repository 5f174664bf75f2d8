"""LangGraph builders: the graphs `langgraph.json` and the Python API export."""
