"""Subcommands of the ``gateway`` CLI, one module each (see :mod:`gateway.cli`)."""
