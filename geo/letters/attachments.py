"""A reply's attachments: PDF, JPEG or PNG judged by content, within the size and count limits,
stored by their SHA-256 in the letters' file store (the photo store's interface, own folder).

Stored as sent: a department's documents are its own record (photos of reports lose their EXIF
because a grid worker's phone writes where they live; a scan of a rectification report has no
such data to lose).
"""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from sqlalchemy import Connection, text

from geo.errors import InvalidInput, NotFound
from geo.identity.principal import Principal
from geo.photo_store import PhotoStore
from geo.settings import LetterSettings, Settings

# By content, never by the name or the type the client claims.
SIGNATURES = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
)
# A PDF's last line is %%EOF; writers may add a little after it (the standard: 1,024 bytes).
PDF_TAIL = 1024
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\\u202a-\u202e\u2066-\u2069]")


class TooLarge(InvalidInput):
    """An attachment over `letters.max_attachment_bytes`."""


class UnsupportedType(InvalidInput):
    """A file that is not a PDF, a JPEG or a PNG by its content."""


@dataclass(frozen=True)
class Upload:
    """A file as sent: its name and bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Checked:
    """An attachment fit to store: a safe name, its type, its bytes."""

    filename: str
    content_type: str
    data: bytes


def store_for(settings: Settings) -> PhotoStore:
    """Return the letters' file store (default: `letters/` under the cluster home)."""
    return PhotoStore(settings.letters.folder or settings.cluster.home / "letters")


def _kind(data: bytes) -> tuple[str, str] | None:
    for magic, media, ext in SIGNATURES:
        if data.startswith(magic):
            return media, ext
    return None


def _safe_name(name: str, ext: str, n: int) -> str:
    base = _UNSAFE.sub("", Path(name or "").name).strip()[:150]
    if not base:
        base = f"attachment-{n}"
    return base if base.lower().endswith("." + ext) else f"{base}.{ext}"


def _check_content(f: Upload, n: int, media: str, max_pixels: int) -> None:
    """Raise UnsupportedType unless the file is whole: a PDF ends with its %%EOF marker (an
    HTML page behind a PDF signature does not), an image's header reads and its pixels are
    within `max_pixels` (a 12,000 x 12,000 PNG of 0.4 MB decodes to 576 MB in a browser)."""
    name = f.filename or f"file {n}"
    if media == "application/pdf":
        if b"%%EOF" not in f.data[-PDF_TAIL:]:
            raise UnsupportedType(
                f"{name} starts like a PDF but does not end like one (no %%EOF): send the "
                "whole file as saved"
            )
        return
    try:
        with Image.open(io.BytesIO(f.data)) as im:
            size = im.width * im.height
            im.verify()
    except Image.DecompressionBombError:
        size = max_pixels + 1
    except Exception:  # Pillow raises many kinds on a damaged file
        raise UnsupportedType(f"{name} starts like an image but cannot be read") from None
    if size > max_pixels:
        raise UnsupportedType(
            f"{name} has more than {max_pixels:,} pixels: send a smaller image or a PDF"
        )


def check(files: list[Upload], rules: LetterSettings, max_pixels: int) -> list[Checked]:
    """Return the files checked: InvalidInput past the count, TooLarge past the size,
    UnsupportedType for anything but a whole PDF, or a readable JPEG or PNG of at most
    `max_pixels`."""
    if len(files) > rules.max_attachments:
        raise InvalidInput(
            f"a reply takes at most {rules.max_attachments} attachments; {len(files)} were sent"
        )
    out = []
    for n, f in enumerate(files, 1):
        if len(f.data) > rules.max_attachment_bytes:
            raise TooLarge(
                f"{f.filename or f'file {n}'} is over {rules.max_attachment_bytes:,} bytes, the "
                "limit for an attachment: send a smaller or more compressed file"
            )
        kind = _kind(f.data)
        if kind is None:
            raise UnsupportedType(
                f"{f.filename or f'file {n}'} is not a PDF, JPEG or PNG (judged by its "
                "content): convert it to PDF"
            )
        _check_content(f, n, kind[0], max_pixels)
        out.append(Checked(_safe_name(f.filename, kind[1], n), kind[0], f.data))
    return out


def save(
    conn: Connection, store: PhotoStore, letter_id: uuid.UUID, files: list[Checked], who: Principal
) -> list[dict]:
    """Store the files and their rows (in the caller's transaction); return what was kept.

    A file whose row then rolls back stays in the store unnamed, as a photo's would: content
    addressed, harmless, and stored once if sent again."""
    kept = []
    for f in files:
        digest = store.put(f.data)
        aid = uuid.uuid4()
        conn.execute(
            text(
                "INSERT INTO letter_attachments (id, letter_id, sha256, content_type, filename, "
                "bytes, uploaded_by) VALUES (:id, :letter, :sha, :type, :name, :bytes, :by)"
            ),
            {
                "id": aid,
                "letter": letter_id,
                "sha": digest,
                "type": f.content_type,
                "name": f.filename,
                "bytes": len(f.data),
                "by": who.user_id,
            },
        )
        kept.append({"id": str(aid), "filename": f.filename, "bytes": len(f.data)})
    return kept


def served(
    conn: Connection, store: PhotoStore, letter_id: uuid.UUID, attachment_id: uuid.UUID
) -> tuple[Path, str, str]:
    """Return (path, type, filename) of an attachment of a letter the caller sees (the caller
    checks the letter first); NotFound when it is not that letter's."""
    row = conn.execute(
        text(
            "SELECT sha256, content_type, filename FROM letter_attachments "
            "WHERE id = :id AND letter_id = :letter"
        ),
        {"id": attachment_id, "letter": letter_id},
    ).one_or_none()
    if row is None or not store.exists(row.sha256):
        raise NotFound(f"no attachment {attachment_id} on this letter")
    return store.path(row.sha256), row.content_type, row.filename
