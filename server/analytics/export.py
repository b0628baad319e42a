"""Tables for Excel and WPS: CSV (UTF-8 with a byte-order mark, so Excel reads the Chinese) and
XLSX (a title row naming the period, numbers as numbers, rates as percentages)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    kind: str = "count"  # count | rate | number | text


def csv_bytes(columns: Sequence[Column], rows: Sequence[dict], *, lang: str = "zh") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.zh if lang == "zh" else column.en for column in columns])
    for row in rows:
        writer.writerow([_csv_value(row.get(column.key), column.kind) for column in columns])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def _csv_value(value, kind: str):
    if value is None:
        return ""
    if kind == "rate":
        return f"{value * 100:.2f}%"
    return value


def xlsx_bytes(
    columns: Sequence[Column], rows: Sequence[dict], *, title: str, sheet: str, lang: str = "zh"
) -> bytes:
    workbook = Workbook()
    worksheet = workbook.active
    # Excel refuses these in a sheet's name (乡镇/街道 has a slash).
    worksheet.title = re.sub(r"[\\/*?:\[\]]", "·", sheet)[:31]
    worksheet.append([title])
    worksheet["A1"].font = Font(bold=True, size=13)
    worksheet.append([column.zh if lang == "zh" else column.en for column in columns])
    for cell in worksheet[2]:
        cell.font = Font(bold=True)
    for row in rows:
        worksheet.append([row.get(column.key) for column in columns])
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        number_format = {"rate": "0.00%", "number": "0.0", "count": "0"}.get(column.kind)
        if number_format:
            for (cell,) in worksheet.iter_rows(min_row=3, min_col=index, max_col=index):
                cell.number_format = number_format
        header = column.zh if lang == "zh" else column.en
        worksheet.column_dimensions[letter].width = max(10, min(40, 2 * len(header) + 2))
    worksheet.freeze_panes = "B3"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
