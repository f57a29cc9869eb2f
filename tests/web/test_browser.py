"""The web UI in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, against a
real server on loopback over the enriched ``test`` sample archive. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from snapearth.api.app import create_app
from snapearth.config import Settings
from tests.fixtures.enriched import EnrichedArchive
from tests.fixtures.server import LiveServer

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUERY = "floods near Valencia in October 2024"
NOW = "2026-11-25"


@pytest.fixture(scope="module")
def server(enriched_archive: EnrichedArchive) -> Iterator[LiveServer]:
    settings = Settings(data=enriched_archive.data, catalog=enriched_archive.catalog_url, log_level="WARNING")
    with LiveServer(create_app(settings)) as live:
        # the first question loads the language resources: ask it once before the browser does
        httpx.get(f"{live.url}/earthsearch", params={"q": QUERY, "now": NOW}, timeout=120).raise_for_status()
        httpx.get(f"{live.url}/earthsearch/suggest", params={"q": "Valen"}, timeout=120).raise_for_status()
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs the Debian packages chromium and chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


class Watched:
    """A page with its console errors, failed requests and tile responses recorded."""

    def __init__(self, browser: object, server: LiveServer, **context: object) -> None:
        self.context = browser.new_context(**context)  # type: ignore[attr-defined]
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.tiles: list[tuple[str, int]] = []
        self.failed: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", self._response)
        self.base = server.url

    def _response(self, response: object) -> None:
        url, status = response.url, response.status  # type: ignore[attr-defined]
        if "/tiles/" in url:
            self.tiles.append((url, status))
        if status >= 400:
            self.failed.append(f"{status} {url}")

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: object, server: LiveServer) -> Iterator[Watched]:
    page = Watched(browser, server, viewport={"width": 1280, "height": 800})
    yield page
    page.close()
    assert not page.failed, f"failed requests: {page.failed}"
    assert not page.errors, f"console errors: {page.errors}"


def search(w: Watched, query: str) -> None:
    w.page.fill("#q", query)
    w.page.press("#q", "Enter")
    w.page.wait_for_selector("#results li.result", timeout=20_000)


def test_home_redirects_browsers_to_the_ui_and_loads_fast(watched: Watched) -> None:
    started = time.perf_counter()
    watched.page.goto(watched.base + "/", wait_until="load")
    watched.page.wait_for_selector(".leaflet-container")
    watched.page.wait_for_function("document.querySelectorAll('.leaflet-basemap-pane path').length > 50")
    elapsed = time.perf_counter() - started
    assert watched.page.url.endswith("/ui/")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "web-timings.json").write_text(json.dumps({"home_load_seconds": round(elapsed, 3)}))
    watched.shot("home")


def test_ask_see_results_and_footprints(watched: Watched) -> None:
    watched.page.goto(f"{watched.base}/ui/?now={NOW}")
    search(watched, QUERY)
    cards = watched.page.locator("#results li.result")
    assert cards.count() >= 1
    chips = watched.page.locator("#chips .chip")
    kinds = {chips.nth(i).get_attribute("data-kind") for i in range(chips.count())}
    assert {"place", "period", "theme"} <= kinds
    assert "Valencia" in watched.page.locator(".chip-place").inner_text()
    # footprints of the results are drawn on the map (vector paths in the overlay pane, beyond the base map)
    footprints = watched.page.evaluate("window.snapearth.map.footprints.getLayers().length")
    assert footprints == cards.count()
    assert "q=floods" in watched.page.url
    watched.shot("results")


def test_open_item_switch_rendering_and_tiles_load(watched: Watched) -> None:
    watched.page.goto(f"{watched.base}/ui/?now={NOW}")
    search(watched, QUERY)
    watched.page.locator("#results li.result[data-key^='sentinel-2-l2a/']").first.click()
    watched.page.wait_for_selector("#detail:not([hidden]) #rendering")
    watched.page.wait_for_function("window.snapearth.map.tileStatus.loaded > 0", timeout=20_000)
    assert "item=sentinel-2-l2a" in watched.page.url
    assert watched.page.locator("#detail .assets li").count() >= 9  # bands, SCL, visual, thumbnail, masks
    watched.shot("item")
    before = len(watched.tiles)
    watched.page.select_option("#rendering", "ndvi")
    watched.page.wait_for_function("location.search.includes('render=ndvi')")
    deadline = time.monotonic() + 20
    while not any("rendering=ndvi" in u for u, _ in watched.tiles[before:]) and time.monotonic() < deadline:
        watched.page.wait_for_timeout(100)
    ndvi = [(u, s) for u, s in watched.tiles[before:] if "rendering=ndvi" in u]
    assert ndvi, "no NDVI tile was requested"
    assert all(status == 200 for _, status in ndvi), ndvi
    watched.shot("item-ndvi")


def test_more_like_this(watched: Watched) -> None:
    watched.page.goto(f"{watched.base}/ui/?now={NOW}")
    search(watched, QUERY)
    watched.page.locator("#results li.result").first.click()
    watched.page.click("#more-like-this")
    watched.page.wait_for_selector("#similar .similar-list li", timeout=20_000)
    assert watched.page.locator("#similar .similar-list li").count() >= 1


def test_before_and_after_opens_compare_with_swipe(watched: Watched) -> None:
    watched.page.goto(f"{watched.base}/ui/?now={NOW}")
    watched.page.fill("#q", "before and after the flood in Valencia, autumn 2024")
    watched.page.press("#q", "Enter")
    watched.page.wait_for_selector("#compare:not([hidden]) #swipe", timeout=20_000)
    assert "compare=" in watched.page.url
    watched.page.wait_for_function("window.snapearth.map.tileStatus.loaded > 1", timeout=20_000)
    watched.page.fill("#swipe", "25")
    clip = watched.page.evaluate("window.snapearth.map.map.getPane('imageB').style.clip")
    assert clip.startswith("rect(")
    assert all(status == 200 for _, status in watched.tiles), watched.tiles
    watched.shot("compare")


def test_compare_by_hand(watched: Watched) -> None:
    watched.page.goto(f"{watched.base}/ui/?now={NOW}&q=" + QUERY.replace(" ", "+"))
    watched.page.wait_for_selector("#results li.result >> nth=1", timeout=20_000)
    buttons = watched.page.locator("#results .compare-btn")
    buttons.nth(0).click()
    buttons.nth(1).click()
    watched.page.wait_for_selector("#compare:not([hidden]) #swipe", timeout=20_000)


def test_shared_url_and_back_button(watched: Watched, browser: object, server: LiveServer) -> None:
    watched.page.goto(f"{watched.base}/ui/?now={NOW}")
    search(watched, QUERY)
    first_url = watched.page.url
    watched.page.locator("#results li.result").first.click()
    watched.page.wait_for_selector("#detail:not([hidden]) #rendering")
    shared = watched.page.url
    item_id = watched.page.locator("#detail .result-id").inner_text()

    other = Watched(browser, server, viewport={"width": 1280, "height": 800})
    try:
        other.page.goto(shared)
        other.page.wait_for_selector("#detail:not([hidden]) .result-id", timeout=20_000)
        assert other.page.locator("#detail .result-id").inner_text() == item_id
        assert other.page.input_value("#q") == QUERY
        assert not other.errors, other.errors
    finally:
        other.close()

    watched.page.go_back()
    watched.page.wait_for_function("!location.search.includes('item=')")
    assert watched.page.url == first_url
    assert watched.page.locator("#detail").is_hidden()
    assert watched.page.locator("#results li.result").count() >= 1


def test_french_interface_and_keyboard(watched: Watched) -> None:
    watched.page.goto(f"{watched.base}/ui/?now={NOW}&lang=fr")
    assert "Interrogez" in watched.page.locator("#tagline").inner_text()
    watched.page.focus("#q")
    watched.page.keyboard.type("inondations à Valencia en octobre 2024")
    watched.page.keyboard.press("Enter")
    watched.page.wait_for_selector("#results li.result", timeout=20_000)
    first = watched.page.locator("#results li.result").first
    first.focus()
    watched.page.keyboard.press("Enter")
    watched.page.wait_for_selector("#detail:not([hidden])")
    assert re.search(r"lang=fr", watched.page.url)
    watched.shot("french")


def test_suggestions_while_typing(watched: Watched) -> None:
    watched.page.goto(f"{watched.base}/ui/?now={NOW}")
    watched.page.focus("#q")
    watched.page.keyboard.type("Valen")
    watched.page.wait_for_selector("#suggestions li", timeout=10_000)
    watched.page.keyboard.press("ArrowDown")
    watched.page.keyboard.press("Enter")
    assert "Valen" in watched.page.input_value("#q")


def test_nothing_matches_is_said_clearly(watched: Watched) -> None:
    watched.page.goto(f"{watched.base}/ui/?now={NOW}")
    watched.page.fill("#q", "snow in Rondônia in July 1990")
    watched.page.press("#q", "Enter")
    watched.page.wait_for_selector("#message:not([hidden])")
    watched.page.wait_for_function("!document.body.classList.contains('busy')")
    assert watched.page.locator("#results li.result").count() == 0
    assert watched.page.locator("#message").inner_text().strip()


def test_phone_width(browser: object, server: LiveServer) -> None:
    phone = Watched(browser, server, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        phone.page.goto(f"{server.url}/ui/?now={NOW}&q=" + QUERY.replace(" ", "+"))
        phone.page.wait_for_selector("#results li.result", timeout=20_000)
        box = phone.page.locator("#q").bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390
        phone.shot("phone")
        assert not phone.errors, phone.errors
    finally:
        phone.close()


def test_timeline_brush_narrows_the_period_and_filters_apply(watched: Watched) -> None:
    watched.page.goto(f"{watched.base}/ui/?now={NOW}&q=" + "Valencia 2024".replace(" ", "+"))
    watched.page.wait_for_selector("#timeline svg rect.bar", timeout=20_000)
    bars = watched.page.locator("#timeline svg rect.bar")
    first = bars.first.bounding_box()
    assert first is not None
    watched.page.mouse.move(first["x"] + first["width"] / 2, first["y"] + first["height"] - 1)
    watched.page.mouse.down()
    watched.page.mouse.up()
    watched.page.wait_for_function("location.search.includes('datetime=')", timeout=10_000)
    month = bars.first.get_attribute("data-month")
    assert month is not None
    assert f"datetime={month}-01" in watched.page.url
    watched.page.wait_for_function("!document.body.classList.contains('busy')")
    dates = watched.page.locator("#results .result-title strong").all_inner_texts()
    assert dates, "the narrowed period has results"
    # the sensor filter: radar only
    watched.page.select_option("#filter-sensor", "s1")
    watched.page.click("#filters button[type=submit]")
    watched.page.wait_for_function("location.search.includes('sensor=s1')")
    watched.page.wait_for_function("!document.body.classList.contains('busy')")
    keys = watched.page.locator("#results li.result").evaluate_all("els => els.map(e => e.dataset.key)")
    assert keys
    assert all(k.startswith("sentinel-1-grd/") for k in keys)
