from . import (  # noqa: F401
    chatbot_api_key_reveal,
    chatbot_api_key_wizard,
    chatbot_document_upload_wizard,
    chatbot_qa_wizard,
    chatbot_test_chat_wizard,
)
