"""Tables as files people open: CSV (with a BOM, for Excel) and XLSX workbooks."""

from __future__ import annotations

import io

import pandas as pd

# Text starting with one of these is run as a formula by Excel and LibreOffice (a user's or
# an area's name written =HYPERLINK(...)): OWASP's CSV injection.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert_sql(expression: str) -> str:
    """SQL: the text `expression` as `to_csv` writes it, for exports written by COPY."""
    starts = ", ".join(f"chr({ord(c)})" for c in FORMULA_START)
    return (
        f"CASE WHEN left({expression}, 1) IN ({starts}) "
        f"THEN chr(39) || {expression} ELSE {expression} END"
    )


def _text_columns(frame: pd.DataFrame) -> list[int]:
    return [
        j
        for j, col in enumerate(frame.columns)
        if pd.api.types.is_object_dtype(frame[col]) or pd.api.types.is_string_dtype(frame[col])
    ]


def _inert(value: object) -> object:
    """Return text a spreadsheet would run as a formula behind an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_xlsx(sheets: dict[str, pd.DataFrame]) -> bytes:
    """Return an Excel workbook with one sheet per frame, its text stored as text (never as a
    formula)."""
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xl:
        for name, frame in sheets.items():
            frame.to_excel(xl, sheet_name=name[:31], index=False)
            sheet = xl.sheets[name[:31]]
            for j in _text_columns(frame):
                for (cell,) in sheet.iter_rows(min_row=2, min_col=j + 1, max_col=j + 1):
                    if cell.data_type == "f":  # how openpyxl takes text that starts with =
                        cell.data_type = "s"
    return buf.getvalue()


def to_csv(frame: pd.DataFrame) -> bytes:
    """Return CSV bytes (UTF-8 with BOM, so Excel shows Chinese text), text that would start a
    formula behind an apostrophe."""
    out = frame.copy()
    for j in _text_columns(frame):
        out.iloc[:, j] = out.iloc[:, j].map(_inert)
    return out.to_csv(index=False).encode("utf-8-sig")
