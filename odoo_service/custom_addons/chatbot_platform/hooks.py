import logging

from .tools import engine_client, payloads, webhooks

_logger = logging.getLogger(__name__)


def uninstall_hook(env):
    """Remove every chatbot from the engine (best effort: the module is going away, so there is
    no outbox left to retry from; failures are logged with the chatbot's UUID only)."""
    outbox = env["chatbot.outbox"]
    try:
        client = outbox._engine_client()
    except ValueError:
        _logger.warning("Chatbot uninstall: WEBHOOK_SECRET missing, engine data was not removed")
        return
    chatbots = env["chatbot.chatbot"].with_context(active_test=False).search([])
    failed = 0
    for chatbot in chatbots:
        result = client.deliver(
            "DELETE",
            chatbot._sync_path(),
            payloads.delete_payload(outbox._next_version()),
            webhooks.new_message_id(),
        )
        if result.outcome != engine_client.DELIVERED:
            failed += 1
            _logger.warning(
                "Chatbot uninstall: engine kept chatbot %s (%s)", chatbot.uuid, result.detail or result.status
            )
    _logger.info("Chatbot uninstall: removed %d of %d chatbots from the engine", len(chatbots) - failed, len(chatbots))
