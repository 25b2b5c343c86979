"""The per-subject HTML report, assembled by nireports from the reportlets."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from nipype_ward.bids import software_versions
from nipype_ward.io.files import save_atomically
from nipype_ward.reports.html import MIGP_CITATION, group_summary, methods

#: nireports' bootstrap of our report: its sections and reportlets.
REPORT_SPEC = resources.files("nipype_ward") / "data" / "reports-spec.yml"


def write_subject_report(output_dir, subject: str, *, run_id: str, parameters: dict,
                         surface: bool = False) -> Path:
    """``OUTPUT_DIR/sub-<subject>.html``, fMRIPrep's layout, with its methods reportlet.

    The run reportlets (summary, quality, parcellations, compressions) are the
    files the workflow's sinks wrote in ``sub-<subject>/figures``; the methods
    paragraph and the software versions are written here, as they describe
    the whole run of the App (``surface``: of surface data).
    """
    from nireports.assembler.report import Report

    output_dir = Path(output_dir)
    figures = output_dir / f"sub-{subject}" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    about = figures / f"sub-{subject}_desc-about_bold.html"
    text = methods(parameters, software_versions(), surface=surface)
    save_atomically(lambda tmp: Path(tmp).write_text(text), about)

    def write(tmp):
        # Written beside its target (the figures' links are relative to
        # OUTPUT_DIR), then renamed: a kill or a full disk keeps the last
        # complete report.
        Report(output_dir, run_id, bootstrap_file=str(REPORT_SPEC),
               out_filename=str(Path(tmp).absolute()), reportlets_dir=output_dir,
               metadata={"filename": f"sub-{subject}"}, subject=subject).generate_report()

    return save_atomically(write, output_dir / f"sub-{subject}.html")


def write_group_report(atlas_dir, *, parameters: dict, surface: bool = False) -> Path:
    """``OUTPUT_DIR/atlases/report.html``: every atlas with its figures and quality.

    Read from the delivered files (the atlases' sidecars and the figures the
    graph's sinks wrote in ``atlases/figures``), written atomically.
    """
    import json
    from html import escape

    atlas_dir = Path(atlas_dir)
    metas = sorted((json.loads(path.read_text()) for path in atlas_dir.glob("tpl-*/*_dseg.json")),
                   key=lambda meta: (meta["SpatialReference"], meta["NumberOfParcels"]))
    sections = []
    for template in sorted({meta["SpatialReference"] for meta in metas}):
        chosen = [meta for meta in metas if meta["SpatialReference"] == template]
        figures = {}
        for path in sorted((atlas_dir / "figures").glob(f"tpl-{template}_*.png")):
            for meta in chosen:
                k = meta["NumberOfParcels"]
                for kind in ("parcellation", "quality"):
                    if f"_atlas-ward{k}_" in path.name and f"_desc-{kind}_" in path.name:
                        figures[k, kind] = path.relative_to(atlas_dir).as_posix()
        sections.append(f"<h2>{escape(template)}</h2>" + group_summary(chosen, figures))
    body = "\n".join(sections) + "<h2>Methods</h2>" + methods(parameters, software_versions(), surface=surface) \
        + f"<p>[5] {escape(MIGP_CITATION)}</p>"
    html = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>nipype-ward group "
            "atlases</title></head><body><h1>nipype-ward group atlases</h1>" + body
            + "</body></html>")
    out = atlas_dir / "report.html"
    save_atomically(lambda tmp: Path(tmp).write_text(html), out)
    return out
