"""The HTTP API of Runlane."""
