#!/usr/bin/env bash
# The oldest versions setup.cfg admits, installed exactly and tested, as
# nilearn's and scikit-learn's min-dependencies jobs do: a fresh venv gets
# `pip install -c .ci/minimum-versions.txt -e '.[test]'` (every dependency of
# install_requires pinned at its lower bound; the test extras resolve to what
# those pins allow), then the test suite's first tier, the README's test
# command (-m "not heavy": interfaces, workflows, the BIDS App's volume and
# surface runs, the group level, reports, provenance), on 2 processes.
#
# Wheels only (--only-binary :all:), as users of a wheel get them, but for
# docopt (pybids -> num2words -> docopt, which ships no wheel) and
# nipype-ward itself, built from this tree. The tree is copied first (its
# tracked and unignored files): the editable install builds its kernel there,
# not beside .venv's. Run it alone (bash .ci/minimum-versions.sh) or from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
scratch=$(mktemp -d /tmp/nipype-ward-minver.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

mkdir "$scratch/src"
git ls-files -z --cached --others --exclude-standard | tar -cf - --null -T - | tar -xf - -C "$scratch/src"
python3 -m venv "$scratch/venv"
# On PATH: the tests run this venv's nipype-ward and bids-validator-deno.
. "$scratch/venv/bin/activate"
python -m pip install --quiet --upgrade pip
cd "$scratch/src"
python -m pip install --quiet --only-binary :all: --no-binary docopt \
  -c .ci/minimum-versions.txt -e '.[test]'

# Each pin as installed, and setup.cfg's lower bound equal to it.
python - <<'PY'
import configparser
import re
from importlib.metadata import version

pins = dict(line.split("==") for line in
            (raw.split("#")[0].strip() for raw in open(".ci/minimum-versions.txt")) if line)
config = configparser.ConfigParser(interpolation=None)
config.read("setup.cfg")
bounds = {}
for line in config["options"]["install_requires"].splitlines():
    line = line.split("#")[0].strip()
    if line:
        name = re.split(r"[\s<>=!~;\[]", line)[0]
        low = re.search(r">=\s*([^\s,]+)", line)
        bounds[name] = low.group(1) if low else None
problems = [f"{name}: installed {version(name)}, pinned {pin}"
            for name, pin in pins.items() if version(name) != pin]
problems += [f"{name}: setup.cfg's lower bound {bounds.get(name)}, pinned {pins.get(name)}"
             for name in set(bounds) | set(pins) if bounds.get(name) != pins.get(name)]
if problems:
    raise SystemExit("minimum-versions.sh: " + "; ".join(problems))
print("minimum-versions.sh: installed " + " ".join(f"{n}=={v}" for n, v in pins.items()))
PY
echo "minimum-versions.sh: venv ready in $((SECONDS - started)) s"

python -m pytest -n 2 -m "not heavy" -p no:cacheprovider -q
echo "minimum-versions.sh: done in $((SECONDS - started)) s"
