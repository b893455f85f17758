"""The layout rules of docs/ARCHITECTURE.md, checked on the code's own imports.

- The domain core imports neither Dagster nor the daemon nor any adapter; the daemon imports
  no Dagster.
- Inside the core, stage packages import only the stages below them:
  core ← setup ← ingestion, dialing ← reporting (so the dialing hot path never loads the
  CSV reader or the diagnostics).
- Adapters (assets, pipelines, the CLI, the daemon) write no SQL: they do not import
  sqlalchemy, they call the core's use cases.
- `assets/` does not import `pipelines/` (the wiring package imports the assets).
- Only `campaigns/core/config.py` reads the environment.
- `campaigns/` keeps at most six modules at its top level; the rest lives in stage packages.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DAGSTER = {"dagster", "dagster_webserver", "dagster_postgres"}

FORBIDDEN = {
    "campaigns": DAGSTER | {"assets", "resources", "pipelines", "dialer_daemon", "dialer_cli"},
    "dialer_daemon": DAGSTER | {"assets", "resources", "pipelines", "dialer_cli", "sqlalchemy"},
    "assets": {"dialer_daemon", "dialer_cli", "pipelines", "sqlalchemy"},
    "resources": {"dialer_daemon", "dialer_cli", "assets", "pipelines"},
    "pipelines": {"dialer_daemon", "dialer_cli", "sqlalchemy"},
    "dialer_cli": {"sqlalchemy"},
}

# Which stage packages of the core each stage may import (besides itself).
STAGES = {
    "core": set(),
    "setup": {"core"},
    "registry": {"core"},
    "ingestion": {"core", "setup", "registry"},
    "dialing": {"core", "setup", "registry"},
    "reporting": {"core", "setup", "registry", "ingestion", "dialing"},
}
TOP_LEVEL_MODULES = 6


def _imported_modules(path: Path) -> set[str]:
    """Every absolute module name `path` imports, anywhere in the file (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package):
    offenders = {}
    for path in _sources(package):
        tops = {name.split(".")[0] for name in _imported_modules(path)}
        if bad := sorted(tops & FORBIDDEN[package]):
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_imports_only_the_stages_below_it(stage):
    offenders = {}
    for path in _sources(f"campaigns/{stage}"):
        used = {
            name.split(".")[1]
            for name in _imported_modules(path)
            if name.startswith("campaigns.") and name.split(".")[1] in STAGES
        }
        if bad := sorted(used - STAGES[stage] - {stage}):
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_every_core_module_is_in_a_stage_package():
    top = sorted(p.name for p in (ROOT / "campaigns").glob("*.py"))
    assert len(top) <= TOP_LEVEL_MODULES, top
    packages = {p.name for p in (ROOT / "campaigns").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(STAGES)


def test_only_the_config_module_reads_the_environment():
    pattern = re.compile(r"\bos\.(environ|getenv|putenv|unsetenv)\b|\bfrom os import .*\b(environ|getenv)\b")
    readers = []
    for path in _sources("campaigns"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            if pattern.search(stripped) and not stripped.startswith("#"):
                readers.append(f"{path.relative_to(ROOT)}:{number}")
    assert {r.split(":")[0] for r in readers} <= {"campaigns/core/config.py"}, readers
