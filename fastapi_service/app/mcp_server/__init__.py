"""MCP tool server (streamable HTTP) over retrieval and the chat service."""
