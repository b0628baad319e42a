"""The tables the analytics read, described for SQLAlchemy Core (only the columns they use).

The schema itself is owned by ``sql/`` (migrations); these descriptions are for composing queries,
never for creating anything.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import UserDefinedType

metadata = MetaData()


class Ltree(UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **_kw) -> str:
        return "ltree"


grids = Table(
    "grids",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", Text),
    Column("level", Text),
    Column("parent_id", Integer),
    Column("path", Ltree),
    Column("name_zh", Text),
    Column("name_en", Text),
    Column("households", Integer),
    Column("member_id", Integer),
    Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("grid_id", Integer),
    Column("category_code", Text),
    Column("status", Text),
    Column("department_id", Integer),
    Column("self_handled", Boolean),
    Column("rework_count", Integer),
    Column("reported_at", DateTime(timezone=True)),
    Column("accepted_at", DateTime(timezone=True)),
    Column("rejected_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("registered_at", DateTime(timezone=True)),
    Column("rated_at", DateTime(timezone=True)),
    Column("rating", SmallInteger),
)

departments = Table(
    "departments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", Text),
    Column("name_zh", Text),
    Column("name_en", Text),
)

categories = Table(
    "categories",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name_zh", Text),
    Column("name_en", Text),
)

patrols = Table(
    "patrols",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", Integer),
    Column("grid_id", Integer),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False)),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("display_name", Text),
)

DIALECT = postgresql.psycopg.dialect()


def compiled(statement) -> tuple[str, dict]:
    """SQL text and its bound values for a psycopg cursor: every value stays a parameter."""
    # render_postcompile: IN lists become one bound parameter per value (SQLAlchemy otherwise
    # leaves a placeholder for its own execution step, which a plain cursor does not run).
    compiled_statement = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return str(compiled_statement), compiled_statement.params


def fetch(conn, statement) -> list[dict]:
    """Run a composed statement on a psycopg connection."""
    text, params = compiled(statement)
    return conn.execute(text, params).fetchall()
