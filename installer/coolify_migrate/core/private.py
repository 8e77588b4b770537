"""The tool's private files: a directory only its owner can enter, files never reached by a link.

The state directory (``<data-dir>/.coolify-migrate``) holds the keyring, the journal, the lock
and the run logs, and the tool runs as root: a symlink planted there (or the directory itself
being one) would make it truncate or write a file of the link's choosing. So:

- the directory must be a real directory owned by the user running the tool, and not writable
  by group or others (anyone who can write there can plant links); otherwise it is refused
  (exit 3) and nothing is touched. One only readable by others is tightened to 0700 with a
  warning when the tool is about to write in it;
- every file in it is opened with ``O_NOFOLLOW`` and must be a regular file: a link, a
  directory or a device where a state file belongs is refused.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from coolify_migrate.core import output
from coolify_migrate.core.errors import Refused

_HINT_LINK = "remove the link and run again; the tool's state is never reached through a link"


def _refuse(path: Path, what: str, hint: str) -> Refused:
    return Refused(f"refusing to use {path}: {what}", hint=hint, path=str(path))


def check_dir(path: Path, out: output.Output | None = None, *, tighten: bool = False) -> bool:
    """Whether the private directory ``path`` exists; refused (exit 3) when it is a link, not a
    directory, someone else's, or writable by group or others. With ``tighten`` (the caller is
    about to write in it) a directory only readable by others is made 0700, with a warning."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(path, "it is a symlink", _HINT_LINK)
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(path, "it is not a directory", "move that file away and run again")
    if st.st_uid != os.geteuid():
        raise _refuse(
            path,
            f"it belongs to uid {st.st_uid}, not to the user running the tool ({os.geteuid()})",
            f"run as its owner, or check its contents and 'chown' it to uid {os.geteuid()}",
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        raise _refuse(
            path,
            f"it is writable by group or others (mode {mode:04o})",
            f"check that nothing in it was planted (links), then 'chmod 700 {path}'",
        )
    if tighten and mode & 0o077:
        os.chmod(path, 0o700, follow_symlinks=False)
        if out is not None:
            out.warn(f"{path} was readable by others (mode {mode:04o}): tightened to 0700")
    return True


def ensure_dir(path: Path, out: output.Output | None = None) -> Path:
    """Create the private directory ``path`` (0700) or check the one that is there."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path.parent, 0o700, exist_ok=True)
        return ensure_dir(path, out)
    check_dir(path, out, tighten=True)
    return path


def open_file(path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` for a private file: never through a link, never anything but a regular file."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise _refuse(path, "it is a symlink", _HINT_LINK) from None
        if err.errno == errno.EISDIR:
            raise _refuse(path, "it is a directory", "move it away and run again") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _refuse(path, "it is not a regular file", "move it away and run again")
    return fd


def read_bytes(path: Path, *, limit: int = -1) -> bytes | None:
    """A private file's bytes (at most ``limit`` of them), or None when there is none."""
    try:
        fd = open_file(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit)


def refuse_link(path: Path) -> None:
    """Refuse a private file's path when something other than a regular file sits there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(path, "it is a symlink", _HINT_LINK)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, "it is not a regular file", "move it away and run again")
