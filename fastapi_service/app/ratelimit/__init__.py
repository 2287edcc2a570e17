"""Rate limits of the public API (the `limits` library), per key and per client IP."""
