"""Run services: the store, the executor and what composes them; no HTTP here."""
