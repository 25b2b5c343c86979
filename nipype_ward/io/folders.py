"""The folders a run writes into: output, staging, work; their locks and their identity.

Every file a run delivers is first complete somewhere else (a staging folder,
or a hidden temporary file beside its target: :func:`nipype_ward.io.files.save_atomically`)
and then renamed into place, so a kill, a full disk or a failed subject never
leaves a truncated or half-written output. Runs that share a folder (array
jobs on a cluster, a second command started by hand) coordinate through
advisory locks (``flock``), which the system releases when a process dies,
even by ``SIGKILL``:

- each run's staging folder (:class:`staging_folder`) is locked by it alone,
  and removed by the next run when nobody holds it any more;
- a work folder (:class:`work_folder`) is held shared by every run using it,
  and each of a run's top-level workflows exclusively, so two runs never
  compute the same nodes at once and a folder in use is never removed;
- files that runs read, change and write back (``.bidsignore``) are changed
  under :class:`locked`.

Folders are compared by identity (device and inode), not by name: a bind
mount or a symbolic link gives one folder two names.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from nipype_ward.io.errors import InputError
from nipype_ward.io.files import TEMPORARY, host_name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_orphans(folder) -> list[Path]:
    """Remove what killed runs left in ``folder`` (an output folder); return it.

    Staging folders whose run is gone (their lock free; also those killed
    before they were renamed, ``.new.staging-*``), and the hidden temporary
    files of writers on this host that are no longer running (a kill just
    before a rename). Nothing of a live run and no file of another name is
    touched.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for stale in [*folder.glob(f"{staging_folder.PREFIX}*"),
                  *folder.glob(f".new{staging_folder.PREFIX}*")]:
        if _lock_is_free(stale):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    host = host_name()
    # Writers put temporary files beside their targets in OUTPUT_DIR itself only
    # at the top (dataset files, reports), one level down (the atlas dataset) and
    # two (each subject's figures): everything deeper arrives by rename from a
    # staging folder. A walk of the whole tree would cost every array task of a
    # cluster run a listing of every subject's derivatives.
    candidates = [path for depth in ("", "*/", "*/*/")
                  for path in folder.glob(f"{depth}.*.tmp-*")]
    for path in candidates:
        match = TEMPORARY.match(path.name)
        if (match and path.is_file() and match["host"] == host
                and not _alive(int(match["pid"]))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _lock_is_free(path: Path) -> bool:
    """Whether nobody holds the advisory lock of ``path`` (a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a run still writing there
        return False
    finally:
        os.close(fd)
    return True


def check_writable(folder, what: str) -> None:
    """``folder`` exists (made if needed) and accepts files; else an InputError naming it.

    ``what`` names it in the message ("output folder", "work folder (-w)").
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, f"the {what} is a file, not a folder: give a folder")
    for _ in range(100):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
            return
        except FileNotFoundError:
            # Removed between the two by another run that had made it and failed
            # (it removes only a folder no run holds): made again.
            continue
        except OSError as exc:
            raise InputError(folder, f"the {what} cannot be written ({exc.strerror or exc}): "
                             "give a folder you can write to") from exc
    raise InputError(folder, f"the {what} keeps being removed by another process: give "
                     "another folder")


def _identity(path: Path):
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def same_or_inside(path, folder) -> bool:
    """Whether ``path`` is ``folder`` or inside it, by identity (device and inode).

    ``path`` need not exist: its nearest existing ancestor is compared. A
    bind mount (``docker run -v``) or a symbolic link reaching ``folder``
    under another name is found too.
    """
    folder = Path(folder)
    if not folder.exists():
        return False
    target = _identity(folder)
    current = Path(os.path.abspath(path))
    for candidate in (current, *current.parents):
        if candidate.exists():
            try:
                if _identity(candidate) == target:
                    return True
            except OSError:
                continue
    return False


