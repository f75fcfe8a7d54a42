"""Markdown documents: loading them safely and splitting them into passages."""
