"""Fixtures every test folder shares: where the DAVIS-2016 data is.

``davis2016`` is the committed fixture in the DAVIS-2016 layout (``tests/data/fixtures/davis2016``: sequence
``blackswan``, 3 frames of 32x24, written by ``tests/data/make_fixtures.py``), so the tests that need DAVIS files run
everywhere. ``davis2016_full`` is the real DAVIS-2016 val set (20 sequences, 480p) for the extra tests that check the
readers and the oracle against real annotations: ``../shared/data/davis2016`` next to the repository, or the folder
``$FASTREASONSEG_DAVIS2016`` names; those tests are skipped without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
DAVIS2016_FIXTURE = TESTS / "data" / "fixtures" / "davis2016"
DAVIS2016_FULL = Path(os.environ.get("FASTREASONSEG_DAVIS2016") or TESTS.parents[1] / "shared" / "data" / "davis2016")


@pytest.fixture(scope="session")
def davis2016() -> Path:
    """The committed DAVIS-2016-layout fixture (``blackswan``, 3 frames of 32x24)."""
    return DAVIS2016_FIXTURE


@pytest.fixture(scope="session")
def davis2016_full() -> Path:
    """The real DAVIS-2016 val set; the test is skipped when it is not there."""
    if not (DAVIS2016_FULL / "Annotations" / "480p").is_dir():
        pytest.skip(f"the full DAVIS-2016 set is not at {DAVIS2016_FULL} (set FASTREASONSEG_DAVIS2016)")
    return DAVIS2016_FULL


@pytest.fixture(scope="session", autouse=True)
def _llama_state_in_a_temp_dir(tmp_path_factory):
    """llama.cpp runtimes keep evaluated system prompts on disk; tests keep them out of the user's cache."""
    from fastreasonseg.reasoning.runtimes.llamacpp import STATE_CACHE_ENV

    old = os.environ.get(STATE_CACHE_ENV)
    os.environ[STATE_CACHE_ENV] = str(tmp_path_factory.mktemp("llama-state"))
    yield
    if old is None:
        os.environ.pop(STATE_CACHE_ENV, None)
    else:
        os.environ[STATE_CACHE_ENV] = old
