"""Conversations of the public API: chat turns, sessions, feedback."""
