"""The README's code must be the code the suite runs, so the docs cannot drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_quickstart_is_the_example_file() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / "examples" / "quickstart.py").read_text()
    assert f"```python\n{example}```" in readme


def test_quickstart_example_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "completed {'imported': 50} Importing products: 50/50"
    assert (tmp_path / "quickstart.db").exists()


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test" in ci
    assert "./scripts/test" in readme
    assert "./scripts/demo" in readme


def test_campaign_flow_example_runs(tmp_path: Path) -> None:
    """docs/concepts.md quotes this example; its output is worked out by hand in the docs."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "campaign_flow.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "partially_published 100% {'Unrecoverable': 2, 'validation': 4}",
        "product_data: 36 done, 0 failed of 36",
        "variants: 36 done, 0 failed of 36",
        "images: 26 done, 10 failed of 36",
    ]
