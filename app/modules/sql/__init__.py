"""Read-only SQL evidence from the SQLite databases of the data folder."""
