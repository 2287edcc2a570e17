from . import chatbot_sync_mixin
from . import chatbot_source_mixin
from . import chatbot_outbox
from . import chatbot_prompt
from . import chatbot_chatbot
from . import chatbot_document
from . import chatbot_link
from . import chatbot_api_key
