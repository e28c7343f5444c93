"""Transitional: the old tool set while the plan-language operators are written (see tools_old.py)."""

from fastreasonseg.reasoning.tools_old import *  # noqa: F403
from fastreasonseg.reasoning.tools_old import __all__  # noqa: F401
