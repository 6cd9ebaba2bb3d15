"""The import boundaries of DESIGN.md, as pyproject.toml's import-linter contracts declare them.

scripts/test.sh runs ``lint-imports``; these tests keep its contracts honest:
a new callcore module must be named as reachable from the portal or not, and
the contracts must catch the imports they are there to refuse.
"""

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import callcore

ROOT = Path(__file__).resolve().parents[2]
# What the Django apps may import from the call core: the contract, and the pure planning modules.
REACHABLE_FROM_THE_PORTAL = {
    "callcore",
    "callcore.contract",
    "callcore.decide",
    "callcore.setup_types",
    "callcore.snapshot_index",
}


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["name"]: c for c in config["contracts"]}


def portal_contract() -> dict:
    (contract,) = [
        c for c in contracts().values() if c.get("source_modules") == ["billing", "security", "softswitch_portal"]
    ]
    return contract


def copy_of_the_tree(tmp_path: Path) -> Path:
    """The project's packages and pyproject.toml, where a test may add a module without touching the tree."""
    copy = tmp_path / "tree"
    skip = shutil.ignore_patterns(".venv", ".git", "var", "tests", "bench", "static", "templates", "__pycache__", ".*")
    shutil.copytree(ROOT, copy, ignore=skip)
    return copy


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is not installed"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)}
    return subprocess.run([lint, "--no-cache", "--no-logo"], cwd=tree, env=env, capture_output=True, text=True)


def test_every_callcore_module_is_either_reachable_from_the_portal_or_forbidden_to_it():
    modules = {"callcore"} | {m.name for m in pkgutil.iter_modules(callcore.__path__, "callcore.")}
    forbidden = set(portal_contract()["forbidden_modules"])
    allowed = REACHABLE_FROM_THE_PORTAL & modules
    assert modules == forbidden | allowed, f"name each of {sorted(modules - forbidden - allowed)} in one list"
    assert not forbidden & allowed


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("billing/_boundary_probe.py", "from callcore import live\n", "reach the call core only"),
        ("callcore/_boundary_probe.py", "import django.conf\n", "neither Django"),
        ("callcore/_boundary_probe.py", "from billing import models\n", "neither Django"),
    ],
)
def test_lint_imports_refuses_an_import_across_a_boundary(tmp_path, module, line, contract):
    """A copy of the tree with one forbidden import: lint-imports must fail and name the contract."""
    copy = copy_of_the_tree(tmp_path)
    (copy / module).write_text(line)
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    broken = [name for name in contracts() if contract in name]
    assert broken and f"{broken[0]} BROKEN" in " ".join(result.stdout.split())


def test_lint_imports_refuses_a_cycle_inside_an_app(tmp_path):
    copy = copy_of_the_tree(tmp_path)
    (copy / "security" / "_cycle_a.py").write_text("from security import _cycle_b\n")
    (copy / "security" / "_cycle_b.py").write_text("from security import _cycle_a\n")
    result = lint_imports(copy)
    assert result.returncode != 0
    assert "No cycles are allowed in security" in result.stdout
