"""Which incidents a user may read one by one: the one rule every channel applies.

``scope_of(user)`` decides it (the REST API's rule since the start); the REST API's lists and
reads (``server.incidents.queries.visible_to``), the points of the ``incidents`` tiles
(``tiles.incidents``' scope arguments) and the change feed (``Scope.sees``) all apply the
``Scope`` it returns. Aggregates (counts per cell, hexagon or grid) are not scoped: every role
that may read a layer sees its counts (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass

ALL, GRIDS, DEPARTMENT = "all", "grids", "department"


@dataclass(frozen=True)
class Scope:
    kind: str  # ALL, GRIDS or DEPARTMENT
    # GRIDS: every grid at or below a grid the user holds as member (the finest ones carry incidents).
    grid_ids: frozenset[int] = frozenset()
    # GRIDS: the grids the user holds, which name the scope in cache keys.
    held_grid_ids: tuple[int, ...] = ()
    department_id: int | None = None

    @property
    def key(self) -> str:
        """Equal for users who see the same incidents (a tile cache key, not a user id)."""
        if self.kind == GRIDS:
            return "grids:" + ",".join(map(str, self.held_grid_ids))
        if self.kind == DEPARTMENT:
            return f"department:{self.department_id}"
        return ALL

    def sql_params(self) -> dict:
        """``scope_grids`` and ``scope_department`` for SQL: NULL where the scope does not limit."""
        return {
            "scope_grids": sorted(self.grid_ids) if self.kind == GRIDS else None,
            "scope_department": self.department_id if self.kind == DEPARTMENT else None,
        }

    def sees(self, *, grid_id: int | None, department_id: int | None) -> bool:
        """Whether an incident in ``grid_id`` (its finest grid) dispatched to ``department_id``
        is in scope."""
        if self.kind == GRIDS:
            return grid_id in self.grid_ids
        if self.kind == DEPARTMENT:
            return department_id is not None and department_id == self.department_id
        return True


SEES_ALL = Scope(ALL)


def scope_of(user) -> Scope:
    """Inspectors see the incidents in the grids they hold and below, department handlers what is
    dispatched to their department, operators, leaders and admins everything."""
    if user.role == "inspector":
        return Scope(GRIDS, grid_ids=frozenset(user.scope_grid_ids), held_grid_ids=user.held_grid_ids)
    if user.role == "department":
        # A handler without a department (not created by the API) sees nothing.
        if user.department_id is None:
            return Scope(GRIDS)
        return Scope(DEPARTMENT, department_id=user.department_id)
    return SEES_ALL
