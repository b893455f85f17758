"""Import rules from docs/ARCHITECTURE.md: the domain core imports neither Dagster nor the daemon."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "campaigns": {"dagster", "dagster_webserver", "dagster_postgres", "assets", "resources", "pipelines", "dialer_daemon", "dialer_cli"},
    "dialer_daemon": {"dagster", "dagster_webserver", "dagster_postgres", "assets", "resources", "pipelines", "dialer_cli"},
    "assets": {"dialer_daemon", "dialer_cli"},
    "resources": {"dialer_daemon", "dialer_cli", "assets", "pipelines"},
    "pipelines": {"dialer_daemon", "dialer_cli"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
