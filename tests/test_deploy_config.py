"""deploy/: the production Dagster instance and workspace fit Dagster's schemas and the code.

The image itself is built and run by the smoke test (deploy/ci.sh, in CI); these checks catch a
dagster.yaml Dagster would refuse, or run queue limits that name no job, without an engine.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import yaml
from dagster._core.instance.config import dagster_instance_config

from pipelines.definitions import defs
from pipelines.jobs import QUEUE_TAG

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
INSTANCE_VARIABLES = ("DAGSTER_PG_URL", "DAGSTER_RUN_NETWORK", "DAGSTER_COMPUTE_LOG_BUCKET", "DIALER_S3_ENDPOINT_URL")


def test_production_instance_config_is_valid(tmp_path, monkeypatch):
    for name in INSTANCE_VARIABLES:
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["telemetry"] == {"enabled": False}
    assert config["run_launcher"]["class"] == "DockerRunLauncher"
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_run_queue_limits_name_the_jobs_queue_tags():
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    limits = {(limit["key"], limit["value"]) for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]}
    tagged = {name: defs.resolve_job_def(name).run_tags.get(QUEUE_TAG)
              for name in ("load_prospect_list", "campaign_report", "import_dnc_file", "import_registry_file")}
    assert tagged == {"load_prospect_list": "uploads", "campaign_report": "reports",
                      "import_dnc_file": "dnc", "import_registry_file": "dnc"}
    assert limits == {(QUEUE_TAG, value) for value in tagged.values()}
    # The Helm values (K8sRunLauncher) queue runs by the same tags, with the same limits.
    helm = yaml.safe_load((DEPLOY / "helm/values.yaml").read_text())
    queued = helm["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert {(limit["key"], limit["value"], limit["limit"]) for limit in queued["tagConcurrencyLimits"]} == {
        (limit["key"], limit["value"], limit["limit"]) for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]}
    assert queued["maxConcurrentRuns"] == config["concurrency"]["runs"]["max_concurrent_runs"]


def test_deploy_workspace_names_the_code_location():
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    pyproject = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["location_name"] == pyproject["tool"]["dagster"]["code_location_name"]
    assert server["host"] == {"env": "DAGSTER_CODE_SERVER_HOST"}


def test_the_image_lock_pins_every_dependency_the_project_declares():
    """deploy/constraints.txt is what the image installs (`pip install --no-deps` of the project
    after it): a dependency added to pyproject.toml without `deploy/lock.sh` would be missing
    from the image and fail only when its code first runs there."""
    import re

    pyproject = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())
    declared = [*pyproject["project"]["dependencies"], *pyproject["project"]["optional-dependencies"]["deploy"]]

    def name(requirement: str) -> str:
        return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")

    pinned = {line.split("==")[0].lower().replace("_", "-")
              for line in (DEPLOY / "constraints.txt").read_text().splitlines() if "==" in line}
    assert sorted(name(r) for r in declared if name(r) not in pinned) == [], "run deploy/lock.sh"
