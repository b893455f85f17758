"""The Dagster code location loads, and its database resource reaches the project database."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from pipelines.definitions import defs
from resources.database import DatabaseResource


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_workspace_yaml_and_pyproject_point_at_the_definitions():
    import tomllib
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent
    workspace = yaml.safe_load((root / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["module_name"] == "pipelines.definitions"
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] == "pipelines.definitions"


def test_database_resource_uses_the_environment_at_run_time(db_url, monkeypatch):
    monkeypatch.setenv("DIALER_DATABASE_URL", db_url)
    resource = DatabaseResource(url=dg.EnvVar("DIALER_DATABASE_URL"))
    assert resource.resolved_url() == db_url

    @dg.asset
    def probe(database: DatabaseResource) -> int:
        with database.engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1")).scalar_one()

    result = dg.materialize([probe], resources={"database": resource})
    assert result.success and result.output_for_node("probe") == 1
