"""The per-subject HTML report, assembled by nireports from the reportlets."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from nipype_ward.bids import software_versions
from nipype_ward.fileio import save_atomically
from nipype_ward.reports.html import methods

#: nireports' bootstrap of our report: its sections and reportlets.
REPORT_SPEC = resources.files("nipype_ward") / "data" / "reports-spec.yml"


def write_subject_report(output_dir, subject: str, *, run_id: str, parameters: dict) -> Path:
    """``OUTPUT_DIR/sub-<subject>.html``, fMRIPrep's layout, with its methods reportlet.

    The run reportlets (summary, quality, parcellations, compressions) are the
    files the workflow's sinks wrote in ``sub-<subject>/figures``; the methods
    paragraph and the software versions are written here, as they describe
    the whole run of the App.
    """
    from nireports.assembler.report import Report

    output_dir = Path(output_dir)
    figures = output_dir / f"sub-{subject}" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    about = figures / f"sub-{subject}_desc-about_bold.html"
    save_atomically(lambda tmp: Path(tmp).write_text(methods(parameters, software_versions())),
                    about)
    report = Report(output_dir, run_id, bootstrap_file=str(REPORT_SPEC),
                    out_filename=f"sub-{subject}.html", reportlets_dir=output_dir,
                    subject=subject)
    report.generate_report()
    return output_dir / f"sub-{subject}.html"
