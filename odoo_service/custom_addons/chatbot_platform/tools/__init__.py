"""Plain-Python helpers (no ORM): signing, keys, payloads, backoff and the engine client.

They are importable and testable without a database.
"""
