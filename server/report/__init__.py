"""The inspector's phone page ``/report``: see views.py and docs/report-page.md."""
