"""``holds(A, B)``: the objects of A that B rests on (``on`` read backwards): "what is the cup sitting on?" is
``holds(all, cup)``, "the shelf with the books" is ``holds(shelf, book)``."""

from fastreasonseg.reasoning.tools.kinds import relation_tool
from fastreasonseg.reasoning.tools.on import resting_on

TOOL = relation_tool("holds", "holding", lambda a, b, s: resting_on(b, a, s), "A that B is on")
