"""HTTP clients for the upstream APIs; shared plumbing in http.py (re-exporting transport, quota, fetched, pages)."""
