"""Runnable scripts shipped with the package (the smoke-test gate)."""
