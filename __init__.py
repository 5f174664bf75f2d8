"""adaptsum: ask questions about PDFs and summarize them adaptively, offline by default.

The repository root is this package (see pyproject.toml): `graph/`, `nodes/` and
`state/` install as `adaptsum.graph`, `adaptsum.nodes` and `adaptsum.state`.
"""

from adaptsum.errors import AdaptsumError, DocumentError

__version__ = "0.1.0"

__all__ = ["AdaptsumError", "DocumentError", "__version__"]
