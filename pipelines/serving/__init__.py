"""The HTTP layer of `pulse serve`: request normalisation (Django/DRF semantics), the response cache and
its representations, and the contract adapter until `assets.exports.published_api` implements it.

`pipelines.serve` is the entry point that wires these to aiohttp.
"""
