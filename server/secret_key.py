"""The key that signs session cookies and page cursors.

``GRIDWATCH_SECRET_KEY`` when set; otherwise a random key generated once and kept in
``var/secret_key``, so every gunicorn worker (and every restart) signs alike: with a key per
process a login made on one worker would be unknown to the next.
"""

from __future__ import annotations

import os
import secrets
import tempfile

from server.settings import Settings


def resolve_secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    path = settings.var_dir / "secret_key"
    if not path.exists():
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        # Write a complete file under a temporary name, then link it into place: the link
        # fails if another worker won the race, and then everyone reads the winner's key.
        descriptor, temporary = tempfile.mkstemp(dir=settings.var_dir, prefix=".secret_key.")
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return path.read_text().strip()
