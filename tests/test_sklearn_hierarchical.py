"""scikit-learn's own hierarchical-clustering tests, run on our Ward tree.

``sklearn/cluster/tests/test_hierarchical.py``, as installed with
scikit-learn, is run by pytest in a child process, as scikit-learn runs it
(its ``conftest.py``, fixtures and parametrizations), with
:func:`nipype_ward.core.ward.build_ward_tree` substituted for scikit-learn's
``ward_tree`` wherever a connectivity is given: in
``sklearn.cluster._agglomerative`` (``ward_tree`` and ``_TREE_BUILDERS``,
which ``AgglomerativeClustering`` and ``FeatureAgglomeration`` use),
``sklearn.cluster.ward_tree`` and every name the test module bound to it.
Unstructured calls (``connectivity=None``) stay scikit-learn's.

``SKLEARN_TESTS_GLOBAL_RANDOM_SEED`` is passed on (e.g. ``all`` runs their
seed-parametrized tests on 100 seeds); by default scikit-learn's seed 42.

This module is both halves: :class:`OurWardTree` is the pytest plugin of the
child process (it makes the substitution, marks the expected differences as
strict xfails and writes a JSON report), and :func:`test_sklearn_hierarchical`
runs the child and fails if any of scikit-learn's tests fails, errors, or
passes where a difference is expected, if our tree was never called, or if it
differs from scikit-learn's on a connected graph (each call is compared with
scikit-learn's, bit for bit, on the side).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import sparse

#: scikit-learn's tests whose result still differs with our tree, by test
#: name (every parametrization) or ``name[params]``, each with its reason.
#: They run as strict xfails: one that starts passing fails this test, and a
#: name that matches no test fails it too, so the list cannot go stale.
#: Empty since issue #17: directed graphs (``kneighbors_graph``) are
#: symmetrised as scikit-learn does, and a graph of several pieces warns, as
#: ``test_connectivity_fixing_non_lil`` asks. The two tests on such graphs
#: (2 samples in 2 pieces; 5 isolated samples in ``test_n_components``) are too
#: small for scikit-learn's bridging of the pieces to change the tree. A test
#: relying on that bridging, or matching scikit-learn's warning text
#: ("Completing it to avoid stopping the tree early") with Ward linkage, would
#: go here, e.g. ``"test_name": "scikit-learn bridges the pieces; we join them
#: at the top"``.
EXPECTED_DIFFERENCES: dict[str, str] = {}


# --------------------------------------------------------------------------
# The child process: a pytest plugin


def _to_sklearn_output(tree, n_samples, n_clusters, return_distance):
    """Our :class:`WardTree` in scikit-learn's ``ward_tree`` return format.

    ``(children, n_connected_components, n_leaves, parents[, distances])``;
    with ``n_clusters``, scikit-learn stops after ``n_samples - n_clusters``
    merges: the first merges of our full tree, which are the same.
    """
    n_merges = n_samples - 1 if n_clusters is None else n_samples - n_clusters
    children = tree.children[:n_merges]
    n_nodes = n_samples + n_merges
    parents = np.arange(n_nodes, dtype=np.intp)
    parents[children.ravel()] = np.repeat(np.arange(n_samples, n_nodes), 2)
    out = (children, tree.n_components, n_samples, parents)
    if return_distance:
        out += (tree.distances[:n_merges],)
    return out


def _same(ours, theirs) -> bool:
    """Bit-identical outputs (arrays equal with the same values, ints equal)."""
    return len(ours) == len(theirs) and all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(ours, theirs)
    )


#: Shared by the substitute and the plugin: scikit-learn's function, the
#: running test, and one record per structured call.
STATE = {"original": None, "current": None, "calls": []}


def ward_tree(X, *, connectivity=None, n_clusters=None, return_distance=False):
    """scikit-learn's ``ward_tree`` signature and output; ours whenever ``connectivity`` is given.

    A module-level function, not a method, so that joblib's ``Memory`` (which
    ``AgglomerativeClustering(memory=...)`` wraps it in) can hash it.
    """
    original = STATE["original"]
    if connectivity is None:
        return original(
            X, connectivity=None, n_clusters=n_clusters, return_distance=return_distance
        )
    from nipype_ward.core.ward import build_ward_tree

    X = np.asarray(X)
    if X.ndim == 1:  # as scikit-learn
        X = X.reshape(-1, 1)
    n_samples = X.shape[0]
    graph = connectivity
    if not sparse.issparse(graph):
        # scikit-learn takes any array-like; ours takes sparse matrices only.
        graph = sparse.csr_array(np.asarray(graph))
    if n_clusters is not None and n_clusters > n_samples:
        raise ValueError(  # scikit-learn's check and message
            "Cannot provide more clusters than samples. "
            f"{n_clusters} n_clusters was asked, and there are {n_samples} samples."
        )
    call = {"test": STATE["current"], "n_samples": n_samples}
    STATE["calls"].append(call)
    try:
        tree = build_ward_tree(X, graph)
    except Exception as exc:
        # Refused: scikit-learn must refuse it too, with the same exception type.
        call["ours_error"] = repr(exc)
        call["sklearn_error"] = _sklearn_error(X, connectivity, n_clusters, return_distance)
        call["identical"] = call["sklearn_error"] is not None and (
            call["sklearn_error"].split("(")[0] == type(exc).__name__
        )
        raise
    out = _to_sklearn_output(tree, n_samples, n_clusters, return_distance)
    call["n_components"] = int(tree.n_components)
    # On the side: scikit-learn's own result on the same input, compared.
    theirs = []
    call["sklearn_error"] = _sklearn_error(
        X, connectivity, n_clusters, return_distance, out=theirs
    )
    call["identical"] = bool(theirs) and _same(out, theirs[0])
    return out


def _sklearn_error(X, connectivity, n_clusters, return_distance, out=None):
    """scikit-learn's own ``ward_tree`` on the same input, its warnings silenced.

    Returns None and appends its output to ``out``, or the repr of its error.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = STATE["original"](
                X, connectivity=connectivity, n_clusters=n_clusters,
                return_distance=return_distance,
            )
    except Exception as exc:  # noqa: BLE001 - recorded, reported by the parent
        return repr(exc)
    if out is not None:
        out.append(result)
    return None


