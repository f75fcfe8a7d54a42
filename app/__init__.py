"""Runlane: a file-backed run-lifecycle API for long answer-generation pipelines."""

__version__ = "1.0.0"
