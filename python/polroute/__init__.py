"""polroute: an offline model of Linux policy routing, with a C core."""

from polroute._core.errors import PolicyError
from polroute.model.policy import Policy

__version__ = "0.1.0"

__all__ = ["Policy", "PolicyError", "__version__"]
