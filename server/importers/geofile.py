"""Read one layer of a GeoJSON, GeoPackage or Shapefile, and know how to bring it to EPSG:4326.

GDAL (through pyogrio) reads the file; PROJ (through pyproj) reprojects. Anything that makes the
whole file unusable (unreadable, no such layer, no or unknown CRS) raises ImportFailed here;
problems with single features are the caller's to collect.
"""

from __future__ import annotations

import codecs
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.raw
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

from server.coords import gcj02_to_wgs84
from server.errors import ImportFailed

PointTransform = Callable[[np.ndarray], np.ndarray]

# GCJ-02 ("Mars coordinates" of Gaode/AMap and Tencent maps) is no CRS PROJ knows: data digitised
# over such a basemap declares WGS84 but is shifted by hundreds of metres. Named explicitly with
# --source-crs, it is converted with server.coords.
GCJ02_NAMES = ("gcj02", "gcj-02")


@dataclass(frozen=True)
class GeoFile:
    columns: list[str]
    geometries: np.ndarray  # WKB per feature; None where GDAL found no readable geometry
    values: list[np.ndarray]  # one array per column, in file order
    to_wgs84: PointTransform | None  # reprojects an (n, 2) array; None when already lon/lat
    reader_warnings: list[str]  # what GDAL said while reading (why a geometry is missing)


def read_geofile(path: Path, *, layer: str | None, source_crs: str | None, encoding: str | None) -> GeoFile:
    """``encoding`` overrides the text encoding GDAL would use (a Shapefile without ``.cpg``)."""
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError as error:
            raise ImportFailed(f"unknown text encoding {encoding!r}", field="encoding") from error
    layer = _choose_layer(path, layer)
    meta, geometries, values, reader_warnings = _read_layer(path, layer, encoding)
    return GeoFile(
        columns=[str(name) for name in meta["fields"]],
        geometries=geometries,
        values=values,
        to_wgs84=_transform_to_wgs84(path, declared=_declared_crs(path, meta), source_crs=source_crs),
        reader_warnings=reader_warnings,
    )


def _choose_layer(path: Path, layer: str | None) -> str:
    try:
        names = [str(name) for name, _type in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as error:
        raise ImportFailed(
            f"{path.name} is not a readable GeoJSON, GeoPackage or Shapefile: {error}", field="path"
        ) from error
    if layer is None:
        if len(names) != 1:
            raise ImportFailed(
                f"{path.name} has {len(names)} layers ({', '.join(names)}): choose one with --layer",
                field="layer",
            )
        return names[0]
    if layer not in names:
        raise ImportFailed(
            f"{path.name} has no layer {layer!r}; its layers are: {', '.join(names)}", field="layer"
        )
    return layer


def _read_layer(
    path: Path, layer: str, encoding: str | None
) -> tuple[dict[str, Any], np.ndarray, list[np.ndarray], list[str]]:
    # GDAL reports unreadable geometries as warnings and returns no geometry for the feature:
    # keep the warnings to tell the user why.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            meta, _fids, geometries, values = pyogrio.raw.read(path, layer=layer, encoding=encoding)
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as error:
            raise ImportFailed(f"{path.name} cannot be read: {error}", field="path") from error
        except UnicodeDecodeError as error:
            raise ImportFailed(
                f"{path.name}: its text cannot be decoded as {encoding or 'the file says'} ({error}); "
                "name the encoding with --encoding (GBK for most Chinese Shapefiles without .cpg)",
                field="encoding",
            ) from error
    return meta, geometries, values, [str(warning.message) for warning in caught]


def _declared_crs(path: Path, meta: dict[str, Any]) -> str | None:
    """The CRS the file declares. GDAL reads a GeoJSON ``crs`` member it does not know as WGS84,
    which would misplace the data silently, so for GeoJSON the member itself is read."""
    if path.suffix.lower() not in (".geojson", ".json"):
        return meta["crs"]
    with path.open("rb") as file:
        document = json.load(file)
    member = document.get("crs") if isinstance(document, dict) else None
    if member is None:
        return meta["crs"]
    try:
        return str(member["properties"]["name"])
    except (KeyError, TypeError):
        return json.dumps(member, ensure_ascii=False)


def _transform_to_wgs84(path: Path, *, declared: str | None, source_crs: str | None) -> PointTransform | None:
    """A function reprojecting an (n, 2) coordinate array to lon/lat; None when already lon/lat."""
    given = source_crs or declared
    if given is not None and given.lower() in GCJ02_NAMES:
        return _from_gcj02
    if given is None:
        raise ImportFailed(
            f"{path.name} does not say which coordinate reference system it uses: "
            "pass it with --source-crs (e.g. EPSG:4543)",
            field="crs",
        )
    try:
        crs = CRS.from_user_input(given)
        if crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
            return None
        transformer = Transformer.from_crs(crs, 4326, always_xy=True)
    except (CRSError, ProjError) as error:
        raise ImportFailed(
            f"{path.name}: unknown coordinate reference system {given!r}, or none that can be "
            f"converted to EPSG:4326 ({error})",
            field="crs",
        ) from error

    def reproject(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    return reproject


def _from_gcj02(xy: np.ndarray) -> np.ndarray:
    return np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1]))
