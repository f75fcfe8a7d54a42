"""The default pipeline: questions answered from markdown documents."""
