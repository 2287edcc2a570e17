from . import handoff, source_status  # noqa: F401
