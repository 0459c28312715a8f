"""The web page in headless Chromium (Playwright driving Debian's /usr/bin/chromium)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from serve_run import free_port, make_run

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    executable = CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")
    if executable is None:
        pytest.skip("Chromium is not installed (scripts/setup.sh dev installs it with apt)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(executable), headless=True,
                                              args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_root):
    import uvicorn

    from deepmf.serve import create_app

    run_dir = make_run(tmp_path_factory, data_root)
    port = free_port()
    app = create_app(run_dir, data_dir=str(data_root))
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                             log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield base
    instance.should_exit = True
    thread.join(timeout=10)


def test_page_shows_ten_recommendations_for_a_typed_user(browser, server):
    expected = [r["title"] for r in
                httpx.get(f"{server}/users/1/recommendations?k=10").json()["items"]]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server + "/")
    page.fill("#user-input", "1")
    page.click("button[type=submit]")
    titles = page.locator("#recommendations .item .title")
    titles.nth(9).wait_for(timeout=15_000)
    assert titles.all_inner_texts() == expected
    assert page.locator("#history .item").count() == 10
    assert "user=1" in page.url
    page.close()


def test_address_opens_a_user_and_similar_movies_on_a_phone(browser, server):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(server + "/?user=2")
    page.locator("#recommendations .item").nth(9).wait_for(timeout=15_000)
    assert page.locator("#recs-title").inner_text() == "Top 10 for user 2"
    page.locator("#recommendations .title").first.click()
    page.locator("#similar .item").nth(9).wait_for(timeout=15_000)
    assert page.locator("#similar-title").inner_text().startswith("Similar to ")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways at phone width"
    page.close()


def test_unknown_user_shows_a_message(browser, server):
    page = browser.new_page()
    page.goto(server + "/?user=nobody")
    message = page.locator("#message.error")
    message.wait_for(timeout=15_000)
    assert "unknown user 'nobody'" in message.inner_text()
    page.close()
