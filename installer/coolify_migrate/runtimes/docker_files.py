"""Reading a small file out of a container, running or stopped (``docker cp``'s archive API)."""

from __future__ import annotations

import io
import tarfile
from typing import Any

from docker.errors import APIError, NotFound

MAX_BYTES = 256 * 1024


def read_text(container: Any, path: str, *, limit: int = MAX_BYTES) -> str | None:
    """The file's text, or None when the container has no such file (or it is not text)."""
    try:
        stream, stat = container.get_archive(path)
    except (NotFound, APIError):
        return None
    if int(stat.get("size", 0)) > limit:
        return None
    buf = io.BytesIO()
    for chunk in stream:
        buf.write(chunk)
        if buf.tell() > limit + 4096:  # the tar header and padding aside, it is too large
            return None
    buf.seek(0)
    try:
        with tarfile.open(fileobj=buf) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            handle = tar.extractfile(member) if member is not None else None
            data = handle.read(limit + 1) if handle is not None else None
    except tarfile.TarError:
        return None
    if data is None or len(data) > limit:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
