"""The settings of a run, as one frozen object passed down (no global config).

The command lines build an :class:`AppSettings` once from their arguments;
the workflow factories read what they need from it. Nothing here reads the
environment or ``sys.argv``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from nipype_ward.bids import Selection
from nipype_ward.io.nifti import usable_cpus
from nipype_ward.steps import SignalPreparation


@dataclass(frozen=True)
class ParcellationSettings:
    """What is computed for every run: the parcellations and their options."""

    n_clusters: tuple[int, ...] = (1000, 2000)
    neighbourhood: int = 6
    preparation: SignalPreparation = field(default_factory=SignalPreparation)
    split_half: bool = True
    save_compressed: bool = False

    def as_dict(self) -> dict:
        """JSON-able parameters, as recorded in the sidecars."""
        values = asdict(self)
        values["n_clusters"] = list(self.n_clusters)
        values["preparation"].pop("confounds_file", None)
        values["preparation"].pop("confounds_columns", None)
        return values


@dataclass(frozen=True)
class GroupSettings:
    """How the group level combines subjects (see :mod:`nipype_ward.core.reduction`)."""

    reduction: str = "exact"  #: "exact" (concatenation) or "migp"
    n_components: int = 500  #: features MIGP keeps
    #: also measure the atlases: split-half agreement of two halves of the
    #: subjects, each run on the atlases against its own parcellation
    quality: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def local_memory_gb(plugin: str, plugin_args: dict) -> float | None:
    """The memory (GB) MultiProc may use for its nodes (``memory_gb``, else Nipype's 90 % of
    the machine's); None for other plugins (Linear runs one node at a time, batch
    plugins ask each job's memory of the cluster)."""
    if plugin != "MultiProc":
        return None
    if plugin_args.get("memory_gb") is not None:
        return float(plugin_args["memory_gb"])
    from nipype.utils.profiler import get_system_total_memory_gb

    return get_system_total_memory_gb() * 0.9


def threads_per_node(plugin: str, n_procs: int | None, omp_nthreads: int | None = None) -> int:
    """CPUs one heavy node may use (its ``n_procs``: fMRIPrep's ``omp_nthreads``).

    ``omp_nthreads`` when given (``--omp-nthreads``). Otherwise: Linear runs
    one node at a time, so all of ``n_procs`` (the usable CPUs by default);
    MultiProc runs nodes side by side on ``n_procs`` CPUs, so fMRIPrep's
    ``min(n_procs - 1, 8)``, at least 1; a batch plugin (Slurm, SGE...) asks
    each job's CPUs of the cluster: 1.
    """
    if omp_nthreads is not None:
        return max(1, int(omp_nthreads))
    n_procs = max(1, int(n_procs or usable_cpus()))
    if plugin == "Linear":
        return n_procs
    if plugin == "MultiProc":
        return max(1, min(n_procs - 1, 8))
    return 1


def cap_mem_gb(mem_gb, limit_gb: float | None):
    """Nodes' memory bounds (one, or a dict of them), each capped at ``limit_gb``.

    The cap of every ``mem_gb`` a workflow sets, in one place. ``limit_gb``
    is the memory of a local scheduler (:func:`local_memory_gb`; None for
    no cap): a node whose bound is above it runs alone, where MultiProc
    would refuse the run, though the bound, taking the whole grid, is often
    several times what the node needs (a 2 mm run of 1,200 volumes,
    EPI-masked: 32 GB bounded, 1.6 GB used to prepare it).
    """
    if isinstance(mem_gb, dict):
        return {node: cap_mem_gb(value, limit_gb) for node, value in mem_gb.items()}
    return min(mem_gb, limit_gb) if limit_gb else mem_gb


@dataclass(frozen=True)
class AppSettings:
    """Everything a run of the BIDS App needs, read once from the command line."""

    bids_dir: Path
    output_dir: Path
    work_dir: Path
    analysis_level: str
    selection: Selection = field(default_factory=Selection)
    parcellation: ParcellationSettings = field(default_factory=ParcellationSettings)
    combine_runs: bool = False  #: one parcellation per subject and space from all its runs
    group: GroupSettings = field(default_factory=GroupSettings)
    #: surface data: the (left, right) meshes to use instead of the space's standard ones
    surfaces: tuple[Path, Path] | None = None
    #: (label, file) of each atlas the participant level also reduces each run on
    atlases: tuple[tuple[str, Path], ...] = ()
    plugin: str = "MultiProc"
    plugin_args: dict = field(default_factory=dict)
    omp_nthreads: int | None = None  #: CPUs a heavy node may use; None: by the plugin
    write_provenance: bool = False
    debug: bool = False
    run_id: str = "unnamed"  #: this run's ``<date>_<uuid>``, its log folder

    @property
    def memory_limit_gb(self) -> float | None:
        """The memory no node may be estimated above (:func:`local_memory_gb`)."""
        return local_memory_gb(self.plugin, self.plugin_args)

    def node_threads(self) -> int:
        """CPUs each heavy node may use (:func:`threads_per_node`)."""
        return threads_per_node(self.plugin, self.plugin_args.get("n_procs"), self.omp_nthreads)

    def node_mem_gb(self, mem_gb):
        """Nodes' memory bounds capped at :attr:`memory_limit_gb` (:func:`cap_mem_gb`)."""
        return cap_mem_gb(mem_gb, self.memory_limit_gb)
