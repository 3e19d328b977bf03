"""Hardware profiles: one TOML data file per chip, every number with its source.

The profiles and their loader arrive with the deploy issue (see docs/architecture.md).
"""
