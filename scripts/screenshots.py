"""Log in and take full-page Chromium screenshots of the main pages, to look at after UI changes.

usage: .venv/bin/python scripts/screenshots.py BASE_URL USER PASSWORD OUT_DIR
"""

import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser import CHROMIUM, CHROMIUM_ARGS, log_in

PAGES = [
    ("dashboard", "/"),
    ("responses", "/responses/"),
    ("import", "/import/"),
    ("cases", "/cases/?view=all"),
    ("quarantine", "/settings/quarantine/"),
    ("notifications", "/notifications/"),
    ("announcements", "/announcements/"),
    ("settings-policy", "/settings/follow-up/"),
    ("settings-routing", "/settings/routing/"),
    ("settings-channels", "/settings/channels/"),
    ("settings-templates", "/settings/templates/"),
    ("settings-template", "/settings/templates/automated_email_survey/en/"),
]
# Further pages named after OUT_DIR: e.g. /cases/17/ /announcements/1/; with --only first,
# just those.
EXTRA = [a for a in sys.argv[5:] if a != "--only"]
PAGES = [] if "--only" in sys.argv[5:] else PAGES
PAGES += [(p.split("?")[0].strip("/").replace("/", "-") or "home", p) for p in EXTRA]
# SHOTS_HEIGHT=900 keeps each shot to the top of the page (long lists make full pages unreadable).
FULL_PAGE = not os.environ.get("SHOTS_HEIGHT")


def main() -> None:
    base, user, password, out = sys.argv[1:5]
    Path(out).mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        height = int(os.environ.get("SHOTS_HEIGHT") or 900)
        page = browser.new_page(viewport={"width": 1280, "height": height})
        page.goto(f"{base}/login/")
        page.screenshot(path=f"{out}/login.png")
        log_in(page, base, user, password)
        for name, path in PAGES:
            page.goto(f"{base}{path}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=f"{out}/{name}.png", full_page=FULL_PAGE)
        browser.close()


if __name__ == "__main__":
    main()
