"""Patrols recorded by grid members (server/patrols/service.py)."""
