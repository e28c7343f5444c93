"""Kept for imports written before the backends moved: see :mod:`fastreasonseg.perception.backends.owlv2`."""

from fastreasonseg.perception.backends.owlv2 import *  # noqa: F403
from fastreasonseg.perception.backends.owlv2 import __all__  # noqa: F401
