from . import source_status  # noqa: F401
