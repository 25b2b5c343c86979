"""Writing files atomically, and the small ones beside the data: JSON, text, sidecars.

Writers go through a temporary file in the target's folder and a rename, so
an interrupted run never leaves a truncated output, and the file gets the
mode the umask gives (as ``open`` would), not ``mkstemp``'s private 0600.
Temporary files are named after their writer (:data:`TEMPORARY`), so that the
next run can tell those a killed run left from those a live one is writing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

from nipype_ward.io.errors import InputError, WriteError
from nipype_ward.io.formats import file_extension

#: Prefix of the hidden temporary files of :func:`save_atomically`:
#: ``.<target name>.<host>-<pid>.tmp-<random>``. The host and process name
#: the writer, so that the files a killed run left can be told from those a
#: live one is writing.
TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<host>[^.]+)-(?P<pid>\d+)\.tmp-\w+(\.[\w.]+)?$")


def host_name() -> str:
    """This machine's name as temporary files carry it (no dot)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def temporary_prefix(target_name: str) -> str:
    """The start of a temporary file's name for a target named ``target_name``."""
    return f".{target_name}.{host_name()}-{os.getpid()}.tmp-"


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_target(path) -> tuple[Path, Path]:
    """A hidden temporary path beside the target, with the target's extension.

    Named ``.<name>.<host>-<pid>.tmp-<random><extension>``
    (:data:`TEMPORARY`): the next run removes those of
    writers that were killed before their rename.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name),
                               suffix=file_extension(path), dir=path.parent)
    os.close(fd)
    return path, Path(tmp)


def save_atomically(write, path) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``; no partial file on failure.

    An ``OSError`` while writing (a full disk, a file-size limit) is raised
    as :class:`WriteError`, which names ``path``.
    """
    path, tmp = _atomic_target(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError) \
                and exc.errno is not None:
            raise WriteError(path, exc) from exc
        raise
    return path


#: Size from which :func:`copy_atomically` links rather than copies (with
#: ``link``): the compressed series and the time series of large runs. Smaller
#: files (labels, figures, masks, trees) cost little to copy, and are those a
#: user may edit in place: a copy keeps such an edit out of the working files.
LINK_FROM_BYTES = 8 << 20


def copy_atomically(source, target, *, link: bool = False) -> Path:
    """Copy a file, written then renamed (see :func:`save_atomically`).

    With ``link``, a file of :data:`LINK_FROM_BYTES` or more becomes a hard
    link to ``source`` instead, where its file system allows one (the same
    one as ``target``'s), renamed into place the same way; else a copy. A
    link costs nothing whatever the size: delivering a 2 mm run's files
    (0.6 GB, two compressed series) took 1.6 s as copies. Only for a working
    file of this package (a node's output): the two names are then one
    file, which stays right because its writers never write into a file,
    they rename a new one onto its name, and Nipype deletes a node's files
    before it runs again. niworkflows' ``DerivativesDataSink`` links the
    files it does not recompress the same way.
    """
    if link and os.path.getsize(source) >= LINK_FROM_BYTES:
        path, tmp = _atomic_target(target)
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:  # another file system, or one without links
            pass
        else:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise WriteError(path, exc) from exc
            finally:
                # Renaming a link onto another name of the same file does
                # nothing (POSIX): a delivery made again leaves its link.
                tmp.unlink(missing_ok=True)
            return path
    return save_atomically(lambda tmp: shutil.copyfile(source, tmp), target)


def copy_json(source, target, *, relative: dict, uris=None) -> Path:
    """Copy a JSON object, the entries of ``relative`` set to paths relative to ``target``.

    ``relative`` maps a key to the absolute path (or list of paths) of a
    delivered file, written relative to ``target``'s folder: the reference
    stays right when the folder moves (a working file's path would not).
    ``uris``, when given, is applied to every other string entry (and the
    strings of list entries) at the top level: e.g. a machine path made a
    BIDS URI. Written then renamed, as :func:`save_json`.
    """
    target = Path(target)
    payload = load_json(source)
    if uris is not None:
        for key, value in payload.items():
            if isinstance(value, str):
                payload[key] = uris(value)
            elif isinstance(value, list):
                payload[key] = [uris(item) if isinstance(item, str) else item for item in value]
    for key, paths in relative.items():
        as_list = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        values = [os.path.relpath(path, target.parent) for path in as_list]
        payload[key] = values[0] if isinstance(paths, (str, os.PathLike)) else values
    return save_json(payload, target)


def sidecar_path(path) -> Path:
    """The JSON sidecar of a data file: same name, ``.json`` for the extension."""
    path = Path(path)
    extension = file_extension(path)
    return path.with_name(path.name[: -len(extension)] + ".json") if extension \
        else path.with_suffix(".json")


def save_json(payload: dict, path) -> Path:
    def write(tmp):
        Path(tmp).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")

    return save_atomically(write, path)


def save_text(path, text: str) -> Path:
    """Write a small text file atomically (README, .bidsignore)."""
    return save_atomically(lambda tmp: Path(tmp).write_text(text), path)


def load_json(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        # ValueError: JSONDecodeError, UnicodeDecodeError; RecursionError: too deep.
        raise InputError(path, f"not a readable JSON file ({exc})") from exc
    if not isinstance(payload, dict):
        raise InputError(path, "JSON file must hold an object")
    return payload
