"""The seed example as a command: Ward parcellation of a rest-fMRI series.

``python workflows/rest_clustering.py`` (or ``nipype-ward-rest-clustering``)
runs :func:`~nipype_ward.workflows.init_ward_parcellation_wf` on a BOLD
series (by default the embedded simulated rest-fMRI data), prints the time
each parcellation took and its R2, and writes the label images, compressed
series, metrics and the seed's two figures per number of parcels.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from nipype_ward import __version__
from nipype_ward.cli._running import (
    GraphError,
    exit_after,
    node_durations,
    print_data_warnings,
    run_graph,
    stop_workers,
)
from nipype_ward.core.connectivity import NEIGHBOURHOODS
from nipype_ward.core.signals import STANDARDIZE
from nipype_ward.core.validation import check_n_clusters
from nipype_ward.io import errors, files, folders, geometry, nifti, series
from nipype_ward.io.masking import MASK_STRATEGIES
from nipype_ward.settings import cap_mem_gb, local_memory_gb, threads_per_node
from nipype_ward.steps import (
    SignalPreparation,
    check_n_clusters_in_mask,
    resolve_preparation,
)

DATASETS = ("simulated", "adhd")

#: Nipype plugins the seed pipeline offers (the BIDS App offers all of them).
PLUGINS = ("Linear", "MultiProc")


@dataclass(frozen=True)
class Settings:
    """Everything a run needs, read once from the command line."""

    bold: Path | None
    mask: Path | None
    dataset: str
    n_clusters: tuple[int, ...]
    neighbourhood: int
    output_dir: Path
    work_dir: Path
    plugin: str
    nprocs: int
    omp_nthreads: int | None = None  #: CPUs a heavy node may use; None: by the plugin
    preparation: SignalPreparation = SignalPreparation()
    mask_strategy: str = "epi"
    confounds: Path | None = None
    data_dir: Path | None = None
    true_regions: Path | None = None
    figures: bool = True
    verbose: bool = False
    debug: bool = False


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rest_clustering",
        description="Learn Ward parcellations of a rest-fMRI series and compress it "
        "(the nilearn 'Ward clustering to learn a brain parcellation' example as a "
        "Nipype workflow).",
    )
    parser.add_argument("--version", action="version", version=f"nipype-ward {__version__}")
    parser.add_argument("--bold", type=Path, help="4D BOLD series (NIfTI); default: --dataset")
    parser.add_argument(
        "--mask", type=Path, help="brain mask on the BOLD grid; default: computed from the EPI"
    )
    parser.add_argument(
        "--mask-strategy", choices=MASK_STRATEGIES,
        help="how the mask is computed without --mask, as nilearn's maskers: 'epi' "
        "(compute_epi_mask, the default) or 'background' (compute_background_mask: the "
        "voxels that differ from the image's border, for a series whose background is zero "
        "already, e.g. skull-stripped)",
    )
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="simulated",
        help="data to use when --bold is not given: 'simulated' (embedded, generated "
        "offline, 3 mm MNI, 176 volumes) or 'adhd' (one ADHD-200 subject through "
        "nilearn's fetcher; needs internet on first use)",
    )
    parser.add_argument(
        "--n-clusters", type=int, nargs="+", default=[1000, 2000], metavar="K",
        help="numbers of parcels (default: 1000 2000)",
    )
    parser.add_argument(
        "--neighbourhood", type=int, choices=NEIGHBOURHOODS, default=6,
        help="grid neighbourhood of a voxel (default: 6)",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=Path("ward_out"),
        help="where the results are written (default: ./ward_out)",
    )
    parser.add_argument(
        "--work-dir", type=Path, default=Path("work"),
        help="Nipype working directory; re-runs reuse it (default: ./work, as the BIDS "
        "App's -w and fMRIPrep's)",
    )
    parser.add_argument(
        "--plugin", choices=PLUGINS,
        help="Nipype execution plugin (default: Linear, or MultiProc when --nprocs > 1). "
        "One series runs fastest in one process: see bench/bench_pipeline.py",
    )
    parser.add_argument(
        "--nprocs", type=int,
        help="processes of the MultiProc plugin (default: all cores); more than 1 "
        "selects MultiProc",
    )
    parser.add_argument(
        "--omp-nthreads", type=int,
        help="CPUs each heavy node may use: decompression, the two split-half trees, "
        "compression (default: all cores with Linear; min(nprocs - 1, 8) with MultiProc, "
        "as fMRIPrep's)",
    )
    prep = parser.add_argument_group(
        "signal preparation",
        "applied before the Ward tree and the compression (nilearn.signal.clean); "
        "by default none, as in the seed example",
    )
    prep.add_argument(
        "--standardize", choices=[s for s in STANDARDIZE if s],
        help="scale each voxel's series: 'zscore_sample' (advised: Ward then groups "
        "voxels by how their signals co-vary, not by their intensity) or 'psc'",
    )
    prep.add_argument("--detrend", action="store_true", help="remove linear trends")
    prep.add_argument("--high-pass", type=float, metavar="HZ", help="high-pass cutoff (Hz)")
    prep.add_argument("--low-pass", type=float, metavar="HZ", help="low-pass cutoff (Hz)")
    prep.add_argument(
        "--t-r", type=float, metavar="SECONDS",
        help="repetition time; default: from the JSON sidecar or the NIfTI header",
    )
    prep.add_argument(
        "--confounds", type=Path, metavar="TSV",
        help="confound regressors (e.g. fMRIPrep's desc-confounds_timeseries.tsv)",
    )
    prep.add_argument(
        "--confounds-columns", nargs="+", default=(), metavar="NAME",
        help="columns of --confounds to regress out (default: all)",
    )
    parser.add_argument("--data-dir", type=Path, help="where datasets are cached")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Nipype's log")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show its traceback and Nipype's log")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    return parser


def parse_settings(argv=None) -> Settings:
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        n_clusters = tuple(check_n_clusters(args.n_clusters))
    except ValueError as exc:
        parser.error(str(exc))
    if args.nprocs is not None and args.nprocs < 1:
        parser.error(f"--nprocs must be at least 1, got {args.nprocs}")
    if args.omp_nthreads is not None and args.omp_nthreads < 1:
        parser.error(f"--omp-nthreads must be at least 1, got {args.omp_nthreads}")
    plugin = args.plugin or ("MultiProc" if (args.nprocs or 1) > 1 else "Linear")
    if args.confounds_columns and args.confounds is None:
        parser.error("--confounds-columns needs --confounds")
    if args.mask_strategy is not None and args.mask is not None:
        parser.error("--mask-strategy computes a mask: give it or --mask, not both")
    try:
        preparation = SignalPreparation(
            standardize=args.standardize or False,
            detrend=args.detrend,
            high_pass=args.high_pass,
            low_pass=args.low_pass,
            t_r=args.t_r,
            confounds_file=str(args.confounds.absolute()) if args.confounds else None,
            confounds_columns=tuple(args.confounds_columns),
        )
    except ValueError as exc:
        parser.error(str(exc))
    output_dir = args.output_dir.absolute()
    return Settings(
        bold=args.bold.absolute() if args.bold else None,
        mask=args.mask.absolute() if args.mask else None,
        dataset=args.dataset,
        n_clusters=n_clusters,
        neighbourhood=args.neighbourhood,
        output_dir=output_dir,
        work_dir=args.work_dir.absolute(),
        plugin=plugin,
        nprocs=args.nprocs or nifti.usable_cpus(),
        omp_nthreads=args.omp_nthreads,
        preparation=preparation,
        mask_strategy=args.mask_strategy or "epi",
        confounds=args.confounds.absolute() if args.confounds else None,
        data_dir=args.data_dir,
        figures=not args.no_figures,
        verbose=args.verbose or args.debug,
        debug=args.debug,
    )


def check_inputs(settings: Settings) -> None:
    """Fail before any heavy work on inputs that cannot be used, and on unwritable folders.

    Checked: the BOLD's header, the preparation against it (TR, confounds),
    the mask's grid and size against every K, and that the output and work
    folders are folders that accept files. Folders made here are removed
    again if a later check fails.
    """
    bold_img = nifti.load_bold(settings.bold)
    resolve_preparation(settings.preparation, settings.bold, bold_img, bold_img.shape[3])
    if settings.mask is not None:
        mask, _ = geometry.load_mask(
            settings.mask, reference=bold_img, reference_path=settings.bold
        )
        check_n_clusters_in_mask(settings.n_clusters, int(mask.sum()), settings.mask)
    folders.check_writable(settings.output_dir, "output folder")
    folders.check_writable(settings.work_dir, "work folder (--work-dir)")


def resolve_bold(settings: Settings) -> Settings:
    """Fill in the BOLD series from the dataset when none was given."""
    if settings.bold is not None:
        return settings
    from nipype_ward.datasets import load_bold_dataset

    dataset = load_bold_dataset(settings.dataset, data_dir=settings.data_dir)
    print(f"Using the {settings.dataset} dataset: {dataset.func}")
    regions = dataset.get("regions")  # the simulation's ground truth
    return replace(
        settings, bold=Path(dataset.func), true_regions=Path(regions) if regions else None
    )


def run_workflow(settings: Settings, output_dir: Path) -> tuple[dict, dict]:
    """Build and run the seed workflow, its sink writing into ``output_dir``.

    Returns the run time in seconds of each node and whether Nipype took it
    from its cache (:func:`cached_nodes`), each a list for map nodes.
    """
    from datetime import datetime, timezone

    from nipype_ward.workflows import init_rest_clustering_wf

    workflow = init_rest_clustering_wf(
        output_dir=output_dir,
        n_clusters=settings.n_clusters,
        neighbourhood=settings.neighbourhood,
        preparation=settings.preparation,
        mask_strategy=settings.mask_strategy,
        figures=settings.figures,
        mem_gb=cap_mem_gb(series.estimate_mem_gb(settings.bold, mask=settings.mask),
                          local_memory_gb(settings.plugin, {"n_procs": settings.nprocs})),
        omp_nthreads=threads_per_node(settings.plugin, settings.nprocs, settings.omp_nthreads),
    )
    workflow.inputs.inputnode.bold_file = str(settings.bold)
    if settings.mask is not None:
        workflow.inputs.inputnode.mask_file = str(settings.mask)
    if settings.confounds is not None:
        workflow.inputs.inputnode.confounds_file = str(settings.confounds)
    if settings.true_regions is not None:
        workflow.inputs.inputnode.true_regions_file = str(settings.true_regions)
    plugin_args = {"n_procs": settings.nprocs} if settings.plugin == "MultiProc" else {}
    started = datetime.now(timezone.utc)
    exec_graph = run_graph(workflow, work_dir=settings.work_dir, plugin=settings.plugin,
                           plugin_args=plugin_args, verbose=settings.verbose)
    return node_durations(exec_graph), cached_nodes(exec_graph, started)


def cached_nodes(exec_graph, started) -> dict:
    """Whether each node was taken from Nipype's cache rather than run: a list for map nodes.

    A node found cached is not run: Nipype loads its result file, whose
    runtime (``startTime``) is that of the run that made it, before
    ``started`` (an aware UTC datetime taken before this run began).
    """
    from datetime import datetime, timezone

    def before(runtime) -> bool:
        stamp = getattr(runtime, "startTime", None)
        if not stamp:
            return False
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None:  # Nipype on Python < 3.11 writes naive UTC
            when = when.replace(tzinfo=timezone.utc)
        return when < started

    cached = {}
    for node in exec_graph.nodes():
        runtime = node.result.runtime
        cached[node.name] = ([before(r) for r in runtime] if isinstance(runtime, list)
                             else before(runtime))
    return cached


def run(settings: Settings, *, made_work_dir: bool = False) -> tuple[dict, dict, dict[int, dict]]:
    """Run the workflow into a hidden staging folder, then move its files into place.

    The sinks of the workflow write into ``OUTPUT_DIR/.staging-*``
    (:class:`~nipype_ward.io.folders.staging_folder`), renamed into OUTPUT_DIR
    only once the whole run succeeded: a failed run adds nothing, and never
    touches the user's own files.

    After a failure that is not an input error, the work folder keeps what
    was done, and the same command resumes from it (the error says so);
    after an input error, a work folder this run made (``made_work_dir``) is
    removed, unless another run uses it
    (:class:`~nipype_ward.io.folders.work_folder`).

    Returns the node run times, which nodes came from Nipype's cache, and
    the metrics of each K.
    """

    import uuid

    settings.output_dir.mkdir(parents=True, exist_ok=True)
    with folders.staging_folder(settings.output_dir, uuid.uuid4().hex) as staging, \
            folders.work_folder(settings.work_dir, ["rest_clustering_wf"],
                                what="work folder (--work-dir)") as work:
        try:
            durations, cached = run_workflow(settings, staging)
        except GraphError as exc:
            if not exc.input_error:
                exc.args = (f"{exc}; the work folder {settings.work_dir} keeps what was done, "
                            "and the same command resumes from it",)
            elif made_work_dir:
                work.remove()
            raise
        folders.move_into(staging, settings.output_dir)
    results = {
        k: files.load_json(settings.output_dir / f"ward{k}_metrics.json")
        for k in settings.n_clusters
    }
    return durations, cached, results


def report(settings: Settings, durations: dict, results: dict[int, dict],
           cached: dict | None = None) -> None:
    """Print the seed's timings, with the R2 of each compression.

    A step whose nodes Nipype took from its cache (``cached``, see
    :func:`cached_nodes`) is marked ``(cached)``: its time is that of the
    earlier run that made it.
    """
    cached = cached or {}
    n_k = len(settings.n_clusters)
    tree_s = float(durations.get("ward_tree", 0.0))
    cut_s = durations.get("cut_tree", [0.0] * n_k)
    tree_cached = bool(cached.get("ward_tree"))
    cut_cached = cached.get("cut_tree", [False] * n_k)
    prepare_cached = bool(cached.get("prepare_signals"))
    print("BOLD read once, masked and prepared: "
          f"{float(durations.get('prepare_signals', 0.0)):.2f}s{_cached(prepare_cached)}")
    print("Ward tree (and its two split-half trees), built once for every K: "
          f"{tree_s:.2f}s{_cached(tree_cached)}")
    for index, k in enumerate(settings.n_clusters):
        # Like the seed's cached second run: only the first K pays for the tree.
        seconds = cut_s[index] + (tree_s if index == 0 else 0.0)
        steps = [cut_cached[index]] + ([tree_cached] if index == 0 else [])
        print(f"Ward agglomeration {k} clusters: {seconds:.2f}s{_cached(*steps)}")
    if prepare_cached or tree_cached or any(cut_cached):
        print(f"(cached): not run again, taken from Nipype's cache in {settings.work_dir}; "
              "the time is that of the earlier run that made it")
    for k in settings.n_clusters:
        m = results[k]
        print(
            f"{k} parcels: R2 = {m['r2']:.3f} over {_voxels(m)} "
            f"(compression x{m['compression_ratio']:.1f}; parcel sizes "
            f"{m['parcel_size_min']}/{m['parcel_size_median']:g}/{m['parcel_size_max']} "
            "min/median/max)"
        )
        quality = [f"homogeneity {_fmt(m.get('homogeneity'))}"]
        if "split_half_ari" in m:
            quality.append(f"split-half ARI {m['split_half_ari']:.3f}")
        if "n_noncontiguous" in m:
            quality.append(f"{m['n_noncontiguous']} non-contiguous parcels")
        if "true_regions_ari" in m:
            quality.append(
                f"true regions ARI {m['true_regions_ari']:.3f} / AMI {m['true_regions_ami']:.3f}"
            )
        print("    " + ", ".join(quality))
    print(f"Results in {settings.output_dir}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _cached(*flags) -> str:
    """How a step's time is marked when some or all of its nodes came from Nipype's cache."""
    if all(flags):
        return " (cached)"
    return " (partly cached)" if any(flags) else ""


def _voxels(metrics: dict) -> str:
    """The voxels clustered and, where some of the mask's were left out, the mask's."""
    n_voxels = metrics["n_voxels"]
    n_constant = metrics.get("n_voxels_constant", 0) or 0
    if not n_constant:
        return f"{n_voxels:,} voxels"
    return (f"{n_voxels:,} voxels (of the mask's {n_voxels + n_constant:,}: {n_constant:,} "
            "with a constant series left out)")


def main(argv=None) -> int:
    settings = parse_settings(argv)
    print_data_warnings("rest_clustering")
    # Folders this run makes are removed again if it stops on an input error
    # (the input must change: nothing in them is worth resuming).
    made = [path for path in (settings.output_dir, settings.work_dir) if not path.exists()]
    try:
        settings = resolve_bold(settings)
        check_inputs(settings)
        durations, cached, results = run(settings, made_work_dir=settings.work_dir in made)
    except KeyboardInterrupt:

        stop_workers()
        print(f"rest_clustering: interrupted; the same command resumes from the work folder "
              f"{settings.work_dir}", file=sys.stderr)
        return 130
    except (errors.InputError, RuntimeError, OSError) as exc:
        if isinstance(exc, errors.InputError) or getattr(exc, "input_error", False):
            for path in reversed(made):
                # Empty unless another run writes there (the work folder this
                # run filled is removed by run(), when no other run holds it).
                with contextlib.suppress(OSError):
                    path.rmdir()
        if settings.debug:
            import traceback

            traceback.print_exc()
        print(f"rest_clustering: error: {exc}", file=sys.stderr)
        return 1
    report(settings, durations, results, cached)
    return 0


def command() -> None:
    """The installed command: :func:`main`, then the process ends with its status
    (:func:`~nipype_ward.cli._running.exit_after`)."""
    exit_after(main)


if __name__ == "__main__":
    command()
