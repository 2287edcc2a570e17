from . import source_status
