"""What ships stays in step with setup.cfg (the scripts of .ci build and run it for real).

.ci/wheel.sh, .ci/container.sh and .ci/minimum-versions.sh take minutes; these
checks take none and fail first when one file moves without the others.
"""

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _setup_cfg():
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "setup.cfg")
    return config


def _lower_bounds() -> dict:
    bounds = {}
    for line in _setup_cfg()["options"]["install_requires"].splitlines():
        line = line.split("#")[0].strip()
        if line:
            low = re.search(r">=\s*([^\s,]+)", line)
            bounds[re.split(r"[\s<>=!~;\[]", line)[0]] = low.group(1) if low else None
    return bounds


def test_the_image_label_has_setup_cfgs_version():
    dockerfile = (ROOT / "Dockerfile").read_text()
    (label,) = re.findall(r"^ARG VERSION=(\S+)$", dockerfile, flags=re.MULTILINE)
    assert label == _setup_cfg()["metadata"]["version"]
    assert re.search(r'^ENTRYPOINT \["nipype-ward"\]$', dockerfile, flags=re.MULTILINE)


def test_every_dependency_has_a_tested_lower_bound():
    """setup.cfg's lower bounds are .ci/minimum-versions.txt's pins, one for one."""
    pins = {}
    for line in (ROOT / ".ci" / "minimum-versions.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name] = version
    assert _lower_bounds() == pins


def test_the_sdist_takes_the_kernels_source_and_the_build_context_leaves_the_host_out():
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert re.search(r"^recursive-include nipype_ward .*\*\.pyx", manifest, flags=re.MULTILINE)
    assert list(ROOT.glob("nipype_ward/**/_ward_fast.pyx"))
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "**/*.so", "build/", "dist/", "docs/_build/"} <= set(ignored)
