"""Login and logout check where the form came from: another site can neither log a browser in with a key of
its choosing (login CSRF) nor log it out; a logout from a page whose session already ended just works."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mlops.audit import list_audit
from tests.dashboard.conftest import Console, Dashboard

pytestmark = pytest.mark.slow


def test_a_login_posted_from_another_site_is_refused(dashboard: Dashboard) -> None:
    form = {"key": dashboard.keys["viewer"], "next": "/mlops/"}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = httpx.post(f"{dashboard.url}/login", data=form, headers=headers)
        assert refused.status_code == 200 and "another site" in refused.text
        assert "skippy_session" not in refused.headers.get("set-cookie", "")
    same_site = httpx.post(f"{dashboard.url}/login", data=form, headers={"Origin": dashboard.server.url})
    assert same_site.status_code == 303 and "skippy_session=" in same_site.headers["set-cookie"]
    refusals = [r for r in list_audit(dashboard.settings, action="POST /mlops/login") if r.status_code == 403]
    assert len(refusals) >= 2


def test_logout_from_another_site_does_nothing_and_a_stale_page_logs_out(
    dashboard: Dashboard, page: Any, console: Console
) -> None:
    dashboard.login(page, "viewer", "/alerts")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    forced = httpx.post(
        f"{dashboard.url}/logout", cookies=cookies, headers={"Origin": "https://evil.example"}, follow_redirects=False
    )
    assert forced.status_code == 303
    page.reload()
    page.wait_for_selector("#whoami")  # still logged in

    # The session ends elsewhere (another tab logs out): this page, drawn for it, still logs out cleanly.
    ended = httpx.post(
        f"{dashboard.url}/logout", cookies=cookies, headers={"Origin": dashboard.server.url}, follow_redirects=False
    )
    assert ended.status_code == 303
    page.click("#logout")
    page.wait_for_selector("#key")
    assert "/mlops/login" in page.url
    assert not console.errors, console.errors
