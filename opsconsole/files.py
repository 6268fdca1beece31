"""Private files: everything opsconsole writes is 0600, every folder it creates 0700.

Run state, the audit log, the crash log and evidence can hold what an operator
saw in production, so modes never depend on the umask: folders are created
0700 and files 0600 and then set explicitly (a umask only removes bits, and an
odd one such as 0o200 would leave a folder we cannot write). Output names are
checked with :func:`inside` so that an id from a runbook never places a file
outside its folder.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import UnsafePath

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "append_private",
    "atomic_write",
    "fsync_dir",
    "inside",
    "open_private",
    "private_dir",
    "write_all",
]

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents as 0700 folders; existing folders are left as
    they are (a folder the operator chose, such as an evidence folder, is theirs)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # another process made it first: its mode is its creator's business
        os.chmod(folder, DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    return path


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def atomic_write(path: Path, data: str) -> None:
    """Replace ``path`` with ``data``: a 0600 temp file, fsync, rename, fsync of the folder.

    A reader sees the old content or the new, never a mix; a symlink at ``path`` is
    replaced, not followed.
    """
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        # lone surrogates (hostile JSON) are written escaped rather than failing the save
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def open_private(path: Path, flags: int) -> int:
    """Open (creating if needed) a 0600 file without following a symlink; returns the fd.

    A file opsconsole appends to that an older version left group- or world-readable is
    made 0600 on the way.
    """
    private_dir(path.parent)
    # O_NONBLOCK: a FIFO planted where a log should be must not hang the open
    fd = os.open(
        path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, FILE_MODE
    )
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        if stat.S_IMODE(info.st_mode) != FILE_MODE and info.st_uid == os.geteuid():
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def append_private(path: Path, text: str) -> None:
    """Append ``text`` to a 0600 log file, all of it or an OSError."""
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    try:
        write_all(fd, text.encode("utf-8", "backslashreplace"))
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written; a write that makes no progress is an error."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"short write: {len(view)} bytes could not be written")
        view = view[written:]


def inside(directory: Path, name: str) -> Path:
    """``directory / name``, refused unless it stays directly inside ``directory``.

    Refuses separators, ``..``, absolute names, NUL, and a symlink that resolves outside.
    """
    if (
        not name
        or name in {".", ".."}
        or "/" in name
        or "\\" in name
        or "\0" in name
        or os.sep in name
    ):
        raise UnsafePath(
            f"refusing to write {name!r}: a file name must stay inside {directory} "
            "(no '/', '..' or empty names)"
        )
    candidate = directory / name
    base = directory.resolve()
    resolved = candidate.resolve()
    if resolved.parent != base or resolved.name in {"", ".", ".."}:
        raise UnsafePath(
            f"refusing to write {name!r}: it resolves to {resolved}, outside {directory}"
        )
    return candidate
