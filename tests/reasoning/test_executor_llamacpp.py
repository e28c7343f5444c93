"""The executor with the real offline model (SmolLM2-135M in llama.cpp): the grammar makes every rollout parse."""

import pytest

from fastreasonseg.errors import ModelLoadError
from fastreasonseg.reasoning import Reasoner, ReasonerConfig, format_ok

from .helpers import image_twin

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama_runtime():
    pytest.importorskip("llama_cpp")
    from fastreasonseg.reasoning.runtimes.llamacpp import LlamaCppRuntime

    try:
        return LlamaCppRuntime(n_ctx=2048, n_threads=1)
    except ModelLoadError as exc:
        pytest.skip(str(exc))


def test_constrained_rollout_parses(llama_runtime):
    twin = image_twin()
    reasoner = Reasoner(llama_runtime, ReasonerConfig(max_new_tokens=120, max_total_tokens=240, reason_chars=120))
    res = reasoner.ask(twin, "something to drink coffee from")
    assert format_ok(res.rollout), (res.rollout, res.problems)
    assert res.format_ok and set(res.ids) <= set(twin.track_ids)
    assert res.prompt_tokens > 0 and res.completion_tokens > 0 and res.decode_ms > 0
    again = reasoner.ask(twin, "the person")  # same twin: the system + scene prefix is reused
    assert again.cached_tokens > 0.8 * res.prompt_tokens
