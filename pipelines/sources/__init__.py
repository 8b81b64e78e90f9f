"""Framework-free upstream sources: one module per upstream, listed once in `registry.SOURCES`.

Nothing here imports Dagster, the asset graph or the warehouse: a source knows its settings, its
endpoints and request keys, how to fetch them politely, and how a stored body becomes typed facts.
"""
