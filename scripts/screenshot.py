"""Save docs/screenshot.png: the main view after one answer, on the real offline default preset.

    python scripts/screenshot.py                          # starts the app in this process (offline-default)
    python scripts/screenshot.py --url http://127.0.0.1:7860  # or photographs a running one
Debian's chromium through Playwright (never `playwright install`).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.browser.conftest import ARGS, CHROMIUM  # noqa: E402


def serve(preset: str) -> tuple[str, object]:
    """The real app (app.py's make_app and Models) on a free port, with a throwaway data directory."""
    from app import Models, make_app, parse_args
    from tests.browser.server import free_port
    from ui.layout import launch_options

    port = free_port()
    args = parse_args(["--port", str(port), "--preset", preset, "--data-dir", tempfile.mkdtemp(prefix="shot-"),
                       "--preload", "--answer-seconds", "1800"])  # loaded first: a slow load takes no answer time
    demo = make_app(args, Models())
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    return f"http://127.0.0.1:{port}", demo


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="", help="a running app; default: start one here")
    p.add_argument("--preset", default="offline-default")
    p.add_argument("--system", default="You are a helpful assistant. Answer briefly.")
    p.add_argument("--prompt", default="Write a Python function that returns the n-th Fibonacci number.")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    args = p.parse_args()
    url, demo = (args.url, None) if args.url else serve(args.preset)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(900_000)
            expect.set_options(timeout=900_000)
            page.goto(url)
            expect(page.locator("#model0 input")).not_to_have_value("")
            page.get_by_text("Decoding").click()
            box = page.locator("#max_new_tokens input[type=number]")
            box.fill(str(args.max_new_tokens))
            box.press("Enter")
            page.get_by_text("Decoding").click()
            page.locator("#system textarea").fill(args.system)
            page.locator("#prompt textarea").fill(args.prompt)
            page.locator("#send").click()
            expect(page.locator("#col-fused [data-testid='bot']")).to_have_count(1)
            expect(page.locator("#status")).not_to_contain_text(re.compile("generating|loading"))
            expect(page.locator("#models-panel .label-wrap")).to_contain_text("Models: ")  # folded to its summary
            page.locator("#col-fused span.tok").nth(3).hover()  # show one share tooltip
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        if demo is not None:
            demo.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
