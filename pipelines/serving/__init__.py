"""The HTTP layer of `pulse serve`: request normalisation (Django/DRF semantics), the response cache and
its representations.

`pipelines.serve` is the entry point that wires these to aiohttp around `PublishedApi.respond`.
"""
