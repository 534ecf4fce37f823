"""The photo store: files named by the SHA-256 of their bytes under one folder
(`folder/ab/cd/<sha256>`), written atomically, readable by the service's user only.

One small interface (`put`, `path`, `open`, `exists`) so that another backend (an object
store) can stand in for the folder without the callers changing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from geo.errors import InvalidInput
from geo.settings import Settings

_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256(data: bytes) -> str:
    """Return the hex SHA-256 of `data`: a file's name in the store."""
    return hashlib.sha256(data).hexdigest()


class PhotoStore:
    """Content-addressed files under `folder` (0700 folders, 0600 files)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, digest: str) -> Path:
        """Return where the file named `digest` lives (whether or not it exists)."""
        if not _SHA256.fullmatch(digest):
            raise InvalidInput(f"not a SHA-256 in hex: {digest[:80]!r}")
        return self.folder / digest[:2] / digest[2:4] / digest

    def exists(self, digest: str) -> bool:
        """Return whether the file named `digest` is stored."""
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        """Return the stored file named `digest`, open for reading (FileNotFoundError if not)."""
        return self.path(digest).open("rb")

    def put(self, data: bytes) -> str:
        """Store `data` under its SHA-256 and return that; storing it again writes nothing."""
        digest = sha256(data)
        target = self.path(digest)
        if target.is_file():
            return digest
        _folders(self.folder, digest)
        # A temporary file in the same folder, renamed over: a reader never sees half a file,
        # and two writers of the same bytes both end with the one whole file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # the database row that names it may commit next
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return digest


def _folders(root: Path, digest: str) -> None:
    # Path.mkdir(parents=True) makes parents with the umask's mode (0755): each level here.
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in (root / digest[:2], root / digest[:2] / digest[2:4]):
        folder.mkdir(mode=0o700, exist_ok=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_for(settings: Settings) -> PhotoStore:
    """Return the photo store the settings name (default: `photos/` under the cluster home)."""
    return PhotoStore(settings.photos.folder or settings.cluster.home / "photos")
