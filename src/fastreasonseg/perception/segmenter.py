"""Kept for imports written before the backends moved: see :mod:`fastreasonseg.perception.backends.sam2`."""

from fastreasonseg.perception.backends.sam2 import *  # noqa: F403
from fastreasonseg.perception.backends.sam2 import __all__  # noqa: F401
