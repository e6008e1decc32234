"""polroute: an offline model of Linux policy routing, with a C core."""
from .errors import PolicyError
from .policy import Policy

__version__ = "0.1.0"

__all__ = ["Policy", "PolicyError", "__version__"]
