"""API keys of the public API: format, resolution by SHA-256, caching, last-used tracking."""
