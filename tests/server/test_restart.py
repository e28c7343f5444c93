"""Nothing is lost when the server stops and starts again on the same store; interrupted builds are redone."""

from __future__ import annotations

import json

import pytest

from .conftest import ServerProcess, model_args

pytestmark = pytest.mark.slow


def test_restart_keeps_twins_and_results(tmp_path, tiny_models, photo):
    store = tmp_path / "store"
    srv = ServerProcess(store, [*model_args(tiny_models), "--log-level", "warning"], tmp_path / "server.log")
    srv.start()
    try:
        with srv.client() as c:
            with open(photo, "rb") as fh:
                tid = c.post("/twins", files={"file": ("astronaut.jpg", fh, "image/jpeg")}).json()["id"]
            assert srv.wait_ready(c, tid)["status"] == "ready"
            res = c.post(f"/twins/{tid}/ask", json={"query": "the person"}).json()
            ex = c.post("/twins/example/ask", json={"query": "the spoon"}).json()
    finally:
        srv.stop()

    # simulate a crash in the middle of a build: one twin left 'building' with its source, one without
    twin_dir = store / "twins"
    ready_status = json.loads((twin_dir / tid / "status.json").read_text())
    crashed = twin_dir / "crashedbuild01"
    crashed.mkdir()
    (crashed / "source.jpg").write_bytes(photo.read_bytes())
    (crashed / "status.json").write_text(
        json.dumps({**ready_status, "id": "crashedbuild01", "status": "building", "progress": 0.5})
    )
    lost = twin_dir / "lostsource0001"
    lost.mkdir()
    (lost / "status.json").write_text(json.dumps({**ready_status, "id": "lostsource0001", "status": "queued"}))
    (store / "tmp" / "partial.upload").write_bytes(b"\xff\xd8\xff half an upload")

    srv2 = ServerProcess(store, [*model_args(tiny_models), "--log-level", "warning"], tmp_path / "server2.log")
    srv2.start()
    try:
        with srv2.client() as c:
            ids = {t["id"]: t for t in c.get("/twins").json()}
            assert {tid, "example", "crashedbuild01", "lostsource0001"} <= set(ids)
            assert ids[tid]["status"] == "ready"
            assert [r["result_id"] for r in c.get(f"/twins/{tid}/results").json()] == [res["result_id"]]
            assert c.get(res["overlay_url"]).status_code == 200
            assert c.get(ex["mask_urls"]["0"]).status_code == 200
            again = c.post(f"/twins/{tid}/ask", json={"query": "the person"})
            assert again.status_code == 200 and again.json()["ids"] == res["ids"]  # deterministic decoding
            assert c.post("/twins/example/ask", json={"query": "the spoon"}).status_code == 200
            st = srv2.wait_ready(c, "crashedbuild01")
            assert st["status"] == "ready" and "requeued" in st["note"]
            st = c.get("/twins/lostsource0001").json()
            assert st["status"] == "failed" and "server stopped" in st["error"]
        assert not list((store / "tmp").iterdir())  # partial uploads are cleaned at start
    finally:
        srv2.stop()

    # --no-requeue marks interrupted builds failed; a tiny ask timeout answers 504 and the server keeps serving
    status = json.loads((crashed / "status.json").read_text())
    (crashed / "status.json").write_text(json.dumps({**status, "status": "building"}))
    srv3 = ServerProcess(
        store,
        [*model_args(tiny_models), "--no-requeue", "--ask-timeout", "0.1", "--log-level", "warning"],
        tmp_path / "server3.log",
    )
    srv3.start()
    try:
        with srv3.client() as c:
            assert c.get("/twins/crashedbuild01").json()["status"] == "failed"
            r = c.post("/twins/example/ask", json={"query": "the cup"})
            assert r.status_code == 504 and "0.1 s" in r.json()["detail"]
            assert c.get("/health").status_code == 200
    finally:
        srv3.stop()
