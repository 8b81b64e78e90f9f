"""HTTP clients for the upstream APIs (see http.py for the shared plumbing)."""
