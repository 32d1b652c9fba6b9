"""The browser harness itself: Chromium starts headless and shows a page the daemon serves."""

from __future__ import annotations

from pathlib import Path

from tests.browser import chromium, needs_chromium
from tests.conftest import Running


@needs_chromium
async def test_chromium_reads_the_daemon_status(gasoline: Running, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as context:
        page = await context.new_page()
        response = await page.goto(f"{gasoline.api}/daemon/status")
        assert response is not None and response.status == 200
        assert '"accounting"' in await page.content()
