"""The crawl engine (framework-free): plan what is due, fetch it through the sources, archive it."""
