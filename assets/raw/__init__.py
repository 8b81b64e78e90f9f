"""Raw layer: the crawl of GitHub, PyPI, GitLab and Bitbucket into the raw response archive."""
