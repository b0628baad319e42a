"""The demo's people: a grid member per grid (a few grids deliberately left without one), an
operator per township grid centre and at the county, handlers per department, and leaders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.demo.names import person_names
from server.demo.partition import Partition

GRIDS_WITHOUT_MEMBER = 24
HANDLERS_PER_DEPARTMENT = 3


@dataclass(frozen=True)
class People:
    rows: list[tuple]  # (id, username, display_name, role, department_id, phone)
    grid_member: np.ndarray  # (areas,) user id of each area's member, 0 = none
    township_operator: np.ndarray  # (areas,) user id of the operator serving each area's township
    department_handlers: dict[int, np.ndarray]  # department id → its handlers' user ids


def _phone(rng: np.random.Generator) -> str:
    return "1" + str(rng.choice([35, 36, 37, 38, 39, 58, 59, 88])) + f"{int(rng.integers(0, 10**8)):08d}"


def build_people(partition: Partition, departments: dict[int, str], rng: np.random.Generator) -> People:
    """`departments` maps id → code. User ids are assigned here, from 1."""
    areas = partition.areas
    grids = partition.indices("grid")
    # Grids left without a member are mostly remote ones: vacancies are hardest to fill there.
    remoteness = np.array([areas[g].ruggedness for g in grids]) + 0.05
    vacant = set(
        rng.choice(grids, size=GRIDS_WITHOUT_MEMBER, replace=False, p=remoteness / remoteness.sum()).tolist()
    )
    staffed = [g for g in grids if g not in vacant]
    townships = partition.indices("township")
    names = iter(person_names(rng, len(staffed) + 2 * len(townships) + 64 + 4 * len(departments)))

    rows: list[tuple] = []

    def add(username: str, role: str, department_id: int | None = None) -> int:
        rows.append((len(rows) + 1, username, next(names), role, department_id, _phone(rng)))
        return len(rows)

    grid_member = np.zeros(len(areas), dtype=np.int64)
    for grid in staffed:
        grid_member[grid] = add(f"gm{areas[grid].code}", "inspector")

    add("op_county", "operator")
    township_operator = np.zeros(len(areas), dtype=np.int64)
    for township in townships:
        township_operator[township] = add(f"op_{areas[township].code}", "operator")
        add(f"leader_{areas[township].code}", "leader")
    add("leader_county", "leader")
    township_index = partition.township_of()
    township_operator = np.where(township_index >= 0, township_operator[township_index], 0)

    department_handlers = {
        department_id: np.array(
            [
                add(f"dept_{code}_{number}", "department", department_id)
                for number in range(1, HANDLERS_PER_DEPARTMENT + 1)
            ]
        )
        for department_id, code in sorted(departments.items())
    }
    return People(rows, grid_member, township_operator, department_handlers)
