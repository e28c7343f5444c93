"""The web page driven end to end in headless Chromium (Python playwright on the system's chromium).

CI installs ``/usr/bin/chromium`` (``.ci/run``); without it locally the test is skipped with the reason.
Screenshots are written to ``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium (apt-get install chromium; CI installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            pg = ctx.new_page()
            pg.set_default_timeout(120_000)
            yield pg
        finally:
            ctx.close()
    shutil.rmtree(profile, ignore_errors=True)


def _overlay_loaded(page) -> None:
    page.wait_for_function(
        "() => { const i = document.getElementById('overlay');"
        " return !i.hidden && i.complete && i.naturalWidth > 0 && i.src.includes('/results/'); }"
    )


def test_example_in_browser(server, page):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    assert page.title() == "FastReasonSeg"
    page.click("#example-btn")
    page.wait_for_function("() => !document.getElementById('query').disabled")
    page.wait_for_selector("#instances tbody tr")
    assert page.locator("#instances tbody tr").count() == 6
    assert "cup" in page.inner_text("#instances")
    page.fill("#query", "what would I drink coffee from?")
    page.click("#ask-btn")
    _overlay_loaded(page)
    assert "<answer>" in page.inner_text("#rollout")
    assert page.inner_text("#answer").startswith(("Answer:", "No target."))
    assert page.locator("#error").is_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_example.png"), full_page=True)
    assert not errors, errors


def test_upload_in_browser(server, page, photo):
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(photo))
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('ready')")
    page.wait_for_selector("#instances tbody tr")
    assert page.locator("#preview").is_visible()
    page.fill("#query", "the person")
    page.press("#query", "Enter")
    _overlay_loaded(page)
    assert page.locator("#rollout").inner_text().strip()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_upload.png"), full_page=True)
    # a refused upload shows the server's message
    bad = photo.parent / "notes.txt"
    bad.write_text("not an image\n" * 20)
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector("#error:not([hidden])")
    assert "415" in page.inner_text("#error")


TOKEN = "browser-test-token-0123456789"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    from .conftest import ServerProcess

    root = tmp_path_factory.mktemp("web-token")
    srv = ServerProcess(root / "store", ["--token", TOKEN, "--log-level", "warning"], root / "server.log")
    srv.start()
    yield srv
    srv.stop()


def test_page_with_a_token(token_server, page):
    """Without the token the page asks for it; the link `fastreasonseg serve` prints signs in, and the example works
    (the overlay image is fetched with the cookie)."""
    page.context.clear_cookies()
    page.goto(token_server.url + "/")
    page.wait_for_selector("#token-form:not([hidden])")
    page.fill("#token", "wrong-token-wrong-token")
    page.click("#token-btn")
    page.wait_for_function("() => document.getElementById('error').textContent.includes('401')")
    page.goto(token_server.url + "/#token=" + TOKEN)
    page.wait_for_function("() => location.hash === ''")  # the token leaves the address bar at once
    page.wait_for_selector("#twins li")
    assert page.locator("#token-form").is_hidden()
    page.click("#example-btn")
    page.wait_for_function("() => !document.getElementById('query').disabled")
    page.fill("#query", "the spoon")
    page.click("#ask-btn")
    _overlay_loaded(page)
    assert page.locator("#error").is_hidden()
    page.context.clear_cookies()
    page.goto(token_server.url + "/")
    page.wait_for_selector("#token-form:not([hidden])")
    page.fill("#token", TOKEN)
    page.click("#token-btn")
    page.wait_for_selector("#twins li")
    assert page.locator("#token-form").is_hidden()
