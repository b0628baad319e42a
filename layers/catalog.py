"""The map-layer catalog: one definition per layer, read by the tile server, TileJSON and docs.

Each layer is built by one SQL function ``tiles.<name>`` (sql/functions/tiles_<area>.sql) with one
signature: ``(z, x, y, category text[], status text[], period_start date, period_end date, role)``;
a ``scoped`` layer takes the viewer's scope too (``scope_grids integer[], scope_department integer``,
server/auth/scope.py). Roles: the five user roles of ``users.role`` plus ``public`` for an
anonymous caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PUBLIC = "public"
ROLES = (PUBLIC, "inspector", "operator", "department", "leader", "admin")
STAFF = ("inspector", "operator", "department", "leader", "admin")
FILTERS = ("category", "status", "period")
# Grid levels shown by the grid-polygon layers, by zoom (tiles.grid_level in SQL).
GRID_LEVEL_ZOOMS = {"township": (5, 9), "village": (10, 12), "grid": (13, 18)}
# The coverage layer: townships with their gaps counted when zoomed out, each grid from zoom 10.
COVERAGE_LEVEL_ZOOMS = {"township": (5, 9), "grid": (10, 18)}
# The H3 resolution of the heatmap's hexagons by zoom (tiles.density_resolution in SQL), the
# finest one stored (tiles.h3_finest: an incident counts in the ancestors of its cell there) and
# the finest one a status or period filter draws (tiles.h3_detail_finest).
DENSITY_FINEST = 10
DENSITY_RESOLUTIONS = dict(zip(range(5, 19), (3, 4, 4, 5, 6, 7, 7, 8, 9, 9, 10, 10, 10, 10), strict=True))
DENSITY_DETAIL_FINEST = 7


@dataclass(frozen=True)
class Field:
    type: str  # TileJSON field type: Number, String or Boolean
    description: str
    # Roles that may read it; None = every role that may read the layer.
    roles: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Layer:
    name: str
    title_zh: str
    title_en: str
    description: str
    geometry: str  # point or polygon
    minzoom: int
    maxzoom: int
    fields: dict[str, Field]
    roles: tuple[str, ...]
    filters: tuple[str, ...] = ()
    # Seconds a cached tile may be served although nothing changed: layers whose properties age
    # with the clock (overdue, days since patrol, age of an incident). None = until invalidated.
    max_age: int | None = None
    # Which cached tiles a change drops: "incident_point" (the tile holding the changed
    # incident), "incident_hexagon" (the tiles crossing the heatmap hexagon holding it),
    # "incident_grids" (tiles crossing the polygons of its grid and ancestors),
    # "patrol_grids" (tiles crossing a patrolled grid, or its township where the layer draws
    # townships), "grid_table" (any change to grids).
    changes_with: tuple[str, ...] = field(default_factory=tuple)
    # Lists incidents one by one: its points hold only what the viewer's scope lets them read.
    scoped: bool = False

    @property
    def function(self) -> str:
        return self.name

    def readable_by(self, role: str) -> bool:
        return role in self.roles

    def fields_for(self, role: str) -> dict[str, Field]:
        return {name: f for name, f in self.fields.items() if f.roles is None or role in f.roles}

    def shows_zoom(self, z: int) -> bool:
        return self.minzoom <= z <= self.maxzoom


# Feature ids (MVT `id`, not properties): the grid id in grid layers, the incident id for points.
_GRID_FIELDS = {
    "code": Field("String", "hierarchical grid code"),
    "name": Field("String", "Chinese name"),
    "level": Field("String", "township (zoom 5-9), village (10-12) or grid (13+)"),
}

LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            name="grids",
            title_zh="网格",
            title_en="Grids",
            description="The grid tree by level per zoom, with its member and open and overdue incidents.",
            geometry="polygon",
            minzoom=5,
            maxzoom=18,
            fields={
                **_GRID_FIELDS,
                "has_member": Field("Boolean", "a grid member is assigned"),
                "member": Field(
                    "String", "the grid member's name", roles=("inspector", "operator", "leader", "admin")
                ),
                "open": Field("Number", "open incidents (not closed or rejected)"),
                "overdue": Field("Number", "incidents closed late plus open ones past their due time"),
            },
            roles=ROLES,
            max_age=60,
            changes_with=("incident_grids", "grid_table"),
        ),
        Layer(
            name="incidents",
            title_zh="事件",
            title_en="Incidents",
            description=(
                "Counts per cell (32 x 32 per tile) when zoomed out; from zoom 15 each incident, "
                "unless the tile holds more than 4,000."
            ),
            geometry="point",
            minzoom=5,
            maxzoom=18,
            fields={
                "count": Field("Number", "incidents in the cell (cells only)"),
                "open": Field("Number", "open incidents in the cell (cells only)"),
                "category": Field("String", "category code (points only)"),
                "status": Field("String", "workflow status (points only)"),
                "priority": Field("String", "low, normal, high or urgent (points only)"),
                "age_h": Field("Number", "hours since reported (points only)"),
            },
            roles=STAFF,
            filters=FILTERS,
            max_age=60,
            changes_with=("incident_point",),
            scoped=True,
        ),
        Layer(
            name="incident_density",
            title_zh="事件热力",
            title_en="Incident density",
            description=(
                "Heatmap of H3 hexagons (resolution 3 at zoom 5 to 10 from zoom 15; at most 7 when "
                "filtered by status or period) with the total and a count per category code. "
                "The feature id is the H3 index."
            ),
            geometry="polygon",
            minzoom=5,
            maxzoom=18,
            fields={
                "h3": Field("String", "the H3 cell index (hexadecimal)"),
                "count": Field("Number", "incidents in the hexagon"),
                "<category>": Field("Number", "incidents of that category code (only the ones present)"),
            },
            roles=ROLES,
            filters=FILTERS,
            changes_with=("incident_hexagon",),
        ),
        Layer(
            name="coverage",
            title_zh="巡查覆盖",
            title_en="Patrol coverage",
            description=(
                "Grids by days since their last patrol visit, and grids without a member (from zoom 10); "
                "townships with their grids, grids without a member and grids not patrolled for 7 days "
                "(zoom 5-9)."
            ),
            geometry="polygon",
            minzoom=5,
            maxzoom=18,
            fields={
                "code": Field("String", "grid or township code"),
                "name": Field("String", "Chinese name"),
                "has_member": Field("Boolean", "a grid member is assigned (grids only)"),
                "days_since_patrol": Field(
                    "Number",
                    "whole days since the last patrol; for a township the longest among its grids; "
                    "absent when never (for a township: when one of its grids never was)",
                ),
                "grids": Field("Number", "grids in the township (townships only)"),
                "without_member": Field("Number", "grids without a member (townships only)"),
                "not_patrolled_7d": Field(
                    "Number", "grids not patrolled for 7 days or never (townships only)"
                ),
            },
            roles=("inspector", "operator", "leader", "admin"),
            max_age=600,
            changes_with=("patrol_grids", "grid_table"),
        ),
        Layer(
            name="response",
            title_zh="处置时效",
            title_en="Response",
            description="Grids (level per zoom) with the median time to close and the on-time closure rate.",
            geometry="polygon",
            minzoom=5,
            maxzoom=18,
            fields={
                **_GRID_FIELDS,
                "closed": Field("Number", "closed incidents"),
                "median_close_h": Field("Number", "median hours from report to close (within 19 %)"),
                "on_time_rate": Field("Number", "closed on time / due (0-1, docs/analytics.md)"),
            },
            roles=("operator", "department", "leader", "admin"),
            changes_with=("incident_grids", "grid_table"),
        ),
    )
}


def get_layer(name: str) -> Layer | None:
    return LAYERS.get(name)
