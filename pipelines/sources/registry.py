"""The one list of upstream sources. Adding a host is one module under `pipelines/sources/`, one
simulator module, and one line here (docs/ADDING_A_SOURCE.md)."""
