"""What the importers collect while they read a file, and the one error they raise for it.

An importer reads the whole file before it writes anything, noting every bad feature or row, so
one failed run shows the user all the fixes to make instead of one per run.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.errors import ImportFailed

# The message lists this many problems; the rest are counted.
SHOWN_PROBLEMS = 20


class BadValue(Exception):
    """One value of one feature or row is unusable: noted with the others, then reported."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Problem:
    where: str  # e.g. "feature 3 (code 511423001)" or "row 7"
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.shown: list[Problem] = []
        self.count = 0

    def add(self, where: str, field: str, reason: str) -> None:
        self.count += 1
        if len(self.shown) < SHOWN_PROBLEMS:
            self.shown.append(Problem(where, field, reason))

    def __bool__(self) -> bool:
        return self.count > 0

    def raise_if_any(self) -> None:
        """Raise ImportFailed naming every problem shown; ``field`` is the first one's."""
        if not self.count:
            return
        noun = "problem" if self.count == 1 else "problems"
        lines = [f"{self.source} has {self.count} {noun}:"]
        lines += [f"  {problem}" for problem in self.shown]
        if self.count > len(self.shown):
            lines.append(f"  … and {self.count - len(self.shown)} more")
        raise ImportFailed(
            "\n".join(lines),
            field=self.shown[0].field,
            problems=[{"where": p.where, "field": p.field, "reason": p.reason} for p in self.shown],
        )
