"""A seamless partition of the county: townships, villages/communities and grids as nested
Voronoi cells of settlement points, each clipped to its parent, so every level tiles its parent
exactly (no gap, no overlap up to floating-point noise) and the grids tile the county.

Grids follow households: each village is split into as many grids as its households need
(30–150 households a grid; fewer per grid in the mountains, more in town) by recursive median
bisection of its household points, and a grid is the Voronoi cell of its group's medoid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon

from server.demo.boundary import COUNTY_CODE, polygons_only
from server.demo.names import TOWNSHIPS, community_names, village_names
from server.demo.settlements import Settlements, distance_km, ruggedness

GRID_COUNT = 2184  # what Hongya really divided
MIN_HOUSEHOLDS, MAX_HOUSEHOLDS = 30, 150


@dataclass
class Area:
    code: str
    level: str
    parent: int | None  # index of the parent in the partition's list
    name_zh: str
    name_en: str
    geom: MultiPolygon
    households: int = 0
    population: int = 0
    urban: bool = False
    ruggedness: float = 0.0


@dataclass(frozen=True)
class Partition:
    areas: list[Area]  # county first, then townships, villages, grids (parents before children)
    household_grid: np.ndarray  # (H,) index into `areas` of the grid each household lives in

    def indices(self, level: str) -> np.ndarray:
        return np.array([i for i, area in enumerate(self.areas) if area.level == level])

    def township_of(self) -> np.ndarray:
        """For each area, the index of its township (-1 for the county)."""
        township = np.full(len(self.areas), -1)
        for index, area in enumerate(self.areas):  # parents come before children
            if area.level == "township":
                township[index] = index
            elif area.parent is not None:
                township[index] = township[area.parent]
        return township


def voronoi_cells(seeds: np.ndarray, within) -> list[MultiPolygon]:
    """The Voronoi cell of each seed (in seed order), clipped to `within`."""
    if len(seeds) == 1:
        return [polygons_only(within)]
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=within, ordered=True)
    return [polygons_only(shapely.intersection(cell, within)) for cell in shapely.get_parts(diagram)]


def locate(points: np.ndarray, cells: list) -> np.ndarray:
    """Index of the cell containing each point (cells tile the area; -1 outside all)."""
    tree = shapely.STRtree(cells)
    point_index, cell_index = tree.query(shapely.points(points), predicate="intersects")
    found = np.full(len(points), -1)
    found[point_index[::-1]] = cell_index[::-1]  # a point on a shared edge keeps its first cell
    return found


def bisect(points: np.ndarray, parts: int) -> list[np.ndarray]:
    """Split points into `parts` groups of near-equal size along alternating longer axes."""
    if parts == 1:
        return [points]
    left_parts = parts // 2
    spans = points.max(axis=0) - points.min(axis=0)
    order = np.argsort(points[:, int(np.argmax(spans * (np.cos(np.radians(29.7)), 1.0)))], kind="stable")
    cut = round(len(points) * left_parts / parts)
    return bisect(points[order[:cut]], left_parts) + bisect(points[order[cut:]], parts - left_parts)


def medoid(points: np.ndarray) -> np.ndarray:
    """The point nearest the centroid: unlike the centroid, always inside the group's territory."""
    return points[np.argmin(((points - points.mean(axis=0)) ** 2).sum(axis=1))]


