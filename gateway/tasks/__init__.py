"""Downsampling tasks: Flux programs run on a wall-clock schedule, with persisted run history,
ordered catch-up after downtime and recomputation of windows that late data changed (see
docs/query.md, "Tasks")."""
