"""The jobs: which assets run together, by name (the sensors and schedules request these).

Each job's runs carry a `dialer/queue` tag: the production run queue (deploy/dagster.yaml, the
Helm values) limits how many runs of a kind run at once — uploads and DNC/registry imports share
the database's write load, reports the mail server.
"""

import dagster as dg

from assets.dnc import dnc_list_numbers, dnc_registry
from assets.expiry import expired_prospects
from assets.freshness import inbox_files_picked_up
from assets.hopper import hopper
from assets.ingestion import UPLOAD_ASSETS
from assets.reports import report_detail, report_summary

# The run queue's limits key on this tag (deploy/dagster.yaml, `tag_concurrency_limits`): every run
# of a job carries its value, whether a sensor, a schedule, a backfill or a person launched it.
QUEUE_TAG = "dialer/queue"

# Every step of a run in the run's own process. A run is already isolated (a process under `dagster
# dev`, a container of its own under DockerRunLauncher or K8sRunLauncher), and these jobs are short
# chains of steps that each wait on the one before, so a process per step would only add a Python
# and Dagster start (seconds each) to every step of every upload.
EXECUTOR = dg.in_process_executor

load_prospect_list = dg.define_asset_job(
    "load_prospect_list",
    # Not the inbox's freshness check on upload_file: it is about every file, not this run's.
    selection=dg.AssetSelection.assets(*UPLOAD_ASSETS) - dg.AssetSelection.checks(inbox_files_picked_up),
    description="Load one uploaded prospect list: validate, dedupe, DNC-scrub, load.",
    run_tags={QUEUE_TAG: "uploads"},
    executor_def=EXECUTOR,
)

import_dnc_file = dg.define_asset_job(
    "import_dnc_file",
    selection=dg.AssetSelection.assets(dnc_list_numbers),
    description="Add one dropped DNC file's numbers to its workspace's list.",
    run_tags={QUEUE_TAG: "dnc"},
    executor_def=EXECUTOR,
)

import_registry_file = dg.define_asset_job(
    "import_registry_file",
    selection=dg.AssetSelection.assets(dnc_registry),
    description="Import one dropped National DNC Registry file as a new registry version.",
    run_tags={QUEUE_TAG: "dnc"},
    executor_def=EXECUTOR,
)

expire_prospects_job = dg.define_asset_job("expire_prospects", selection=[expired_prospects],
                                          run_tags={QUEUE_TAG: "maintenance"}, executor_def=EXECUTOR)

fill_hopper_job = dg.define_asset_job(
    "fill_hopper", selection=[hopper],
    description="Fill every due campaign's hopper now (the daemons fill the campaigns they hold on their own).",
    run_tags={QUEUE_TAG: "maintenance"}, executor_def=EXECUTOR,
)

campaign_report_job = dg.define_asset_job(
    "campaign_report", selection=[report_detail, report_summary], run_tags={QUEUE_TAG: "reports"},
    executor_def=EXECUTOR,
)
