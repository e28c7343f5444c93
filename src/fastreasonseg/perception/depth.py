"""Kept for imports written before the backends moved: see :mod:`fastreasonseg.perception.backends.depth_anything`."""

from fastreasonseg.perception.backends.depth_anything import *  # noqa: F403
from fastreasonseg.perception.backends.depth_anything import __all__  # noqa: F401