def move_into(source_dir, target_dir, *, exclude=()) -> list[Path]:
    """Move every file under ``source_dir`` to the same place under ``target_dir``.

    Each file is renamed into place (complete or absent, replacing a file of
    the same name); folders are made as needed, and nothing else in
    ``target_dir`` is touched. Top-level entries named in ``exclude`` stay
    where they are. Both folders must be on one file system. Returns the
    files moved, at their new places.
    """
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    moved = []
    for top in sorted(source_dir.iterdir()):
        if top.name in exclude:
            continue
        files = [top] if not top.is_dir() else sorted(
            path for path in top.rglob("*") if not path.is_dir())
        for path in files:
            target = target_dir / path.relative_to(source_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            moved.append(target)
    return moved


class staging_folder:
    """``folder/.staging-<name>``, made and locked for the life of a ``with`` block.

    A run's sinks write there; what succeeded is then moved into ``folder``
    (:func:`move_into`) and the staging folder removed on leaving the
    block. Each run holds an advisory lock on its own staging folder, which
    the system releases even when the process is killed (its workers die
    with it: :mod:`nipype_ward.cli._running`): what killed runs left is
    removed on entering (:func:`remove_orphans`), what runs still writing
    hold is left alone.
    """

    PREFIX = ".staging-"

    def __init__(self, folder, name: str):
        self.folder = Path(folder)
        self.path = self.folder / f"{self.PREFIX}{name}"

    def __enter__(self) -> Path:
        remove_orphans(self.folder)
        # Made under another name, locked, then renamed (the lock follows):
        # never seen unlocked under the name other runs clean up.
        fresh = self.folder / f".new{self.path.name}"
        fresh.mkdir(parents=True)
        self._fd = os.open(fresh, os.O_RDONLY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.replace(fresh, self.path)
        return self.path

    def __exit__(self, *exc_info):
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)


class locked:
    """An exclusive advisory lock on a folder itself (no lock file), held in a ``with`` block.

    For the read-modify-write of files that runs writing into one folder at
    once share (``.bidsignore``): each waits for the other's write.
    """

    def __init__(self, folder):
        self.path = Path(folder)

    def __enter__(self):
        self._fd = os.open(self.path, os.O_RDONLY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info):
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


class FolderBusy(InputError):
    """Another run computes the same workflows in the same work folder."""


class work_folder:
    """A Nipype work folder used by this run, for the life of a ``with`` block.

    On entering, the folder is made if needed and held with a shared lock
    (every run using it holds one), then each name of ``workflows`` (the
    run's top-level workflows, whose node folders no other run may write
    at the same time) with an exclusive lock of ``<folder>/.locks/<name>``.
    A name another run holds is refused at once, before any work
    (:class:`FolderBusy`, one line naming the folder and the workflow).

    :meth:`remove` deletes the folder only when no other run holds it: a
    run never removes a folder another run is using, nor one made again
    under the same name since it was locked.
    """

    LOCKS = ".locks"

    def __init__(self, folder, workflows=(), *, what: str = "work folder (-w)"):
        self.path = Path(folder)
        self.workflows = sorted(set(workflows))
        self.what = what
        self._fds: list[int] = []

    def __enter__(self):
        for _ in range(100):  # made again while another run removed it: rare
            check_writable(self.path, self.what)
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            fcntl.flock(fd, fcntl.LOCK_SH)
            held = os.fstat(fd)
            try:
                same = (held.st_dev, held.st_ino) == _identity(self.path)
            except FileNotFoundError:
                same = False
            if same:
                self._fds.append(fd)
                break
            os.close(fd)
        else:  # pragma: no cover - another process removing the folder in a loop
            raise InputError(self.path, f"the {self.what} keeps being removed by another "
                             "process: give another folder")
        try:
            locks = self.path / self.LOCKS
            locks.mkdir(exist_ok=True)
            for name in self.workflows:
                fd = os.open(locks / name, os.O_RDONLY | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    os.close(fd)
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    raise FolderBusy(self.path, f"another run is computing {name} in this "
                                     f"{self.what}: wait for it to end, or give another "
                                     "work folder") from None
                self._fds.append(fd)
        except BaseException:
            self._release()
            raise
        return self

    def remove(self) -> bool:
        """Delete the folder if no other run holds it; return whether it was deleted."""
        if not self._fds:
            return False
        try:
            fcntl.flock(self._fds[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        shutil.rmtree(self.path, ignore_errors=True)
        return True

    def _release(self):
        for fd in reversed(self._fds):
            os.close(fd)  # closing releases the flock
        self._fds = []

    def __exit__(self, *exc_info):
        self._release()
