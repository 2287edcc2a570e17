from . import chatbot_api_key_wizard
from . import chatbot_api_key_reveal
from . import chatbot_test_chat_wizard
