"""The per-subject HTML report, assembled by nireports from the reportlets."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from nipype_ward.bids import software_versions
from nipype_ward.io.files import save_atomically
from nipype_ward.reports.html import MIGP_CITATION, group_summary, methods

#: nireports' bootstrap of our report: its sections and reportlets.
REPORT_SPEC = resources.files("nipype_ward") / "data" / "reports-spec.yml"

#: The styles and scripts a report needs, shipped with the package (see its README).
ASSETS = resources.files("nipype_ward") / "data" / "report-assets"

#: A ``<script src>`` or stylesheet ``<link href>`` on another host, and the file of ours
#: that replaces it (by the library its URL names).
_REMOTE = re.compile(r'<script [^>]*src="https?://[^"]*?(?P<js>jquery|bootstrap)[^"]*"[^>]*>'
                     r'\s*</script>|<link [^>]*href="https?://[^"]*?(?P<css>bootstrap)[^"]*\.css"'
                     r'[^>]*/?>')
_FILES = {"jquery": "jquery.min.js", "bootstrap": "bootstrap.bundle.min.js"}


def _asset(name: str) -> str:
    """One shipped file, without its source-map comment (no map is shipped)."""
    text = (ASSETS / name).read_text(encoding="utf-8")
    return re.sub(r"\n?/[*/]# sourceMappingURL=\S+( \*/)?\s*$", "", text)


def inline_assets(html: str) -> str:
    """A page whose CDN scripts and styles (Bootstrap, jQuery) are written into it.

    A report then looks the same without a network. Any other script or
    stylesheet on another host is an error: the page would depend on it.
    """
    def replace(match):
        if match.group("css"):
            return f"<style>\n{_asset('bootstrap.min.css')}\n</style>"
        return f"<script>\n{_asset(_FILES[match.group('js')])}\n</script>"

    html = _REMOTE.sub(replace, html)
    left = re.findall(r'<(?:script|link|img)[^>]*(?:src|href)="https?://[^"]*"', html)
    if left:
        raise RuntimeError(f"the report still loads from the network: {left}")
    return html


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
        Path(tmp).write_text(inline_assets(Path(tmp).read_text(encoding="utf-8")),
                             encoding="utf-8")

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
            f"atlases</title><style>\n{_asset('bootstrap.min.css')}\n</style></head>"
            "<body><div class=\"container py-4\"><h1>nipype-ward group atlases</h1>" + body
            + "</div></body></html>")
    out = atlas_dir / "report.html"
    save_atomically(lambda tmp: Path(tmp).write_text(html), out)
    return out
