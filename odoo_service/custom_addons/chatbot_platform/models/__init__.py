# mixins first: the concrete models inherit from them
from . import chatbot_sync_mixin  # noqa: F401, I001
from . import chatbot_source_mixin  # noqa: F401
from . import (  # noqa: F401
    chatbot_api_key,
    chatbot_chatbot,
    chatbot_conversation,
    chatbot_conversation_browser,
    chatbot_conversation_transcript,
    chatbot_document,
    chatbot_handoff,
    chatbot_link,
    chatbot_outbox,
    chatbot_prompt,
    chatbot_unanswered_group,
    chatbot_unanswered_report,
    chatbot_usage_daily,
    ir_websocket,
    res_users,
)
