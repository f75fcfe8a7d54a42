"""Passage search: question analysis and the SQLite FTS5 passage index."""
