"""Public search API (secret keys): ranked chunks of the key's chatbot."""
