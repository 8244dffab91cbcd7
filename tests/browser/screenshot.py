"""Save docs/screenshot.png: the main view after one answer, from a running app (not a test).

    python app.py &                      # the real offline default preset
    python -m tests.browser.screenshot [--url http://127.0.0.1:7860] [--prompt TEXT] [--out docs/screenshot.png]
"""

from __future__ import annotations

import argparse
import re

from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import ARGS, CHROMIUM


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:7860")
    p.add_argument("--prompt", default="Write one sentence about the sea.")
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--out", default="docs/screenshot.png")
    args = p.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1100})
        page.set_default_timeout(600_000)
        expect.set_options(timeout=600_000)
        page.goto(args.url)
        expect(page.locator("#model0 input")).not_to_have_value("")
        page.get_by_text("Decoding").click()
        box = page.locator("#max_new_tokens input[type=number]")
        box.fill(str(args.max_new_tokens))
        box.press("Enter")
        page.get_by_text("Decoding").click()
        page.locator(".label-wrap", has_text="Models").click()  # fold the picker so the columns fit
        page.locator("#prompt textarea").fill(args.prompt)
        page.locator("#send").click()
        expect(page.locator("#col-fused [data-testid='bot']")).to_have_count(1)
        expect(page.locator("#status")).not_to_contain_text(re.compile("generating|loading"))
        page.locator("#col-fused span.tok").nth(3).hover()  # show one share tooltip
        page.screenshot(path=args.out, full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
