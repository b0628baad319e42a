"""The API docs page under its Content-Security-Policy: its one inline script runs (allowed by
hash), and each answer shows its meaning and schema, errors included."""

from __future__ import annotations

from playwright.sync_api import expect


def test_the_docs_page_renders_every_operation_with_its_answers(live_server, page):
    response = page.goto(f"{live_server.url}/api/v1/docs")
    policy = response.headers["content-security-policy"]
    assert (
        "script-src 'self' 'sha256-" in policy
        and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    expect(page.locator(".op").first).to_be_visible()
    assert page.locator(".op").count() >= 30
    filing = page.locator(".op", has_text="/api/v1/incidents").filter(has_text="File an incident")
    expect(filing).to_contain_text("Malformed input: error.field names")
    expect(filing).to_contain_text("unknown field or parameter")
    answer = filing.locator("details", has=page.locator("summary", has_text="application/geo+json")).first
    answer.locator("summary").click()
    expect(answer.locator("pre")).to_contain_text('"possible_duplicates"')
