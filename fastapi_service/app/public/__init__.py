"""Cross-cutting rules of the public API: allowed Origins and CORS."""
