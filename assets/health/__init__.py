"""The health room (Dagster group and DuckDB schema `health`), between core and history.

Pure scoring core, framework-free: djangopackages.org's own two numbers (``djangopackages``) and the
Pulse health score (``health``, configured by ``health.toml``, end-of-life dates in ``eol.toml``);
``now`` is injected. ``assets`` wires them into the graph (``health.package_scores``,
``health.grid_scores``), ``checks`` guards them. Per-grid ranking lives with the marts (``assets.marts.grids``).
"""
