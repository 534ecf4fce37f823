"""Tables as files people open: CSV (with a BOM, for Excel) and XLSX workbooks."""

from __future__ import annotations

import io

import pandas as pd


def to_xlsx(sheets: dict[str, pd.DataFrame]) -> bytes:
    """Return an Excel workbook with one sheet per frame."""
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xl:
        for name, frame in sheets.items():
            frame.to_excel(xl, sheet_name=name[:31], index=False)
    return buf.getvalue()


def to_csv(frame: pd.DataFrame) -> bytes:
    """Return CSV bytes (UTF-8 with BOM, so Excel shows Chinese text)."""
    return frame.to_csv(index=False).encode("utf-8-sig")