class OurWardTree:
    """pytest plugin: scikit-learn's ``ward_tree`` replaced by :func:`ward_tree`."""

    def __init__(self, report_path):
        self.report_path = Path(report_path)
        self.outcomes = {}
        self.collected = []
        self.patched = []  # (namespace, name, original) to restore

    # -- hooks ------------------------------------------------------------
    def pytest_configure(self, config):
        import sklearn.cluster
        import sklearn.cluster._agglomerative as agglomerative

        STATE["original"] = agglomerative.ward_tree
        self._patch(agglomerative, "ward_tree")
        self._patch(sklearn.cluster, "ward_tree")
        self._patch(agglomerative._TREE_BUILDERS, "ward")
        config.addinivalue_line("markers", "no_check_spmatrix: scikit-learn's marker")

    def _patch(self, namespace, name):
        if isinstance(namespace, dict):
            original = namespace[name]
            namespace[name] = ward_tree
        else:
            original = getattr(namespace, name)
            setattr(namespace, name, ward_tree)
        assert original is STATE["original"], f"{namespace!r}.{name} is not sklearn's ward_tree"
        self.patched.append((namespace, name, original))

    def pytest_collection_modifyitems(self, config, items):
        import pytest

        modules = {item.module for item in items if getattr(item, "module", None)}
        for module in modules:  # names bound at import (from ... import ward_tree)
            for name, value in list(vars(module).items()):
                if value is STATE["original"]:
                    self._patch(module, name)
        for item in items:
            key = item.name if item.name in EXPECTED_DIFFERENCES else item.originalname
            if key in EXPECTED_DIFFERENCES:
                item.add_marker(pytest.mark.xfail(reason=EXPECTED_DIFFERENCES[key], strict=True))
        self.collected = [item.nodeid for item in items]

    def pytest_runtest_setup(self, item):
        STATE["current"] = item.nodeid

    def pytest_runtest_logreport(self, report):
        outcome = self.outcomes.setdefault(report.nodeid, "passed")
        if hasattr(report, "wasxfail") and report.skipped:
            outcome = "xfailed"
        elif report.failed:
            outcome = "failed" if report.when == "call" else "error"
        elif report.skipped and outcome == "passed":
            outcome = "skipped"
        self.outcomes[report.nodeid] = outcome

    def pytest_sessionfinish(self, session, exitstatus):
        self.report_path.write_text(json.dumps({
            "collected": self.collected,
            "outcomes": self.outcomes,
            "calls": STATE["calls"],
            "exitstatus": int(exitstatus),
        }, indent=1))

    def pytest_unconfigure(self, config):
        for namespace, name, original in reversed(self.patched):
            if isinstance(namespace, dict):
                namespace[name] = original
            else:
                setattr(namespace, name, original)


