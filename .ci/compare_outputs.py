"""Compare two output folders of the App, byte for byte but for what must differ.

    python .ci/compare_outputs.py HOST_OUT CONTAINER_OUT [--replace OLD=NEW ...]

Every file of one folder must be in the other, and be the same bytes, except
in these cases, each of which is checked, not skipped:

* ``sub-<label>/log/<run id>/``: the folder is named by the run's id (its
  start time and a random UUID), so the two runs' log folders are paired by
  subject; the files in them must have the same names.
* Machine paths: ``dataset_description.json`` links the input dataset by its
  ``file://`` URL, and ``log/<run id>/nipype-ward.json`` keeps the command as
  typed. Each ``--replace OLD=NEW`` turns a host folder into the container's
  mount point (``/data``, ``/out``, ...) in the host file's text; after that
  the file must be the same bytes.
* The run id, in ``nipype-ward.json`` and the W3C PROV files of
  ``--write-provenance`` (``log/<run id>/*_prov.json``/``.provn``), and the
  run's start and end times (ISO 8601) in the PROV files: replaced by
  ``<run id>`` and ``<time>`` in both; after that the same bytes.
* ``.npz`` (the Ward tree): NumPy writes it with Python's ``zipfile``, whose
  local headers changed within 3.11 (force_zip64, CPython gh-103861, 3.11.4): Debian's
  3.11.2 in the image and a newer 3.11 on the host write different headers
  around the same data. Compared member by member: same names, same bytes
  (the arrays' ``.npy`` bytes, dtype and shape included) and same CRC. The
  PROV files record each output's SHA-256: those of the ``.npz`` found equal
  so are the one difference allowed there.

Anything else that differs is a failure (exit 1), printed with its name.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import zipfile
from pathlib import Path

RUN_ID = re.compile(r"\d{8}-\d{6}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")
PROV = re.compile(r"_prov\.(json|provn)$")


def _key(path: Path) -> str:
    """The file's place, the run id of a log folder replaced: pairs the two runs' files."""
    return RUN_ID.sub("<run id>", path.as_posix())


def _files(root: Path) -> dict[str, Path]:
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            key = _key(path.relative_to(root))
            if key in files:
                raise SystemExit(f"two log folders of one subject in {root}: {key}")
            files[key] = path
    return files


def _normalized(text: str, *, replacements=(), prov: bool = False) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    text = RUN_ID.sub("<run id>", text)
    if prov:
        text = ISO_TIME.sub("<time>", text)
    return text


def _same_npz(a: Path, b: Path) -> bool:
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        ia, ib = za.infolist(), zb.infolist()
        return ([(i.filename, i.CRC, i.file_size) for i in ia]
                == [(i.filename, i.CRC, i.file_size) for i in ib]
                and all(za.read(i) == zb.read(i) for i in ia))


def compare(host: Path, container: Path, replacements) -> int:
    ours, theirs = _files(host), _files(container)
    only = sorted(set(ours) ^ set(theirs))
    common = sorted(set(ours) & set(theirs))
    identical, different = 0, []
    explained: dict[str, list[str]] = {}
    # The .npz first: the PROV files name their SHA-256.
    hashes = []
    for key in sorted(common, key=lambda key: not key.endswith(".npz")):
        a, b = ours[key].read_bytes(), theirs[key].read_bytes()
        if a == b:
            identical += 1
        elif key.endswith(".npz") and _same_npz(ours[key], theirs[key]):
            explained.setdefault("npz: same members, zip headers differ (Python's zipfile)",
                                 []).append(key)
            hashes.append((hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()))
        elif key.endswith((".json", ".provn", ".tsv", ".html", ".txt")):
            prov = bool(PROV.search(key))
            try:
                ta, tb = a.decode(), b.decode()
            except UnicodeDecodeError:
                different.append(key)
                continue
            subs = list(replacements) + (hashes if prov else [])
            if _normalized(ta, replacements=subs, prov=prov) == _normalized(tb, prov=prov):
                why = ("run id, start/end times and the .npz' SHA-256" if prov
                       else "machine paths by mount points, run id")
                explained.setdefault(f"text equal after replacing {why}", []).append(key)
            else:
                different.append(key)
        else:
            different.append(key)
    print(f"compared {len(common)} files: {identical} identical bytes")
    for why, keys in explained.items():
        print(f"  {len(keys)} {why}:")
        for key in keys:
            print(f"      {key}")
    for key in only:
        print(f"  ONLY IN {'host' if key in ours else 'container'}: {key}")
    for key in different:
        print(f"  DIFFERENT: {key}")
    return 1 if only or different else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host", type=Path)
    parser.add_argument("container", type=Path)
    parser.add_argument("--replace", action="append", default=[], metavar="OLD=NEW",
                        help="a host folder and the container's mount point for it")
    args = parser.parse_args(argv)
    replacements = [tuple(item.split("=", 1)) for item in args.replace]
    # Longest first: a folder's path before that of a folder holding it.
    replacements.sort(key=lambda pair: -len(pair[0]))
    return compare(args.host, args.container, replacements)


if __name__ == "__main__":
    sys.exit(main())
