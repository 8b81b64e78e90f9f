"""Scores, framework-free: djangopackages.org's own two numbers (``djangopackages``) and the Pulse
health score (``health``, configured by ``health.toml``, end-of-life dates in ``eol.toml``), plus
per-grid ranking (``grids``). Pure polars/Python: no Dagster, no warehouse; ``now`` is injected.
"""