# --------------------------------------------------------------------------
# Our test: run the child, check its report

LAUNCHER = (
    "import sys, pytest, test_sklearn_hierarchical as plugin; "
    "sys.exit(pytest.main(sys.argv[2:], plugins=[plugin.OurWardTree(sys.argv[1])]))"
)


def test_sklearn_hierarchical(tmp_path):
    import sklearn

    sklearn_dir = Path(sklearn.__file__).parent
    spec = importlib.util.find_spec("sklearn.cluster.tests.test_hierarchical")
    assert spec is not None, "scikit-learn was installed without its tests (sklearn/cluster/tests)"
    sklearn_tests = spec.origin
    report_path = tmp_path / "report.json"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    command = [
        sys.executable, "-c", LAUNCHER, str(report_path),
        sklearn_tests, "-q", "-rfEX", "-p", "no:cacheprovider",
        # scikit-learn's conftest.py (global_random_seed, ...), no ini file of ours.
        "--rootdir", str(sklearn_dir), "--confcutdir", str(sklearn_dir),
    ]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    log = f"{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    assert report_path.exists(), f"the child pytest wrote no report:\n{log}"
    report = json.loads(report_path.read_text())
    outcomes = report["outcomes"]

    # Skips are scikit-learn's own (a missing optional dependency).
    bad = {node: outcome for node, outcome in outcomes.items()
           if outcome not in ("passed", "xfailed", "skipped")}
    assert not bad, f"scikit-learn's tests failing with our ward_tree: {bad}\n{log}"
    assert run.returncode == 0, log
    assert len(outcomes) == len(report["collected"]) > 0, log

    # Every expected difference names a test (strict xfail did the rest: an
    # expected difference that passes is a failure above).
    names = {node.split("::")[-1] for node in outcomes}
    names |= {name.split("[")[0] for name in names}
    stale = set(EXPECTED_DIFFERENCES) - names
    assert not stale, f"expected differences naming no test of scikit-learn's: {stale}"

    # The substitution was used, in many tests (24 of 72 with scikit-learn
    # 1.9), and ours equals scikit-learn's wherever the graph is connected.
    calls = report["calls"]
    assert len(calls) > 0, "our ward_tree was never called: the run proves nothing"
    tests_using_ours = {call["test"] for call in calls}
    assert len(tests_using_ours) >= 10, tests_using_ours
    # Inputs we refuse, scikit-learn refuses too (same exception type).
    refused = [call for call in calls if "ours_error" in call and not call["identical"]]
    assert not refused, f"refused by us, not by scikit-learn: {refused}"
    differing = [call for call in calls
                 if call.get("n_components") == 1 and not call["identical"]]
    assert not differing, f"ours differs from scikit-learn's on connected graphs: {differing}"
    counts = {outcome: list(outcomes.values()).count(outcome)
              for outcome in sorted(set(outcomes.values()))}
    print(f"scikit-learn's test_hierarchical.py: {counts}; our ward_tree in "
          f"{len(tests_using_ours)} tests, {len(calls)} calls")
