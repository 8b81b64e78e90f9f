"""HTTP plumbing shared by every source: the per-host `Upstream`, connection pools, quota, pages."""
