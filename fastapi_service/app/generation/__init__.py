"""Answer generation: prompt assembly, Ollama / OpenAI-compatible streaming, extractive fallback."""
