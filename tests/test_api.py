"""The Python API on the example twin with the real offline reasoner, and on a zero-instance twin."""

import json

import numpy as np
import pytest

from fastreasonseg import FastReasonSeg
from fastreasonseg.api import SourceFrames, example_twin_path
from fastreasonseg.errors import InputError
from fastreasonseg.twin import DigitalTwin, Frame, Source

llama_cpp = pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def frs():
    return FastReasonSeg()


def test_ask_many_on_one_twin_reuses_the_prefix(frs, tmp_path):
    twin = frs.load_twin("example")
    first = frs.ask(twin, "what would I stir my coffee with?")
    second = frs.ask(twin, "which object holds the drink?")
    assert second.rollout.cached_tokens > 0.5 * second.rollout.prompt_tokens
    for r in (first, second):
        assert set(r.ids) <= set(twin.track_ids)
        assert r.masks[0].shape == (400, 600)
        assert r.masks[0].sum() == twin.mask(0, r.ids).sum()
    out = second.save(tmp_path / "r")
    d = json.loads((out / "result.json").read_text())
    assert d["query"] == "which object holds the drink?"
    with pytest.raises(InputError, match="already exists"):
        second.save(tmp_path / "r")
    second.save(tmp_path / "r", overwrite=True)


def test_twin_is_not_mutated_by_asking(frs):
    twin = frs.load_twin(example_twin_path())
    before = twin.to_dict()
    frs.ask(twin, "the saucer")
    after = twin.to_dict()
    after["meta"].pop("source_path", None)
    before["meta"].pop("source_path", None)
    assert before == after


def test_zero_instance_twin_is_no_target_without_model_call(frs, tmp_path):
    twin = DigitalTwin(source=Source(kind="image", name="empty.png", width=8, height=6), frames=[Frame(index=0)])
    r = frs.ask(twin, "the cup")
    assert r.no_target and r.ids == [] and r.rollout.model_calls == 0
    assert not r.masks[0].any()
    r.save(tmp_path / "e")  # overlay on grey when the source is not at hand
    assert json.loads((tmp_path / "e" / "result.json").read_text())["overlay_on_source"] is False


def test_empty_query_raises(frs):
    with pytest.raises(InputError, match="empty"):
        frs.ask("example", "  ")


def test_source_frames_are_found_beside_the_twin():
    twin = DigitalTwin.load(example_twin_path())
    frames = SourceFrames.find(twin, example_twin_path())
    assert frames is not None and frames[0].shape == (400, 600, 3) and frames[0].dtype == np.uint8


def test_reasoner_spec_aliases():
    from fastreasonseg.api import resolve_reasoner_spec
    from fastreasonseg.reasoning.runtimes import DEFAULT_REASONER, parse_spec

    assert resolve_reasoner_spec("base") == resolve_reasoner_spec(" base ") == "llamacpp"
    assert DEFAULT_REASONER == "student"
    assert resolve_reasoner_spec(None) == resolve_reasoner_spec("student") == resolve_reasoner_spec(" student ")
    kind, target, options = parse_spec(resolve_reasoner_spec("student"))
    assert kind == "llamacpp" and target is None and options["lora"].endswith("student/adapter.gguf")
    assert resolve_reasoner_spec("transformers:/x") == "transformers:/x"


def test_student_adapter_runs_in_llama_cpp():
    r = FastReasonSeg("student").ask("example", "the spoon")
    assert r.rollout.model_calls >= 1 and set(r.ids) <= {1, 2, 3, 4, 5, 6}
