"""Make docs/images/serve.png: the control surface playing graphs/poly_saw.toml with A4 held.

    python docs/make_serve_image.py [FOLDER]   # needs the serve and test extras and Chromium

Serves a copy of the patch with the clock backend (no sound device), opens the page in headless
Chromium (Playwright driving the system's browser), holds a key on the on-screen keyboard,
points the scope at the oscillator and takes the picture. ``docs/make_images.py`` runs it too.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import neuralgraph as ng

ROOT = Path(__file__).resolve().parent.parent
IMAGES = Path(__file__).resolve().parent / "images"
#: Headless Chromium as a root container runs it, quiet (no network of its own, updates or sync);
#: tests/test_serve_browser.py launches it the same way.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def make(folder: Path = IMAGES) -> Path:
    from make_images import shrink
    from playwright.sync_api import sync_playwright

    from neuralgraph._tools.serve import Server
    from neuralgraph._tools.serve.clock import ClockBackend
    from neuralgraph._tools.serve.surface import Surface

    out = folder / "serve.png"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "poly_saw.toml"
        shutil.copy(ROOT / "graphs" / "poly_saw.toml", path)

        def load(source):  # the file at start, then the editor's text
            if isinstance(source, Path):
                return ng.load_patch(source)
            return ng.load_patch(source, text_name=path.name, base_dir=path.parent)

        backend = ClockBackend(ng.Engine(load(path)))
        server = Server(Surface(path, backend, load), "127.0.0.1", 0, "picture")
        backend.start()
        server.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{server.base}/?token=picture")
                page.wait_for_selector("#graph svg g.node")
                key = page.locator('.key[data-note="69"]').bounding_box()
                page.mouse.move(key["x"] + key["width"] / 2, key["y"] + key["height"] - 10)
                page.mouse.down()
                page.locator("#port").select_option("osc.out")
                page.wait_for_function(
                    "document.getElementById('scope').dataset.port === 'osc.out'"
                    " && Number(document.getElementById('scope').dataset.points) > 100"
                )
                time.sleep(0.5)
                page.screenshot(path=str(out))
                page.mouse.up()
                browser.close()
        finally:
            server.stop()
    return shrink(out)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    target = make(Path(sys.argv[1]) if len(sys.argv) > 1 else IMAGES)
    print(f"wrote {target} ({target.stat().st_size // 1024} KiB)")
