"""The jobs: which assets run together, by name (the sensors and schedules request these).

Each job carries a `dialer/kind` tag: the production run queue (deploy/dagster.yaml, the Helm
values) limits how many runs of a kind run at once — uploads and DNC/registry imports share the
database's write load, reports the mail server.
"""

import dagster as dg

from assets.dnc import dnc_list_numbers, dnc_registry
from assets.expiry import expired_prospects
from assets.freshness import inbox_files_picked_up
from assets.hopper import hopper
from assets.ingestion import UPLOAD_ASSETS
from assets.reports import report_detail, report_summary

load_prospect_list = dg.define_asset_job(
    "load_prospect_list",
    # Not the inbox's freshness check on upload_file: it is about every file, not this run's.
    selection=dg.AssetSelection.assets(*UPLOAD_ASSETS) - dg.AssetSelection.checks(inbox_files_picked_up),
    description="Load one uploaded prospect list: validate, dedupe, DNC-scrub, load.",
    tags={"dialer/kind": "upload"},
)

import_dnc_file = dg.define_asset_job(
    "import_dnc_file",
    selection=dg.AssetSelection.assets(dnc_list_numbers),
    description="Add one dropped DNC file's numbers to its workspace's list.",
    tags={"dialer/kind": "upload"},
)

import_registry_file = dg.define_asset_job(
    "import_registry_file",
    selection=dg.AssetSelection.assets(dnc_registry),
    description="Import one dropped National DNC Registry file as a new registry version.",
    tags={"dialer/kind": "upload"},
)

expire_prospects_job = dg.define_asset_job("expire_prospects", selection=[expired_prospects],
                                          tags={"dialer/kind": "maintenance"})

fill_hopper_job = dg.define_asset_job(
    "fill_hopper", selection=[hopper],
    description="Fill every due campaign's hopper now (the daemons fill the campaigns they hold on their own).",
    tags={"dialer/kind": "maintenance"},
)

campaign_report_job = dg.define_asset_job("campaign_report", selection=[report_detail, report_summary],
                                          tags={"dialer/kind": "report"})
