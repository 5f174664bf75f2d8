"""The persistent document index: a SQLite catalogue of documents and chunks beside Chroma."""
