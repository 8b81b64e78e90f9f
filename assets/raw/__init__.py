"""Raw layer: the crawl of GitHub, PyPI, GitLab, Bitbucket and Codeberg into the raw response archive."""
