from . import controllers, models, wizard  # noqa: F401
from .hooks import uninstall_hook  # noqa: F401
