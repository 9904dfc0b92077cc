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


def test_ruff_check_is_clean():
    """The lint rules of pyproject.toml ([tool.ruff]) hold for the package, tests, benchmarks and examples."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert "No module named ruff" not in run.stderr, "ruff is part of the test extras: pip install -e '.[test]'"
    assert run.returncode == 0, run.stdout[-4000:]


# Each part of the package may import from its own layer and the ones below it, never from above:
# math primitives -> layers -> model -> graphs and batches -> checkpoint I/O -> calculator -> workflows,
# data and training -> command line.
LAYERS = {
    "errors": 0,
    "device": 0,
    "files": 0,
    "so3": 1,
    "nn": 2,
    "model": 3,
    "validation": 4,
    "graph": 4,
    "batch": 4,
    "memory": 4,
    "registry": 5,
    "checkpoint": 5,
    "calculator": 6,
    "data": 7,
    "training": 7,
    "workflows": 7,
    "cli": 8,
}


def _imported_parts(path, package_parts):
    """escn_ase parts a module imports (absolute or relative)."""
    import ast

    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
                names = [target] if node.module else [[*target, alias.name] for alias in node.names]
            elif node.module and node.module.startswith("escn_ase"):
                names = [node.module.split(".")]
            else:
                continue
            for name in names:
                if len(name) > 1 and name[0] == "escn_ase":
                    found.add(name[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "escn_ase" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_imports_only_point_down_the_layers():
    package = ROOT / "escn_ase"
    violations = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("").parts  # ("escn_ase", "nn", "gate")
        if "models" in relative or relative[1:] in (("__init__",), ("__main__",)):
            continue
        part = relative[1]
        assert part in LAYERS, f"{path}: add {part!r} to LAYERS"
        package_parts = list(relative[:-1]) if relative[-1] != "__init__" else list(relative[:-1])
        for imported in _imported_parts(path, package_parts):
            if imported in LAYERS and LAYERS[imported] > LAYERS[part]:
                violations.append(f"{'/'.join(relative)} ({part}, layer {LAYERS[part]}) imports {imported} "
                                  f"(layer {LAYERS[imported]})")
    assert not violations, "\n".join(violations)
