from . import (  # noqa: F401
    test_api_keys,
    test_constraints,
    test_delivery,
    test_engine_actions,
    test_live_status,
    test_outbox,
    test_reconcile,
    test_security,
    test_source_status,
    test_tenant_forms,
    test_tools,
    test_web_client,
)
