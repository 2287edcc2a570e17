from . import chatbot_api_key_reveal, chatbot_api_key_wizard, chatbot_test_chat_wizard  # noqa: F401
