"""OpenAI-compatible Chat Completions API over the chat service."""
