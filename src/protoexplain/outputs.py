"""Output folders owned by one command at a time: an exclusive lock, and stale temporaries cleared.

The lock is ``fcntl.flock`` on ``OUT/.protoexplain.lock``, which names its holder. The kernel
releases it when the holding process ends, even after ``kill -9``, so a dead holder never blocks.
Under ``torchrun`` only rank 0 locks: the other ranks of one job write into the folder their rank 0
holds, and cannot start writing before rank 0 has joined the process group.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from protoexplain.errors import UserError

LOCK_NAME = ".protoexplain.lock"
# the names fileio.temp_file_beside / temp_folder_beside give: ".<target>.<8 random chars><suffix>"
STALE_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.(tmp|partial)$")


@contextlib.contextmanager
def locked_output(
    folder: str | os.PathLike, command: str, rank: int | None = None
) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for ``command``; a second holder is a UserError.

    ``rank`` is this process's torch.distributed rank (default: ``$RANK``, else 0); only rank 0
    locks.

    On entry, temporaries that killed runs left in the folder are removed (the lock proves they are
    nobody's). On exit the lock file is removed, and so is a folder this call created and left
    empty, so a refused command leaves nothing behind.
    """
    folder = Path(folder)
    if (int(os.environ.get("RANK", "0")) if rank is None else rank) != 0:
        yield folder
        return
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output folder {folder} is a file, not a folder; choose another path")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    handle = _acquire(folder / LOCK_NAME, command)
    try:
        remove_stale_temporaries(folder)
        yield folder
    finally:
        (folder / LOCK_NAME).unlink(missing_ok=True)  # still held: a waiter retries on the new file
        if created and not any(folder.iterdir()):
            folder.rmdir()
        handle.close()


def _acquire(lock: Path, command: str):
    """Open and flock ``lock``, retrying when a releasing holder removed the file meanwhile."""
    while True:
        handle = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 (held beyond this function)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(lock)
            handle.close()
            raise UserError(
                f"{lock.parent} is in use by {holder}; wait for it to finish or choose another "
                "output folder"
            ) from None
        if lock.exists() and os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    json.dump({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
               "argv": sys.argv[1:], "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, handle)
    handle.flush()
    return handle


def _describe_holder(lock: Path) -> str:
    try:
        holder = json.loads(lock.read_text(encoding="utf-8"))
        return (f"'protoexplain {holder['command']}' (pid {holder['pid']} on {holder['host']}, "
                f"since {holder['started']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another protoexplain command"


def _held_by_another(lock: Path) -> bool:
    try:
        with open(lock, encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Remove the temporary files and folders killed runs left below ``folder``; return how many.

    Subfolders that another live command holds are left alone.
    """
    removed = 0
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        for name in [d for d in dirs if STALE_TEMP.match(d)]:
            shutil.rmtree(here / name, ignore_errors=True)
            dirs.remove(name)
            removed += 1
        dirs[:] = [d for d in dirs if not _held_by_another(here / d / LOCK_NAME)]
        for name in files:
            if STALE_TEMP.match(name):
                (here / name).unlink(missing_ok=True)
                removed += 1
    return removed
