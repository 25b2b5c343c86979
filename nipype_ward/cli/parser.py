"""The BIDS App's command line: ``nipype-ward BIDS_DIR OUTPUT_DIR participant``.

:func:`get_parser` builds the parser (BIDS-Apps and fMRIPrep/XCP-D
conventions); :func:`parse_settings` turns arguments into one frozen
:class:`~nipype_ward.settings.AppSettings`, refusing bad options with a
parser error (exit 2) before anything is read.
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

from nipype_ward import __version__
from nipype_ward.bids import (
    Selection,
    check_label,
    load_filter_file,
    parse_entities,
    parse_space,
)
from nipype_ward.cli._running import GRAPH_PLUGINS
from nipype_ward.core.connectivity import NEIGHBOURHOODS
from nipype_ward.core.signals import CONFOUND_STRATEGIES
from nipype_ward.core.validation import check_n_clusters
from nipype_ward.io.errors import InputError
from nipype_ward.io.nifti import usable_cpus
from nipype_ward.settings import AppSettings, GroupSettings, ParcellationSettings
from nipype_ward.steps import SignalPreparation

ANALYSIS_LEVELS = ("participant", "group")
GROUP_REDUCTIONS = ("auto", "exact", "migp")
STANDARDIZE_CHOICES = ("zscore_sample", "psc", "none")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nipype-ward",
        description="Data-driven parcellations of fMRIPrep outputs by spatially constrained "
        "Ward clustering, written as BIDS derivatives.",
    )
    parser.add_argument("bids_dir", type=Path, help="the fMRIPrep output folder (derivatives)")
    parser.add_argument("output_dir", type=Path, help="where the derivatives are written")
    parser.add_argument("analysis_level", choices=ANALYSIS_LEVELS,
                        help="'participant': one parcellation per run; 'group': one atlas per K "
                        "from all selected subjects, in OUTPUT_DIR/atlases (BIDS-Atlas, for "
                        "XCP-D)")
    parser.add_argument("--version", action="version", version=f"nipype-ward {__version__}")

    select = parser.add_argument_group("selecting the data")
    select.add_argument("--participant-label", "--participant_label", nargs="+", default=[],
                        metavar="LABEL", help="subjects to process (with or without 'sub-'); "
                        "default: all")
    select.add_argument("--session-label", nargs="+", default=[], metavar="LABEL",
                        help="sessions to process (with or without 'ses-'); default: all")
    select.add_argument("--task", nargs="+", default=[], metavar="LABEL",
                        help="tasks to process; default: all")
    select.add_argument("--space", default="MNI152NLin2009cAsym",
                        help="output space of the fMRIPrep BOLD series: a volume space "
                        "(':res-N' selects a resolution), or a surface one, fsLR (CIFTI-2 "
                        "dtseries; ':den-91k' selects a density) or fsaverage5 (GIFTI pairs) "
                        "(default: MNI152NLin2009cAsym)")
    select.add_argument("--surfaces", nargs=2, type=Path, metavar=("LEFT", "RIGHT"),
                        help="surface data: the left and right meshes (.surf.gii) to use "
                        "instead of the space's standard ones (fsaverage5: nilearn's; fsLR: "
                        "TemplateFlow's cache)")
    select.add_argument("--bids-filter-file", type=Path, metavar="FILE",
                        help="JSON of further entities, fMRIPrep's format: "
                        '{"bold": {"acquisition": "mb4", "echo": null, "run": "*"}}')

    ward = parser.add_argument_group("parcellation")
    ward.add_argument("--n-clusters", type=int, nargs="+", default=[1000, 2000], metavar="K",
                      help="numbers of parcels (default: 1000 2000)")
    ward.add_argument("--neighbourhood", type=int, choices=NEIGHBOURHOODS, default=6,
                      help="grid neighbourhood of a voxel (default: 6)")
    ward.add_argument("--no-split-half", action="store_true",
                      help="skip the split-half reproducibility (two more trees per run)")
    ward.add_argument("--combine-runs", action="store_true",
                      help="one parcellation per subject and space from all its selected runs "
                      "(each prepared on its own, then concatenated in time), with each run's "
                      "time series on it")
    ward.add_argument("--save-compressed", action="store_true",
                      help="also write each run compressed by each parcellation (as large as "
                      "the BOLD)")

    ward.add_argument("--atlas", nargs="+", default=[], metavar="[LABEL=]FILE",
                      help="participant level: also reduce each run on these atlases (a dseg "
                      "on the run's grid, e.g. a group atlas): time series named seg-LABEL; "
                      "LABEL defaults to the file's atlas- entity")

    group = parser.add_argument_group("group level")
    group.add_argument("--group-reduction", choices=GROUP_REDUCTIONS, default="auto",
                       help="how subjects are combined before the group tree: 'exact' "
                       "concatenates their series in time (memory grows with the group), "
                       "'migp' is MIGP's incremental group PCA to --group-dimensions features "
                       "(flat memory); 'auto' (default): exact while the group matrix (voxels "
                       "x all volumes, float32) takes at most 0.5 GB or has at most "
                       "--group-dimensions volumes, else migp")
    group.add_argument("--group-dimensions", type=int, default=500, metavar="M",
                       help="features MIGP keeps (default: 500)")
    group.add_argument("--group-quality", action="store_true",
                       help="also measure the atlases, in their sidecars and report: the "
                       "agreement (ARI) of the atlases of two halves of the subjects (unless "
                       "--no-split-half), and each run's R2 and homogeneity on the atlases "
                       "against its own parcellation at the same K (a tree per run and two "
                       "more group trees: about twice the run time); the atlases are the same "
                       "with or without it")

    denoise = parser.add_argument_group(
        "denoising", "applied before the tree and the parcel time series (nilearn)"
    )
    denoise.add_argument("--confounds-strategy", choices=("none", *CONFOUND_STRATEGIES),
                         default="simple",
                         help="nilearn's load_confounds_strategy on fMRIPrep's confounds "
                         "(default: simple; scrubbing also censors high-motion volumes)")
    denoise.add_argument("--fd-thresh", type=float, metavar="MM",
                         help="framewise displacement above which 'scrubbing' censors a volume "
                         "(default: nilearn's, 0.5 mm)")
    denoise.add_argument("--dvars-thresh", type=float, metavar="Z",
                         help="standardized DVARS above which 'scrubbing' censors a volume "
                         "(default: nilearn's, 1.5)")
    denoise.add_argument("--standardize", choices=STANDARDIZE_CHOICES, default="zscore_sample",
                         help="scaling of each voxel's series (default: zscore_sample; Ward on "
                         "raw intensities gives degenerate parcels)")
    denoise.add_argument("--high-pass", type=float, metavar="HZ", help="high-pass cutoff (Hz)")
    denoise.add_argument("--low-pass", type=float, metavar="HZ", help="low-pass cutoff (Hz)")

    run = parser.add_argument_group("running")
    run.add_argument("-w", "--work-dir", type=Path, default=Path("work"),
                     help="Nipype's working directory; a re-run reuses it (default: ./work)")
    run.add_argument("--nprocs", "--nthreads", type=int, default=usable_cpus(),
                     help="processes of the MultiProc plugin (default: every CPU this "
                     "process may use, a Slurm job's or a container's)")
    run.add_argument("--omp-nthreads", type=int,
                     help="CPUs each heavy node may use: decompression, the two split-half "
                     "trees, compression (default: fMRIPrep's, min(nprocs - 1, 8); all "
                     "CPUs with the Linear plugin, 1 for a batch plugin's jobs)")
    run.add_argument("--mem-gb", type=float, help="memory MultiProc may use (GB)")
    run.add_argument("--plugin", default=None,
                     help="Nipype execution plugin: Linear, MultiProc, SLURM, ... (default: "
                     "MultiProc, Linear with --nprocs 1)")
    run.add_argument("--plugin-args", default=None, metavar="JSON_OR_KEY=VALUE",
                     help="arguments of the plugin, as JSON or key=value[,key=value], e.g. "
                     "'sbatch_args=--partition=short --time=1:00:00' for SLURM")
    run.add_argument("--use-plugin", type=Path, metavar="FILE",
                     help="a YAML file of the plugin and its arguments, fMRIPrep's format "
                     "('plugin: SLURM' and a 'plugin_args:' mapping); --plugin and "
                     "--plugin-args override it")
    run.add_argument("--write-provenance", action="store_true",
                     help="also record each run as a W3C PROV document (PROV-JSON and PROV-N) "
                     "in each subject's log folder")
    run.add_argument("--debug", action="store_true",
                     help="show Nipype's log and the traceback of any error")
    return parser


def load_plugin_file(path) -> tuple[str | None, dict]:
    """``--use-plugin FILE``: fMRIPrep's YAML (``plugin:`` and ``plugin_args:``)."""
    import yaml

    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(path, "--use-plugin: no such file") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"--use-plugin: not a readable YAML file ({exc})") from exc
    if not isinstance(content, dict) or not set(content) <= {"plugin", "plugin_args"} \
            or not isinstance(content.get("plugin_args", {}), dict):
        raise InputError(path, "--use-plugin: a mapping of 'plugin' (a name) and "
                         "'plugin_args' (a mapping), as fMRIPrep's")
    return content.get("plugin"), dict(content.get("plugin_args") or {})


