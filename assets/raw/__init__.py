"""Raw layer: the crawl of every registered source (pipelines.sources.registry) into the raw response archive."""
