"""A real headless Chromium for the browser-side tests (the extension, the web page).

Debian's ``chromium`` driven by Playwright for Python; Playwright's own browser download
is never used. Tests that need it skip, saying why, where Chromium is not installed.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, async_playwright

__all__ = ["CHROMIUM", "EXTENSION", "chromium", "needs_chromium"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EXTENSION = Path(__file__).resolve().parent.parent / "extension"

needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it",
)


@asynccontextmanager
async def chromium(
    profile: Path, *, extension: Path | None = None, viewport: tuple[int, int] = (1280, 800)
) -> AsyncIterator[BrowserContext]:
    """A headless Chromium with its own profile directory, the extension at ``extension``
    loaded unpacked when given; closed (every page and worker with it) on exit."""
    args = ["--no-sandbox"]
    if extension is not None:
        args += [f"--disable-extensions-except={extension}", f"--load-extension={extension}"]
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=args,
            viewport={"width": viewport[0], "height": viewport[1]},
        )
        try:
            yield context
        finally:
            await context.close()