def grid_counts(households: np.ndarray, per_grid: np.ndarray, total: int) -> np.ndarray:
    """Grids per village: proportional to households ÷ target size, summing to `total`,
    each village keeping its average grid within 45–120 households: Voronoi cells around the
    groups' medoids hold their group only roughly, and the margin keeps them within 30–150."""
    low = np.maximum(1, np.ceil(households / 120)).astype(int)
    high = np.maximum(low, households // 45)
    ideal = households / per_grid
    scale_low, scale_high = 0.01, 100.0
    for _ in range(100):
        scale = (scale_low + scale_high) / 2
        if np.clip(np.floor(ideal * scale), low, high).sum() > total:
            scale_high = scale
        else:
            scale_low = scale
    counts = np.clip(np.floor(ideal * scale_low), low, high).astype(int)
    remainders = ideal * scale_low - np.floor(ideal * scale_low)
    for village in np.argsort(-remainders, kind="stable"):
        if counts.sum() >= total:
            break
        if counts[village] < high[village]:
            counts[village] += 1
    return counts


def split_village(homes: np.ndarray, within, count: int) -> tuple[list, np.ndarray]:
    """`count` grids covering a village, and the grid (0..count-1) of each of its households."""
    seeds = np.array([medoid(group) for group in bisect(homes, count)])
    cells = voronoi_cells(seeds, within)
    return cells, locate(homes, cells)


def _split_villages(homes: list[np.ndarray], villages: list, counts: np.ndarray) -> list:
    """Split every village; a village whose cells fall outside 30–150 households gives one grid
    to the village with the most households per grid, until every grid fits (a few rounds)."""
    counts = counts.copy()
    splits = [split_village(h, v, int(c)) for h, v, c in zip(homes, villages, counts, strict=True)]
    for _ in range(50):
        sizes = [np.bincount(cells_of_home, minlength=len(cells)) for cells, cells_of_home in splits]
        too_small = [i for i, size in enumerate(sizes) if size.min() < MIN_HOUSEHOLDS and counts[i] > 1]
        too_big = [i for i, size in enumerate(sizes) if size.max() > MAX_HOUSEHOLDS]
        if not too_small and not too_big:
            return splits
        average = np.array([len(h) for h in homes]) / counts
        for village in too_small:
            counts[village] -= 1
            average[village] = np.inf  # not the receiver in this round
            receiver = int(np.argmax(np.where(np.isinf(average), -1, average)))
            counts[receiver] += 1
            for changed in (village, receiver):
                splits[changed] = split_village(homes[changed], villages[changed], int(counts[changed]))
        for village in too_big:
            counts[village] += 1
            splits[village] = split_village(homes[village], villages[village], int(counts[village]))
    raise RuntimeError("could not split the villages into grids of 30-150 households")


def township_names(settlements: Settlements) -> list[tuple[str, str]]:
    """TOWNSHIPS runs from the county seat out to the mountain township (瓦屋山镇), roughly as the
    real county does; seats take the names in order of their distance from the county seat, so
    瓦屋山镇 lands in the far, rugged south-west rather than wherever the seat search picked last."""
    by_distance = np.argsort(distance_km(settlements.seats, settlements.seats[0]), kind="stable")
    names: list[tuple[str, str]] = [TOWNSHIPS[0]] * len(TOWNSHIPS)
    for rank, seat in enumerate(by_distance):
        names[seat] = TOWNSHIPS[rank]
    return names


def build_partition(county: MultiPolygon, settlements: Settlements, rng: np.random.Generator) -> Partition:
    areas = [Area(COUNTY_CODE, "county", None, "洪雅县", "Hongya County", county)]

    township_cells = voronoi_cells(settlements.seats, county)
    for number, (cell, (name_zh, name_en)) in enumerate(
        zip(township_cells, township_names(settlements), strict=True), 1
    ):
        areas.append(Area(f"{COUNTY_CODE}{number:03d}", "township", 0, name_zh, name_en, cell))
    townships = list(range(1, len(areas)))

    seeds = settlements.village_seeds
    seed_township = locate(seeds, [areas[t].geom for t in townships])
    stems = iter(village_names(rng, len(seeds)))
    community_words = iter(community_names(int(settlements.village_is_community.sum())))
    for position, township in enumerate(townships):
        mine = np.flatnonzero(seed_township == position)
        cells = voronoi_cells(seeds[mine], areas[township].geom)
        for number, (seed_index, cell) in enumerate(zip(mine, cells, strict=True), 1):
            community = bool(settlements.village_is_community[seed_index])
            stem = next(community_words) if community else next(stems)
            suffix_zh, suffix_en = ("社区", "Community") if community else ("村", "Village")
            areas.append(
                Area(
                    code=f"{areas[township].code}{number:03d}",
                    level="village",
                    parent=township,
                    name_zh=stem + suffix_zh,
                    name_en=f"{stem} {suffix_en}",
                    geom=cell,
                    urban=community,
                    ruggedness=float(ruggedness(*seeds[seed_index])),
                )
            )
    villages = [i for i, area in enumerate(areas) if area.level == "village"]

    homes = settlements.households
    home_village = locate(homes, [areas[v].geom for v in villages])
    per_village = np.bincount(home_village[home_village >= 0], minlength=len(villages))
    target = np.array([110.0 if areas[v].urban else 80.0 - 30.0 * areas[v].ruggedness for v in villages])
    counts = grid_counts(per_village, target, GRID_COUNT)

    members = [np.flatnonzero(home_village == position) for position in range(len(villages))]
    splits = _split_villages([homes[m] for m in members], [areas[v].geom for v in villages], counts)

    household_grid = np.full(len(homes), -1)
    for position, village in enumerate(villages):
        cells, home_cell = splits[position]
        parent = areas[village]
        household_grid[members[position]] = len(areas) + home_cell
        for number, cell in enumerate(cells, 1):
            areas.append(
                Area(
                    code=f"{parent.code}{number:03d}",
                    level="grid",
                    parent=village,
                    name_zh=f"{parent.name_zh}第{number}网格",
                    name_en=f"{parent.name_en} Grid {number}",
                    geom=cell,
                    urban=parent.urban,
                    ruggedness=parent.ruggedness,
                )
            )

    _count_people(areas, household_grid, rng)
    return Partition(areas=areas, household_grid=household_grid)


def _count_people(areas: list[Area], household_grid: np.ndarray, rng: np.random.Generator) -> None:
    """Households per grid are counted from the household points; totals roll up the tree."""
    per_area = np.bincount(household_grid[household_grid >= 0], minlength=len(areas))
    for index in reversed(range(len(areas))):
        area = areas[index]
        if area.level == "grid":
            area.households = int(per_area[index])
            # Rural households are larger than urban ones; ~2.6 people a household on average.
            size = 2.4 if area.urban else 2.8
            area.population = int(round(area.households * size * rng.uniform(0.9, 1.1)))
        if area.parent is not None:
            areas[area.parent].households += area.households
            areas[area.parent].population += area.population
