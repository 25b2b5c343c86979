"""An installed nipype-ward works: its compiled kernel loads and the App runs.

    python .ci/wheel_smoke.py [--run FOLDER]

Run from outside the source tree, by the Python of the environment the wheel
was installed into (``.ci/wheel.sh``; cibuildwheel's test-command):

* the package imported is the installed one, not a source tree;
* the compiled Ward kernel (``_ward_fast``, wherever the package keeps it) is
  a file of the installed package, and imports; with
  ``--expect-profile-guided``, it is setup.py's profile-guided build;
* ``nipype-ward --version`` prints the installed distribution's version;
* with ``--run FOLDER``: the App on a small simulated fMRIPrep dataset (one
  subject, written into FOLDER) delivers its parcellations, and the seed
  pipeline (``nipype-ward-rest-clustering``, the README's first command) runs
  on the embedded data.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path


def check_install(expect_profile: bool = False) -> None:
    import nipype_ward

    package = Path(nipype_ward.__file__).parent
    if not Path(sys.prefix) in package.parents:
        raise SystemExit(f"nipype_ward imported from {package}, not from {sys.prefix}")
    kernels = [path for path in package.rglob("_ward_fast*")
               if path.suffix in (".so", ".pyd")]
    if len(kernels) != 1:
        raise SystemExit(f"expected one compiled _ward_fast in {package}, found {kernels}")
    module = ".".join(("nipype_ward", *kernels[0].relative_to(package).parent.parts,
                       "_ward_fast"))
    kernel = importlib.import_module(module)
    print(f"wheel_smoke: {module} loaded from {kernels[0]} (profile-guided build: "
          f"{kernel.PROFILE_GUIDED})")
    if expect_profile and not kernel.PROFILE_GUIDED:
        raise SystemExit(f"{kernels[0]} was built without its profile (setup.py fell back "
                         "to a plain build: see the build log's warning)")

    version = importlib.metadata.version("nipype-ward")
    said = subprocess.run([_script("nipype-ward"), "--version"], capture_output=True,
                          text=True, check=True).stdout.strip()
    if said != f"nipype-ward {version}":
        raise SystemExit(f"nipype-ward --version says {said!r}, installed {version}")
    print(f"wheel_smoke: {said}")


def _script(name: str) -> str:
    """A console script of this environment (not one found elsewhere on the PATH)."""
    folder = Path(sys.executable).parent
    path = shutil.which(name, path=str(folder))
    if path is None:
        raise SystemExit(f"no {name} script beside {sys.executable}")
    return path


def run_app(folder: Path) -> None:
    from nipype_ward.datasets import write_fmriprep_example

    data = write_fmriprep_example(folder / "data", subjects=("01",))
    subprocess.run([_script("nipype-ward"), str(data), str(folder / "out"), "participant",
                    "--n-clusters", "20", "50", "-w", str(folder / "work"), "--nprocs", "2"],
                   check=True, cwd=folder)
    labels = sorted((folder / "out" / "sub-01" / "func").glob("*_dseg.nii.gz"))
    if len(labels) != 2:
        raise SystemExit(f"the App delivered {labels}, not one parcellation per K")
    env = {**os.environ, "NIPYPE_WARD_DATA": str(folder / "embedded")}
    subprocess.run([_script("nipype-ward-rest-clustering"), "--n-clusters", "100",
                    "--output-dir", str(folder / "ward_out")],
                   check=True, cwd=folder, env=env)
    if not (folder / "ward_out" / "ward100_labels.nii.gz").is_file():
        raise SystemExit("nipype-ward-rest-clustering wrote no ward100_labels.nii.gz")
    print("wheel_smoke: the App and the seed pipeline ran")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, metavar="FOLDER")
    parser.add_argument("--expect-profile-guided", action="store_true",
                        help="fail unless the kernel was built with its profile (GCC builds)")
    args = parser.parse_args(argv)
    check_install(args.expect_profile_guided)
    if args.run:
        args.run.mkdir(parents=True, exist_ok=True)
        run_app(args.run.absolute())
    return 0


if __name__ == "__main__":
    sys.exit(main())
