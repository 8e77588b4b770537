"""The one helper every durable write goes through.

Write a temporary file in the same directory, fsync it, ``os.replace`` it over the target, then
fsync the directory, so a crash leaves either the old file or the new one, never a torn one.
A symlinked target is written through to the file it points at (the link itself stays), except
for the tool's private files (``private=True``: its state), which are never reached by a link.
The temporary file is always created afresh (``O_EXCL | O_NOFOLLOW``): a link planted under its
name is removed, never written through.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

from coolify_migrate.core import bounded, faults, procs
from coolify_migrate.core import private as private_files


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o600,
    checkpoint: str | None = None,
    private: bool = False,
    tighten: bool = False,
) -> None:
    """Durably replace ``path`` with ``data``.

    An existing file keeps its mode and owner (``tighten``: minus any group and other bits); a
    new one gets ``mode``. A ``private`` file (the tool's state) always gets ``mode`` and is
    refused (exit 3) when a link or anything but a regular file sits at ``path``. ``checkpoint``
    names this write for the crash tests (see ``coolify_migrate.core.faults``).
    """
    if private:
        private_files.refuse_link(path)
        target = Path(path)
    else:
        target = Path(os.path.realpath(path))
    directory = target.parent
    keep_owner: tuple[int, int] | None = None
    try:
        st = target.stat()
        if not private:
            mode = st.st_mode & (0o7700 if tighten else 0o7777)
        keep_owner = (st.st_uid, st.st_gid)
    except FileNotFoundError:
        pass
    _remove_stale_temps(directory, target.name)
    tmp = directory / f".{target.name}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)  # never ours (a dead writer's were removed): maybe a planted link
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            if keep_owner and os.geteuid() == 0:
                os.fchown(fh.fileno(), *keep_owner)
            os.fsync(fh.fileno())
        if checkpoint:
            faults.checkpoint(f"{checkpoint}:before-replace")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    if checkpoint:
        faults.checkpoint(f"{checkpoint}:done")


def _remove_stale_temps(directory: Path, name: str) -> None:
    """A writer killed before its replace leaves its temp file (possibly holding a secret, 0600):
    remove those whose process is gone, so they never pile up or linger."""
    prefix = f".{name}.tmp-"
    for leftover in directory.glob(f"{prefix}*"):
        pid = leftover.name[len(prefix) :]
        if pid.isdigit() and int(pid) != os.getpid() and not procs.pid_alive(int(pid)):
            leftover.unlink(missing_ok=True)


def write_json(
    path: Path,
    obj: Any,
    *,
    mode: int = 0o600,
    checkpoint: str | None = None,
    private: bool = False,
) -> None:
    data = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()
    write_atomic(path, data, mode=mode, checkpoint=checkpoint, private=private)


def read_json(path: Path, *, private: bool = False, limit: int = bounded.STATE_JSON_BYTES) -> Any:
    """A JSON file the tool wrote (journal, keyring, a backup's manifest); a ``private`` one (the
    tool's state) is never read through a link. One larger than ``limit`` or nested deeper than
    ``bounded.JSON_DEPTH`` raises ``ValueError``, as bad JSON does, so a crafted file is refused
    by the caller's own handling, never read without end."""
    if private:
        data = private_files.read_bytes(path, limit=limit + 1)
        if data is None:
            raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
        raw = data
    else:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    if len(raw) > limit or bounded.too_deep(raw):
        raise ValueError(f"{path.name} is larger than {limit >> 20} MiB or nests too deep")
    return json.loads(raw.decode("utf-8"))