def parse_plugin_args(text: str | None) -> dict:
    """``--plugin-args``: a JSON object, or ``key=value`` pairs separated by commas."""
    if not text:
        return {}
    if text.lstrip().startswith("{"):
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("--plugin-args JSON must be an object")
        return value
    pairs = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--plugin-args item {item!r} is not key=value")
        try:
            pairs[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            pairs[key.strip()] = value
    return pairs


def parse_atlas(value: str) -> tuple[str, Path]:
    """``--atlas [LABEL=]FILE``: the label (else the file's ``atlas-`` entity) and the file."""
    label, sep, path = value.partition("=")
    if not sep:
        label, path = "", value
    path = Path(path).absolute()
    if not path.is_file():
        raise InputError(path, "--atlas: no such file")
    if not label:
        label = parse_entities(path).get("atlas") or ""
        if not label:
            raise ValueError(f"--atlas {value}: the file name has no atlas- entity; "
                             "give its label as LABEL=FILE")
    return check_label(label, "atlas"), path


def parse_settings(argv=None) -> AppSettings:
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        n_clusters = tuple(check_n_clusters(args.n_clusters))
        participants = tuple(check_label(v, "subject") for v in args.participant_label)
        sessions = tuple(check_label(v, "session") for v in args.session_label)
        tasks = tuple(check_label(v, "task") for v in args.task)
        space, resolution, density = parse_space(args.space)
        if args.nprocs < 1:
            raise ValueError(f"--nprocs must be at least 1, got {args.nprocs}")
        if args.omp_nthreads is not None and args.omp_nthreads < 1:
            raise ValueError(f"--omp-nthreads must be at least 1, got {args.omp_nthreads}")
        for option, value, unit in (("--fd-thresh", args.fd_thresh, " (mm)"),
                                    ("--dvars-thresh", args.dvars_thresh, "")):
            if value is not None and args.confounds_strategy != "scrubbing":
                raise ValueError(f"{option} needs --confounds-strategy scrubbing")
            if value is not None and not value > 0:
                raise ValueError(f"{option} must be positive{unit}, got {value}")
        preparation = SignalPreparation(
            standardize=False if args.standardize == "none" else args.standardize,
            high_pass=args.high_pass,
            low_pass=args.low_pass,
            confounds_strategy=None if args.confounds_strategy == "none"
            else args.confounds_strategy,
            fd_threshold=args.fd_thresh,
            dvars_threshold=args.dvars_thresh,
        )
        if args.group_dimensions < 1:
            raise ValueError(f"--group-dimensions must be at least 1, got {args.group_dimensions}")
        atlases = tuple(parse_atlas(value) for value in args.atlas)
        if args.combine_runs and args.analysis_level != "participant":
            raise ValueError("--combine-runs belongs to the participant level (the group level "
                             "combines every run of every subject already)")
        if atlases and args.analysis_level != "participant":
            raise ValueError("--atlas belongs to the participant level")
        if args.group_quality and args.analysis_level != "group":
            raise ValueError("--group-quality belongs to the group level")
        if len({label for label, _ in atlases}) < len(atlases):
            raise ValueError("--atlas: two atlases have the same label; name them LABEL=FILE")
        file_plugin, plugin_args = (load_plugin_file(args.use_plugin) if args.use_plugin
                                    else (None, {}))
        plugin_args.update(parse_plugin_args(args.plugin_args))
        plugin_name = args.plugin or file_plugin
        if plugin_name in GRAPH_PLUGINS:
            raise ValueError(f"--plugin {plugin_name} submits the whole graph and returns "
                             "before its jobs end, so nothing could report their outcome: use "
                             "SLURM (or SGE, PBS), which waits for every job")
        filters = load_filter_file(args.bids_filter_file) if args.bids_filter_file else {}
    except (ValueError, InputError) as exc:
        parser.error(str(exc))
    plugin = plugin_name or ("Linear" if args.nprocs == 1 else "MultiProc")
    if plugin == "MultiProc":
        plugin_args = {"n_procs": args.nprocs, **plugin_args}
        if args.mem_gb is not None:
            plugin_args.setdefault("memory_gb", args.mem_gb)
    return AppSettings(
        bids_dir=args.bids_dir.absolute(),
        output_dir=args.output_dir.absolute(),
        work_dir=args.work_dir.absolute(),
        analysis_level=args.analysis_level,
        selection=Selection(
            participant_labels=participants, session_labels=sessions, tasks=tasks,
            space=space, resolution=resolution, density=density, bold_filters=filters,
        ),
        parcellation=ParcellationSettings(
            n_clusters=n_clusters,
            neighbourhood=args.neighbourhood,
            preparation=preparation,
            split_half=not args.no_split_half,
            save_compressed=args.save_compressed,
        ),
        combine_runs=args.combine_runs,
        surfaces=None if args.surfaces is None
        else tuple(path.absolute() for path in args.surfaces),
        group=GroupSettings(reduction=args.group_reduction, n_components=args.group_dimensions,
                            quality=args.group_quality),
        atlases=atlases,
        plugin=plugin,
        plugin_args=plugin_args,
        omp_nthreads=args.omp_nthreads,
        write_provenance=args.write_provenance,
        debug=args.debug,
        run_id=f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}_{uuid.uuid4()}",
    )
