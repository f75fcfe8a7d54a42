"""The run engine: state and transitions, the store, index, events, executors and upkeep; no HTTP."""
