"""The control surface in a real headless Chromium (Debian's package, driven by Playwright).

Skips when Chromium or Playwright is missing, except in CI (``CI`` set, or
``NEURALGRAPH_REQUIRE_BROWSER=1`` as ``.ci/run`` exports), where it fails: ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from analysis import peak_frequency, rms
from surface_server import SINE, fresh, serving
from test_serve_api import POLY, TOKEN

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "docs"))
import make_serve_image  # noqa: E402 - docs/make_serve_image.py: the page's picture, taken in the same browser

pytestmark = pytest.mark.slow
SR = 48000
CHROMIUM_ARGS = [*make_serve_image.CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]


def _missing(reason: str) -> None:
    if os.environ.get("CI") or os.environ.get("NEURALGRAPH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (CI installs it: see .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _missing("no Chromium installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page_of(browser):
    """Open a served patch's page; every console error or page error fails the test."""
    opened = []

    def open_page(server):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server.base}/?token={TOKEN}")
        page.wait_for_selector("#graph svg g.node")
        page.errors = errors  # the test may expect some (a refused save's 400)
        opened.append(page)
        return page

    yield open_page
    for page in opened:
        page.close()
        assert page.errors == [], f"console errors on the page: {page.errors}"


def test_the_page_shows_the_patch_and_a_slider_changes_the_sound(tmp_path, page_of):
    with serving(tmp_path, SINE, "sine.toml") as server:
        page = page_of(server)
        controls = server.surface.controls()
        assert page.locator(".control").count() == len(controls)  # one control per settable target
        assert page.locator("#graph svg g.node").count() == 3
        assert page.evaluate("location.search") == ""  # the token left the address bar for a cookie
        # the scope draws the output; picking osc by clicking its box in the graph shows its spectrum
        page.wait_for_function("Number(document.getElementById('scope').dataset.points) > 100")
        page.locator("#graph svg g.node", has_text="osc.sine").first.click()
        page.wait_for_function(
            "document.getElementById('scope').dataset.port === 'osc.out'"
            " && Number(document.getElementById('scope').dataset.points) > 100"
        )
        page.wait_for_function("Math.abs(Number(document.getElementById('spectrum').dataset.peakHz) - 220) < 2")
        assert page.locator("#port").input_value() == "osc.out"
        lit = page.evaluate("""() => { const c = document.getElementById('scope');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 150 && d[i] < 150) n++; return n; }""")
        assert lit > 500  # the trace's green pixels
        # move the frequency slider with the mouse: the engine's value and the sound follow
        slider = page.locator('[id="ctl-osc.freq"]')
        box = slider.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
        page.wait_for_function("document.getElementById('ctl-osc.freq').value > 300")
        deadline = time.monotonic() + 10
        while "osc.freq" not in server.surface.engine.settings and time.monotonic() < deadline:
            time.sleep(0.05)
        freq = server.surface.engine.settings["osc.freq"]
        assert 200 < freq < 400 and freq != 220.0  # 20 Hz·1000^0.4 ≈ 317 Hz, give or take the thumb
        shown = float(page.locator('.control[data-target="osc.freq"] input[type=number]').input_value())
        assert shown == pytest.approx(freq)
        time.sleep(0.1)
        tap = server.surface.engine.tap("osc", seconds=2.0)
        assert peak_frequency(fresh(tap, 0.3), SR) == pytest.approx(freq, abs=1.0)
        page.wait_for_function(f"Math.abs(Number(document.getElementById('spectrum').dataset.peakHz) - {freq}) < 2")
        # the editor: a broken save shows the located error inline, and the sound goes on
        out = server.surface.engine.tap(None, seconds=4.0)
        out.read()
        page.locator("#source").fill(SINE.replace('type = "math.mul"', 'type = "math.mull"'))
        assert page.errors == []
        page.locator("#save-source").click()
        page.wait_for_selector("#problems li")
        # the browser logs the refused PUT itself; nothing else may appear
        assert [e for e in page.errors if "400 (Bad Request)" not in e] == [] and len(page.errors) == 1
        page.errors.clear()
        problem = page.locator("#problems li").first.inner_text()
        assert "sine.toml:13:" in problem and "NG110" in problem and "math.mull" in problem
        assert page.locator("#gutter .err").inner_text() == "13"
        assert "still playing" in page.locator("#editor-state").inner_text()
        played = fresh(out, 0.2)
        windows = played[: len(played) // 480 * 480].reshape(-1, 480)
        assert min(rms(w) for w in windows) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
        assert server.surface.path.read_text() == SINE


def test_the_on_screen_keyboard_plays_a_midi_patch(tmp_path, page_of):
    with serving(tmp_path, POLY, "poly.toml") as server:
        page = page_of(server)
        assert page.locator("#keyboard-panel").is_visible()
        tap = server.surface.engine.tap(None, seconds=2.0)
        assert rms(fresh(tap, 0.1)) == 0.0
        page.wait_for_function("document.querySelector('.meter').dataset.rms !== undefined")
        assert float(page.locator(".meter").first.get_attribute("data-rms")) <= -100
        key = page.locator('.key[data-note="69"]').bounding_box()
        page.mouse.move(key["x"] + key["width"] / 2, key["y"] + key["height"] - 10)
        page.mouse.down()  # hold A4
        page.wait_for_function("Number(document.querySelector('.meter').dataset.rms) > -20")
        held = fresh(tap, 0.3)
        assert rms(held) > 0.2 and peak_frequency(held, SR) == pytest.approx(440.0, abs=1.5)
        page.locator("#port").select_option("osc.out")
        page.wait_for_function("Number(document.getElementById('scope').dataset.points) > 100")
        page.mouse.up()
        page.wait_for_function("Number(document.querySelector('.meter').dataset.rms) < -60")
        # the computer keyboard: A is C4 (MIDI 60)
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.down("a")
        page.wait_for_function("Number(document.querySelector('.meter').dataset.rms) > -20")
        assert peak_frequency(fresh(tap, 0.3), SR) == pytest.approx(261.63, abs=1.5)
        page.keyboard.up("a")
        # Listen: the output tap reaches the page's Web Audio player
        page.locator("#listen").click()
        page.wait_for_function("listen.blocks > 10")
        page.locator("#listen").click()
