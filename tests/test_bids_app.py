"""The BIDS App on a small fMRIPrep-shaped dataset, run as users run it."""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from conftest import RUNS, SPACE, run_app

from nipype_ward.bids import BIDS_CONFIG

K = (20, 50)
N_VOLUMES = 120  # conftest.FMRIPREP_SIM


@pytest.fixture(scope="session")
def app_output(fmriprep_dir, tmp_path_factory):
    """One run of the App with the defaults (simple confounds, z-scoring), K = 20, 50."""
    root = tmp_path_factory.mktemp("app")
    proc = run_app(fmriprep_dir, root / "out", "participant", "--n-clusters", *K,
                   "--save-compressed", "--write-provenance", "-w", root / "work",
                   "--nprocs", 2, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root / "out"


def _validate(folder):
    proc = subprocess.run(["bids-validator-deno", "--json", str(folder)],
                          capture_output=True, text=True, timeout=300)
    return json.loads(proc.stdout)["issues"]["issues"]


def test_outputs_pass_the_bids_validator(app_output):
    issues = _validate(app_output)
    errors = [(issue["code"], issue.get("location")) for issue in issues
              if issue["severity"] == "error"]
    assert errors == []
    # Every file is either BIDS or listed in .bidsignore (no NOT_INCLUDED warning).
    assert not [issue for issue in issues if issue["code"] == "NOT_INCLUDED"]


def test_outputs_parse_with_pybids_and_have_their_sidecars(app_output):
    from bids import BIDSLayout

    layout = BIDSLayout(str(app_output), validate=False,
                        config=["bids", "derivatives", str(BIDS_CONFIG)])
    dsegs = layout.get(suffix="dseg", extension=".nii.gz")
    assert len(dsegs) == len(RUNS) * len(K)
    assert {(f.entities["subject"], f.entities.get("run"), f.entities["scale"]) for f in dsegs} \
        == {(s, r, k) for s, r in (("01", 1), ("01", 2), ("02", None)) for k in K}
    assert set(layout.get_spaces()) == {"MNI152NLin2009cAsym"}  # not T1w
    assert all(f.entities["segmentation"] == "ward" for f in dsegs)
    for run in RUNS:
        for k in K:
            stem = app_output / f"{run}_{SPACE}_seg-ward_scale-{k}"
            for data, sidecar in ((f"{stem}_dseg.nii.gz", f"{stem}_dseg.json"),
                                  (f"{stem}_stat-mean_timeseries.tsv",
                                   f"{stem}_stat-mean_timeseries.json")):
                assert Path(data).is_file() and Path(sidecar).is_file(), data
            compressed = app_output / f"{run}_{SPACE}_desc-ward{k}_bold.nii.gz"
            assert compressed.is_file() and compressed.with_name(
                compressed.name.replace(".nii.gz", ".json")).is_file()
    assert len(layout.get(suffix="timeseries", statistic="mean")) == 2 * len(RUNS) * len(K)


def test_labels_time_series_and_sidecars(app_output, fmriprep_dir):
    run = RUNS[2]
    mask = nb.load(fmriprep_dir / f"{run}_{SPACE}_desc-brain_mask.nii.gz").get_fdata() > 0
    for k in K:
        stem = app_output / f"{run}_{SPACE}_seg-ward_scale-{k}"
        labels = np.asanyarray(nb.load(f"{stem}_dseg.nii.gz").dataobj)
        assert (labels > 0).sum() == mask.sum() and (labels[~mask] == 0).all()
        assert sorted(np.unique(labels[mask])) == list(range(1, k + 1))
        table = pd.read_csv(f"{stem}_dseg.tsv", sep="\t")
        assert list(table["index"]) == list(range(1, k + 1))
        assert list(table["n_voxels"]) == [int((labels == i).sum()) for i in range(1, k + 1)]
        series = pd.read_csv(f"{stem}_stat-mean_timeseries.tsv", sep="\t")
        assert series.shape == (N_VOLUMES, k)  # 'simple' censors nothing
        sidecar = json.loads(Path(f"{stem}_dseg.json").read_text())
        bold = fmriprep_dir / f"{run}_{SPACE}_desc-preproc_bold.nii.gz"
        uri = f"bids:preprocessed:{bold.relative_to(fmriprep_dir).as_posix()}"
        assert sidecar["Sources"][0] == uri
        assert sidecar["SourcesSHA256"][uri] == hashlib.sha256(bold.read_bytes()).hexdigest()
        assert sidecar["Parameters"]["preparation"]["confounds_strategy"] == "simple"
        assert sidecar["Parameters"]["preparation"]["standardize"] == "zscore_sample"
        assert sidecar["NumberOfParcels"] == k
        timing = json.loads(Path(f"{stem}_stat-mean_timeseries.json").read_text())
        assert timing["SamplingFrequency"] == 0.5 and timing["CensoredVolumes"] == []
    description = json.loads((app_output / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "nipype-ward"
    assert description["DatasetLinks"]["preprocessed"] == fmriprep_dir.resolve().as_uri()
    logs = list(app_output.glob("sub-02/log/*/nipype-ward.json"))
    assert len(logs) == 1 and "participant" in json.loads(logs[0].read_text())["command"]


def test_carpets_are_delivered_under_nipreps_names(app_output, fmriprep_dir):
    """Every run's denoising carpet and parcel carpets, and its DVARS in numbers."""
    import re

    from matplotlib import image as mpimg

    for run in RUNS:
        subject = run.split("/")[0]
        stem = app_output / subject / "figures" / f"{Path(run).name}_{SPACE}"
        carpet = mpimg.imread(f"{stem}_desc-carpet_bold.png")
        assert carpet.shape[0] > 1000 and carpet.shape[1] > 1500 and carpet.std() > 0.1
        for k in K:
            parcels = mpimg.imread(f"{stem}_seg-ward_scale-{k}_desc-parcelcarpet_bold.png")
            assert parcels.shape[1] > 1500 and parcels.std() > 0.1
    # The summary's DVARS before preparation is nipype's (fMRIPrep's) non-standardized
    # DVARS of the BOLD inside its mask.
    pytest.importorskip("nitime")
    from nipype.algorithms.confounds import compute_dvars

    run = RUNS[2]
    bold = fmriprep_dir / f"{run}_{SPACE}_desc-preproc_bold.nii.gz"
    mask = fmriprep_dir / f"{run}_{SPACE}_desc-brain_mask.nii.gz"
    reference = compute_dvars(str(bold), str(mask), intensity_normalization=0)[1]
    summary = (app_output / "sub-02" / "figures" /
               f"{Path(run).name}_{SPACE}_seg-ward_desc-summary_bold.html").read_text()
    before, after = re.findall(r"median ([0-9.e+-]+), mean ([0-9.e+-]+)", summary)
    assert float(before[0]) == pytest.approx(np.median(reference), rel=1e-3)
    assert float(before[1]) == pytest.approx(np.mean(reference), rel=1e-3)
    assert float(after[0]) < float(before[0])  # z-scored: about 1.4 against about 27
    assert f"over the {N_VOLUMES} of {N_VOLUMES} volumes kept" in summary


#: Injected before </body> of a copy of a report: once the page has loaded,
#: the browser itself counts the images and lists those that did not decode.
_IMAGE_PROBE = """<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0))
                       .map(i => i.getAttribute('src'));
  document.body.setAttribute('data-images', images.length);
  document.body.setAttribute('data-broken', JSON.stringify(broken));
  // The carpets (FD and DVARS traces above them), decoded: their pixel widths.
  document.body.setAttribute('data-carpets', JSON.stringify(
    images.filter(i => /_desc-carpet_bold\\.png$/.test(i.getAttribute('src')))
          .map(i => i.naturalWidth)));
  // Bootstrap's styles and scripts and jQuery, from the page itself.
  const navbar = document.querySelector('nav.navbar');
  document.body.setAttribute('data-navbar', navbar ? getComputedStyle(navbar).position : 'none');
  document.body.setAttribute('data-scripts',
    [typeof jQuery, typeof bootstrap, typeof bootstrap === 'object' && bootstrap.Dropdown
     ? 'dropdown' : 'none'].join(','));
});
</script></body>"""

#: Chromium with no network: every host name fails to resolve, as on an HPC
#: login node or in a secure enclave.
_OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost"


def _chromium(*args, timeout=120):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed here (.ci/run installs it)")
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_report_renders_in_chromium(app_output, fmriprep_dir):
    import re

    from matplotlib import image as mpimg
    from nilearn.interfaces.fmriprep import load_confounds_strategy

    for subject, n_runs in (("01", 2), ("02", 1)):
        report = app_output / f"sub-{subject}.html"
        html = report.read_text()
        for text in ("the series, its censored volumes",  # the reportlets' captions
                     "the share of the temporal variance kept", "The parcels over the mean EPI",
                     "A volume of the prepared series", "Methods", "Software",
                     "framewise displacement (FD, mm) and standardized DVARS",
                     "The mean series of every parcel", "DVARS (the root mean square"):
            assert text in html, text
        for reference in ("Ward, J. H. (1963)", "Thirion", "Abraham", "Gorgolewski"):
            assert reference in html
        assert html.count("no volume censored") == n_runs  # 'simple' censors nothing
        # The confounds regressed out, by name and count: those nilearn's 'simple'
        # strategy selects from each run's fMRIPrep table.
        listed = re.findall(r"Confounds regressed out \((\d+)\): <code>([^<]*)</code>", html)
        bolds = sorted(fmriprep_dir.glob(f"sub-{subject}/**/*_{SPACE}_desc-preproc_bold.nii.gz"))
        expected = sorted(tuple(load_confounds_strategy(str(bold), denoise_strategy="simple")[0]
                                .columns) for bold in bolds)
        assert sorted(tuple(names.split(", ")) for _, names in listed) == expected
        assert all(int(count) == len(names.split(", ")) for count, names in listed)
        sources = re.findall(r'<img[^>]*src="\./([^"]+)"', html)
        # Per run: quality and carpet, and per K: parcellation, compression, parcel carpet.
        assert len(sources) == n_runs * (2 + 3 * len(K))
        assert sum("_desc-carpet_bold.png" in source for source in sources) == n_runs
        probe = report.with_name(f".probe-{report.name}")
        probe.write_text(html.replace("</body>", _IMAGE_PROBE))
        try:
            dom = _chromium(_OFFLINE, "--virtual-time-budget=10000", "--dump-dom",
                            probe.as_uri()).stdout
        finally:
            probe.unlink()
        body = re.search(r"<body[^>]*>", dom).group(0)
        assert f'data-images="{len(sources)}"' in body and 'data-broken="[]"' in body, body
        carpets = json.loads(re.search(r"data-carpets=\"([^\"]*)\"", body).group(1)
                             .replace("&quot;", '"'))
        assert len(carpets) == n_runs and min(carpets) > 1500, body
        # Styled and scripted offline: Bootstrap fixes the navigation bar at the top, and
        # jQuery and Bootstrap's dropdowns are defined, all from the page itself.
        assert 'data-navbar="fixed"' in body and 'data-scripts="function,object,dropdown"' in body
        assert not re.findall(r'<(?:script|link)[^>]*(?:src|href)="https?://', html)
        for source in sources:
            assert mpimg.imread(app_output / source).shape[0] > 100
    screenshot = app_output.parent / "sub-01_report.png"
    proc = _chromium(_OFFLINE, "--window-size=1280,14000", f"--screenshot={screenshot}",
                     (app_output / "sub-01.html").as_uri())
    assert screenshot.is_file(), proc.stderr
    pixels = mpimg.imread(screenshot)
    assert pixels.std() > 0.1  # figures, not a blank page
    print(f"screenshot of the report: {screenshot}")


def test_provenance_derives_every_output_from_its_inputs(app_output, fmriprep_dir):
    from prov.model import ProvDocument

    (document_path,) = app_output.glob("sub-02/log/*/sub-02_task-rest_prov.json")
    assert document_path.with_suffix(".provn").is_file()
    document = ProvDocument.deserialize(str(document_path), format="json")
    records = document.get_records()
    entities = {str(record.identifier): dict(record.attributes) for record in records
                if record.get_type().localpart == "Entity"}
    derived = {(str(record.formal_attributes[0][1]), str(record.formal_attributes[1][1]))
               for record in records if record.get_type().localpart == "Derivation"}

    def sha(attributes):
        return next(str(v) for k, v in attributes.items() if k.localpart == "sha256")

    run = RUNS[2]
    inputs = {name: fmriprep_dir / f"{run}_{suffix}" for name, suffix in (
        ("bold", f"{SPACE}_desc-preproc_bold.nii.gz"),
        ("mask", f"{SPACE}_desc-brain_mask.nii.gz"),
        ("confounds", "desc-confounds_timeseries.tsv"))}
    ids = {}
    for name, path in inputs.items():
        (identifier,) = [i for i in entities if i.endswith(path.relative_to(fmriprep_dir).as_posix())]
        assert sha(entities[identifier]) == hashlib.sha256(path.read_bytes()).hexdigest()
        ids[name] = identifier
    # What the graph delivered: all but sidecars, logs and the report's methods,
    # which the command writes once the graph has run.
    delivered = [p for p in app_output.glob("sub-02/**/*") if p.is_file()
                 and p.suffix != ".json" and "log" not in p.parts and "desc-about" not in p.name]
    assert len(delivered) >= 6 * len(K) + 1  # dseg, table, series, metrics, figures.., tree
    for path in delivered:
        (identifier,) = [i for i in entities if i.endswith(path.relative_to(app_output).as_posix())]
        assert sha(entities[identifier]) == hashlib.sha256(path.read_bytes()).hexdigest()
        assert {(identifier, ids[name]) for name in ids} <= derived


def test_no_preparation_gives_scikit_learns_labels(fmriprep_dir, tmp_path):
    from scipy.sparse import csgraph
    from sklearn.cluster import FeatureAgglomeration
    from sklearn.feature_extraction.image import grid_to_graph

    out = tmp_path / "out"
    proc = run_app(fmriprep_dir, out, "participant", "--participant-label", "sub-02",
                   "--n-clusters", 30, "--confounds-strategy", "none", "--standardize", "none",
                   "--no-split-half", "-w", tmp_path / "work",
                   # Every node's memory bound (0.3 GB and up) is above what MultiProc is
                   # given: each runs alone, where MultiProc refuses such a run outright.
                   "--nprocs", 2, "--mem-gb", 0.25, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = RUNS[2]
    mask = nb.load(fmriprep_dir / f"{run}_{SPACE}_desc-brain_mask.nii.gz").get_fdata() > 0
    connectivity = grid_to_graph(*mask.shape, mask=mask)
    assert csgraph.connected_components(connectivity)[0] == 1  # the identity's condition
    X = nb.load(fmriprep_dir / f"{run}_{SPACE}_desc-preproc_bold.nii.gz").get_fdata()[mask]
    reference = FeatureAgglomeration(n_clusters=30, connectivity=connectivity,
                                     linkage="ward").fit(X.T).labels_
    labels = np.asanyarray(nb.load(out / f"{run}_{SPACE}_seg-ward_scale-30_dseg.nii.gz")
                           .dataobj)[mask]
    pairs = set(zip(labels.tolist(), reference.tolist()))
    assert len(pairs) == 30 == len(set(reference.tolist()))


def test_scrubbing_censors_volumes_from_the_tree_and_the_time_series(fmriprep_dir, tmp_path):
    from nilearn import signal
    from nilearn.interfaces.fmriprep import load_confounds_strategy
    from sklearn.cluster import FeatureAgglomeration
    from sklearn.feature_extraction.image import grid_to_graph

    out = tmp_path / "out"
    proc = run_app(fmriprep_dir, out, "participant", "--participant-label", "02",
                   "--n-clusters", 25, "--confounds-strategy", "scrubbing",
                   "-w", tmp_path / "work", "--nprocs", 1, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = RUNS[2]
    bold = fmriprep_dir / f"{run}_{SPACE}_desc-preproc_bold.nii.gz"
    confounds, sample_mask = load_confounds_strategy(str(bold), denoise_strategy="scrubbing")
    assert 0 < len(sample_mask) < N_VOLUMES  # the spikes are censored
    stem = out / f"{run}_{SPACE}_seg-ward_scale-25"
    series = pd.read_csv(f"{stem}_stat-mean_timeseries.tsv", sep="\t")
    assert series.shape == (len(sample_mask), 25)
    timing = json.loads(Path(f"{stem}_stat-mean_timeseries.json").read_text())
    assert timing["CensoredVolumes"] == sorted(set(range(N_VOLUMES)) - set(sample_mask.tolist()))
    # The tree saw the censored, cleaned series: nilearn's clean, then scikit-learn.
    mask = nb.load(fmriprep_dir / f"{run}_{SPACE}_desc-brain_mask.nii.gz").get_fdata() > 0
    X = nb.load(bold).get_fdata(dtype=np.float32)[mask]
    cleaned = signal.clean(X.T, confounds=confounds.to_numpy(), sample_mask=sample_mask,
                           standardize="zscore_sample", standardize_confounds=True,
                           detrend=False, filter=False, t_r=2.0, ensure_finite=False)
    reference = FeatureAgglomeration(n_clusters=25, linkage="ward",
                                     connectivity=grid_to_graph(*mask.shape, mask=mask)
                                     ).fit(cleaned).labels_
    labels = np.asanyarray(nb.load(f"{stem}_dseg.nii.gz").dataobj)[mask]
    assert len(set(zip(labels.tolist(), reference.tolist()))) == 25


def test_combined_runs_are_one_parcellation_of_the_concatenated_runs(fmriprep_dir, tmp_path):
    from nilearn import signal
    from nilearn.interfaces.fmriprep import load_confounds_strategy
    from sklearn.cluster import FeatureAgglomeration
    from sklearn.feature_extraction.image import grid_to_graph

    out = tmp_path / "out"
    proc = run_app(fmriprep_dir, out, "participant", "--participant-label", "01",
                   "--combine-runs", "--n-clusters", 30, "-w", tmp_path / "work",
                   "--nprocs", 2, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    issues = _validate(out)
    assert [i for i in issues if i["severity"] == "error"] == []
    # The reference: nilearn cleans each run, the runs are concatenated in the
    # voxels of both masks, scikit-learn clusters.
    masks, series = [], []
    for run in RUNS[:2]:
        bold = fmriprep_dir / f"{run}_{SPACE}_desc-preproc_bold.nii.gz"
        mask = nb.load(fmriprep_dir / f"{run}_{SPACE}_desc-brain_mask.nii.gz").get_fdata() > 0
        confounds, _ = load_confounds_strategy(str(bold), denoise_strategy="simple")
        cleaned = signal.clean(nb.load(bold).get_fdata(dtype=np.float32)[mask].T,
                               confounds=confounds.to_numpy(), standardize="zscore_sample",
                               standardize_confounds=True, detrend=False, filter=False,
                               t_r=2.0, ensure_finite=False)
        masks.append(mask)
        series.append((mask, cleaned))
    common = masks[0] & masks[1]
    X = np.concatenate([cleaned[:, common[mask]] for mask, cleaned in series], axis=0)
    reference = FeatureAgglomeration(n_clusters=30, linkage="ward",
                                     connectivity=grid_to_graph(*common.shape, mask=common)
                                     ).fit(X).labels_
    stem = out / "sub-01/ses-1/func/sub-01_ses-1_task-rest" f"_{SPACE}_seg-ward_scale-30"
    labels = np.asanyarray(nb.load(f"{stem}_desc-combined_dseg.nii.gz").dataobj)
    assert ((labels > 0) == common).all()
    assert len(set(zip(labels[common].tolist(), reference.tolist()))) == 30
    assert pd.read_csv(f"{stem}_stat-mean_desc-combined_timeseries.tsv", sep="\t").shape \
        == (2 * N_VOLUMES, 30)
    for run, (mask, cleaned) in zip(RUNS[:2], series):
        per_run = pd.read_csv(out / f"{run}_{SPACE}_seg-ward_scale-30_stat-mean_desc-combined"
                                    "_timeseries.tsv", sep="\t")
        first = labels[common] == int(per_run.columns[0])
        np.testing.assert_allclose(per_run.iloc[:, 0], cleaned[:, common[mask]][:, first]
                                   .mean(axis=1), rtol=1e-4, atol=1e-5)
    assert (out / "sub-01.html").is_file()


def test_bids_filter_file_selects_runs(fmriprep_dir, tmp_path):
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"bold": {"session": None}}))  # runs without a session
    proc = run_app(fmriprep_dir, tmp_path / "out", "participant", "--bids-filter-file", filters,
                   "--n-clusters", 10, "--no-split-half", "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    dsegs = sorted(p.name for p in (tmp_path / "out").rglob("*_dseg.nii.gz"))
    assert dsegs == [f"sub-02_task-rest_{SPACE}_seg-ward_scale-10_dseg.nii.gz"]
    filters.write_text(json.dumps({"bold": {"run": 2}}))
    proc = run_app(fmriprep_dir, tmp_path / "out2", "participant", "--bids-filter-file", filters,
                   "--n-clusters", 10, "--no-split-half", "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / "out2").rglob("*_dseg.nii.gz")] == [
        f"sub-01_ses-1_task-rest_run-2_{SPACE}_seg-ward_scale-10_dseg.nii.gz"]
    filters.write_text('{"anat": {}}')
    proc = run_app(fmriprep_dir, tmp_path / "out3", "participant", "--bids-filter-file", filters,
                   cwd=tmp_path)
    assert proc.returncode == 2 and "only the 'bold' query is used" in proc.stderr


def test_a_resolution_is_selected_named_and_described(fmriprep_dir, tmp_path):
    """fMRIPrep's res- entity: selected by --space X:res-2, kept in the names, with Resolution."""
    dataset = tmp_path / "fmriprep"
    shutil.copytree(fmriprep_dir, dataset, ignore=shutil.ignore_patterns("sub-01"))
    func = dataset / "sub-02" / "func"
    for path in list(func.glob(f"*_{SPACE}_*")):
        path.rename(path.with_name(path.name.replace(f"_{SPACE}_", f"_{SPACE}_res-2_")))
    proc = run_app(dataset, tmp_path / "out", "participant", "--space",
                   "MNI152NLin2009cAsym:res-2", "--n-clusters", 10, "--save-compressed",
                   "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / "sub-02" / "func"
    stem = f"sub-02_task-rest_{SPACE}_seg-ward_scale-10_res-2"
    assert (out / f"{stem}_dseg.nii.gz").is_file()
    assert (out / f"sub-02_task-rest_{SPACE}_res-2_desc-ward10_bold.nii.gz").is_file()
    assert "res-2" in json.loads((out / f"{stem}_dseg.json").read_text())["Resolution"]
    errors = [i for i in _validate(tmp_path / "out") if i["severity"] == "error"]
    assert errors == []
    proc = run_app(dataset, tmp_path / "out1", "participant", "--space",
                   "MNI152NLin2009cAsym:res-1", "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 1 and "at res-1" in proc.stderr


def test_a_rerun_with_one_more_k_reuses_the_trees(fmriprep_dir, tmp_path):
    def run(*k):
        proc = run_app(fmriprep_dir, tmp_path / "out", "participant", "--participant-label",
                       "02", "--n-clusters", *k, "-w", tmp_path / "work", "--nprocs", 1,
                       cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr

    run(15)
    trees = sorted((tmp_path / "work").rglob("*_wardtree.npz"))
    series = sorted((tmp_path / "work").rglob("*_series.npy"))
    stamps = [p.stat().st_mtime_ns for p in trees + series]
    run(15, 35)
    assert [p.stat().st_mtime_ns for p in trees + series] == stamps
    assert (tmp_path / "out" / f"{RUNS[2]}_{SPACE}_seg-ward_scale-35_dseg.nii.gz").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--participant-label", "03"], "no participant sub-03 in this dataset (it has sub-01, sub-02)"),
        (["--space", "MNI152NLin6Asym"], "no preprocessed BOLD in space MNI152NLin6Asym"),
        (["--n-clusters", "100000"], "cannot make 100000 parcels from a mask of"),
    ],
)
def test_bad_selection_is_one_line_and_writes_nothing(fmriprep_dir, tmp_path, args, message):
    out = tmp_path / "out"
    proc = run_app(fmriprep_dir, out, "participant", *args, "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert " ERROR" not in proc.stderr + proc.stdout  # Nipype's log lines
    assert not out.exists()


def test_session_label_selects_and_debug_shows_the_traceback(fmriprep_dir, tmp_path):
    proc = run_app(fmriprep_dir, tmp_path / "out", "participant", "--session-label", "2",
                   "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "no preprocessed BOLD" in proc.stderr
    proc = run_app(fmriprep_dir, tmp_path / "out", "participant", "--session-label", "2",
                   "--debug", "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    proc = run_app(fmriprep_dir, tmp_path / "out", "participant", "--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("nipype-ward ")


def test_missing_dataset_and_mask_on_another_grid(fmriprep_dir, tmp_path):
    proc = run_app(tmp_path / "nope", tmp_path / "out", "participant", cwd=tmp_path)
    assert proc.returncode == 1 and "nope: no such directory" in proc.stderr
    broken = tmp_path / "broken"
    shutil.copytree(fmriprep_dir, broken)
    mask = broken / f"{RUNS[2]}_{SPACE}_desc-brain_mask.nii.gz"
    img = nb.load(mask)
    nb.save(nb.Nifti1Image(np.asanyarray(img.dataobj)[:-1], img.affine), mask)
    proc = run_app(broken, tmp_path / "out", "participant", "--participant-label", "02",
                   "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 1
    assert f"{mask}: grid" in proc.stderr and "differs from the grid" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_more_confounds_than_volumes_is_refused(tmp_path):
    from conftest import SPIKES, write_fmriprep_dataset

    short = write_fmriprep_dataset(tmp_path / "short", spikes=SPIKES, n_volumes=36,
                                   surfaces=False)  # volume runs only: no surface file needed
    proc = run_app(short, tmp_path / "out", "participant", "--participant-label", "02",
                   "--confounds-strategy", "scrubbing", "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "the 'scrubbing' strategy regresses 35 confounds out of 33 volumes" in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = run_app(short, tmp_path / "out", "participant", "--participant-label", "02",
                   "--n-clusters", 10, "--no-split-half", "-w", tmp_path / "work", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # 'simple': 29 of 36, warned about
    assert "nipype-ward: warning:" in proc.stderr and "29 confounds out of 36" in proc.stderr


@pytest.mark.parametrize("args", [["--participant-label", "../etc"], ["--n-clusters", "0"],
                                  ["--fd-thresh", "0.3"], ["--space", "MNI:bad-2"]])
def test_bad_options_are_parser_errors(fmriprep_dir, tmp_path, args):
    proc = run_app(fmriprep_dir, tmp_path / "out", "participant", *args, cwd=tmp_path)
    assert proc.returncode == 2 and "error:" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_defaults_give_balanced_contiguous_parcels_on_the_embedded_data(tmp_path_factory,
                                                                        embedded_data):
    """The App's defaults on the embedded 3 mm series laid out as fMRIPrep would."""
    from conftest import fmriprep_confounds

    from nipype_ward.datasets import load_simulated_rest

    root = tmp_path_factory.mktemp("embedded")
    data = load_simulated_rest(data_dir=embedded_data["data_dir"])
    func = root / "fmriprep" / "sub-sim" / "func"
    func.mkdir(parents=True)
    (root / "fmriprep" / "dataset_description.json").write_text(json.dumps(
        {"Name": "embedded", "BIDSVersion": "1.9.0", "DatasetType": "derivative"}))
    stem = "sub-sim_task-rest"
    (func / f"{stem}_{SPACE}_desc-preproc_bold.nii.gz").symlink_to(data.func)
    (func / f"{stem}_{SPACE}_desc-preproc_bold.json").write_text(
        json.dumps({"RepetitionTime": data.t_r, "TaskName": "rest"}))
    (func / f"{stem}_{SPACE}_desc-brain_mask.nii.gz").symlink_to(data.mask)
    table, metadata = fmriprep_confounds(176, np.random.default_rng(0))
    table.to_csv(func / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False,
                 na_rep="n/a")
    (func / f"{stem}_desc-confounds_timeseries.json").write_text(json.dumps(metadata))
    proc = run_app(root / "fmriprep", root / "out", "participant", "-w", root / "work",
                   cwd=root)
    assert proc.returncode == 0, proc.stderr
    for k in (1000, 2000):
        metrics = json.loads((root / "out" / "sub-sim" / "func" /
                              f"{stem}_{SPACE}_seg-ward_scale-{k}_metrics.json").read_text())
        assert metrics["n_parcels"] == k and metrics["n_noncontiguous"] == 0
        assert metrics["parcel_size_max"] < 10 * metrics["parcel_size_median"], metrics
        print(k, {key: metrics[key] for key in ("r2", "homogeneity", "split_half_ari",
                                               "parcel_size_median", "parcel_size_max")})


def test_folders_above_the_dataset_give_no_entities(fmriprep_dir, tmp_path):
    # pybids parses whole paths: under /study_res-3mm_task-x/ every file would
    # have res-3mm and task-x. Entities come from file names only.
    root = tmp_path / "study_res-3mm_task-x_run-9"
    shutil.copytree(fmriprep_dir, root / "fmriprep")
    out = tmp_path / "out_ses-7"
    proc = run_app(root / "fmriprep", out, "participant", "--participant-label", "02",
                   "--n-clusters", 20, "--no-split-half", "-w", tmp_path / "work",
                   "--nprocs", 1, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / f"{RUNS[2]}_{SPACE}_seg-ward_scale-20_dseg.nii.gz").is_file()
    names = [path.name for path in out.rglob("sub-02_*")]
    assert names and not [n for n in names if "res-3mm" in n or "task-x" in n or "ses-7" in n]
    issues = _validate(out)
    assert [i for i in issues if i["severity"] == "error"] == []
