"""Dashboard text: every label in both languages; the language comes from the URL or the settings."""

import pytest

from dashboard.i18n import LANGUAGES, MESSAGES, language_of_query, resolve_language
from server.app import create_app
from server.settings import Settings


def test_every_message_exists_in_every_language():
    missing = [
        (key, language)
        for key, entry in MESSAGES.items()
        for language in LANGUAGES
        if not entry.get(language)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("search", "expected"),
    [("?lang=en", "en"), ("?lang=zh", "zh"), ("", "zh"), (None, "zh"), ("?lang=fr", "zh"), ("?lang=", "zh")],
)
def test_the_query_chooses_the_language_else_the_default(app, search, expected):
    with app.app_context():
        assert language_of_query(search) == expected


def test_the_default_language_is_configurable(database_url, tmp_path):
    app = create_app(Settings(database_url=database_url, var_dir=tmp_path, default_language="en"))
    try:
        with app.app_context():
            assert resolve_language(None) == "en"
            assert resolve_language("zh") == "zh"
    finally:
        app.extensions["gridwatch.db"].close()
