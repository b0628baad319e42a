"""The leaders' analytics: response indicators and coverage (docs/analytics.md)."""
