"""Use cases: the only layer that routes, workers and the CLI call."""
