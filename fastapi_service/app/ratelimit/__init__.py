"""Rate limits of the public API (slowapi/limits), per key and per client IP."""
