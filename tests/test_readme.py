"""The README's Python blocks run as a reader copies them, so they stay true.

Each ```python block is written to a file as it stands and run by a fresh
interpreter in an empty folder, on the embedded data (generated once for
the test run: ``NIPYPE_WARD_DATA``); it must exit 0 and print no traceback.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"

#: The body of every ```python block of the README, in order.
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README.read_text(), flags=re.DOTALL | re.MULTILINE)


def test_the_readme_has_its_python_blocks():
    assert len(BLOCKS) >= 2  # the sub-workflow in a pipeline, and one node


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"block{i + 1}")
def test_a_readme_python_block_runs_as_written(index, embedded_data, tmp_path):
    script = tmp_path / f"readme_block{index + 1}.py"
    script.write_text(BLOCKS[index])
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
        timeout=600, env={**os.environ, "NIPYPE_WARD_DATA": str(embedded_data["data_dir"])},
    )
    assert proc.returncode == 0, f"{BLOCKS[index]}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert "Traceback" not in proc.stdout + proc.stderr


def _requirements(text: str) -> list[str]:
    """Distribution names of setup.cfg requirement lines (comments and %(...)s left out)."""
    names = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("%("):
            names.append(re.split(r"[\s<>=!~;\[]", line)[0])
    return names


def test_the_docs_list_every_dependency_of_setup_cfg():
    """docs/usage.rst names each package of setup.cfg, as ``name``, in its installation section."""
    import configparser

    config = configparser.ConfigParser(interpolation=None)
    config.read(Path(__file__).parents[1] / "setup.cfg")
    usage = (Path(__file__).parents[1] / "docs" / "usage.rst").read_text()
    installation = usage[usage.index("Installation\n"):usage.index("Quick start\n")]
    groups = {"install_requires": config["options"]["install_requires"]}
    groups |= {f"[{extra}]": config["options.extras_require"][extra]
               for extra in ("test", "bench", "docs")}
    for group, text in groups.items():
        for name in _requirements(text):
            assert f"``{name}``" in installation, f"{group}: {name} is not in docs/usage.rst"
        assert group == "install_requires" or f"'.{group}'" in installation


def test_ci_runs_the_readmes_test_command_then_the_heavy_tier():
    """The Quick start's two commands: the demo, then the tests; .ci/run runs the latter as written."""
    text = README.read_text()
    quick_start = text[text.index("## Quick start"):]
    block = re.search(r"```bash\n(.*?)```", quick_start, flags=re.DOTALL).group(1)
    demo, tests = block.strip().splitlines()
    assert "workflows/rest_clustering.py" in demo
    assert tests.endswith('python -m pytest -n auto -m "not heavy"')
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text().splitlines()
    assert tests in ci
    assert ci.index("python -m pytest -n auto -m heavy") > ci.index(tests)
