"""What the browser tests of the phone page ``/report`` share: the inspector, the phone, a login."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from server.auth.users import set_password

PASSWORD = "巡查-correct-horse-7"
PHONE = {"width": 360, "height": 800}
# Inside 511423001001001 (103.300-103.325, 29.85-29.90), a grid inspector1 walks, near its
# north edge, so the map shows the outline and the next grid (inspector2's).
POSITION = {"longitude": 103.3105, "latitude": 29.8985, "accuracy": 12}


def log_in_on_the_phone(page: Page, live_server, conn, *, position: dict = POSITION) -> Page:
    """The page at 360 px, with the phone's position granted and set, logged in as inspector1."""
    user_id = conn.execute("SELECT id FROM users WHERE username = 'inspector1'").fetchone()["id"]
    set_password(conn, user_id=user_id, password=PASSWORD)
    conn.commit()
    page.set_viewport_size(PHONE)
    page.context.grant_permissions(["geolocation"], origin=live_server.url)
    page.context.set_geolocation(position)
    page.goto(f"{live_server.url}/report")
    page.fill("input[name=username]", "inspector1")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#who")).to_have_text("张网格")
    expect(page.locator("#category option[value=sanitation]")).to_have_count(1)
    return page


def fits_the_phone_width(page: Page) -> bool:
    """Nothing sticks out sideways: no horizontal scrolling at 360 px."""
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
