"""Headless Chromium for the page tests and benchmarks (Debian's package, never a download)."""

from __future__ import annotations

import shutil
from typing import Any

# Quiet offline: no background traffic, no component updates, no first-run work.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch(playwright: Any) -> Any:
    """Return a Chromium browser started through Playwright from /usr/bin/chromium."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("Debian's chromium is missing: `make setup` installs it")
    return playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
