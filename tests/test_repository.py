"""The repository keeps its promises: README's first commands, CI calling the README's test command."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _first_code_block() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```bash")
    end = lines.index("```", start + 1)
    return lines[start + 1 : end]


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text().splitlines()
    assert readme[2] == "```bash"
    install_and_run, install_and_test = _first_code_block()
    assert install_and_run.startswith("pip install") and "examples/quickstart.py" in install_and_run
    assert install_and_test.startswith("pip install") and install_and_test.endswith("python -m pytest -q")


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    extracted = subprocess.run(
        ["bash", "-c", script.split("test_command=", 1)[1].split("\n", 1)[0].join(["x=", "; echo \"$x\""])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert extracted == _first_code_block()[1]
    assert 'eval "$test_command"' in script


def test_models_and_card_agree():
    card = (ROOT / "models" / "escn-emt-small.md").read_text()
    assert (ROOT / "models" / "escn-emt-small.pt").exists()
    assert (ROOT / "models" / "escn-emt-small.pt").stat().st_size < 20 * 2**20
    assert "EMT" in card and "not DFT" in card
