"""The browser fixtures themselves: what they must catch, they catch."""

import pytest

pytestmark = pytest.mark.browser


def test_page_records_console_errors_page_errors_and_requests_leaving_the_machine(
    live_server, page, browser_problems
):
    page.goto(f"{live_server.url}/health")
    page.evaluate("console.error('deliberate console error')")
    page.evaluate(
        """() => new Promise(resolve => {
               setTimeout(() => { throw new Error('deliberate uncaught error') });
               setTimeout(resolve, 50);
           })"""
    )
    outcome = page.evaluate("fetch('http://tiles.example.org/0/0/0.png').then(() => 'sent', () => 'blocked')")

    assert outcome == "blocked"
    assert browser_problems.outside_requests == ["http://tiles.example.org/0/0/0.png"]
    assert any("deliberate console error" in text for text in browser_problems.console_errors)
    assert any("deliberate uncaught error" in text for text in browser_problems.page_errors)
    assert "deliberate uncaught error" in browser_problems.describe()
    # Seen and checked: clear them, or the page fixture would fail this test as it fails any other.
    browser_problems.clear()
