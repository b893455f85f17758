"""The one `Definitions` of the campaign dialer's Dagster code location.

It only assembles: each stage contributes its assets, checks, jobs, sensors and
schedules, and the resources are built here from one `DialerConfig` read when the
code location loads. A setting taken from an environment variable is bound as a
`dg.EnvVar` (the UI shows where it comes from, a run reads it when it starts); an
unset one is bound to its resolved default, such as the embedded SQLite file.
"""

import dagster as dg

from assets.calls import call_attempts
from assets.dnc import dnc_list_numbers, dnc_registry
from assets.expiry import expired_prospects
from assets.freshness import FRESHNESS_CHECKS
from assets.hopper import hopper
from assets.ingestion import UPLOAD_ASSETS
from assets.reports import report_detail, report_summary
from campaigns.core.config import DialerConfig
from pipelines.call_sensor import call_attempts_sensor
from pipelines.freshness_sensor import freshness_sensor
from pipelines.hopper_sensor import hopper_fills_sensor
from pipelines.jobs import (
    campaign_report_job,
    expire_prospects_job,
    fill_hopper_job,
    import_dnc_file,
    import_registry_file,
    load_prospect_list,
)
from pipelines.report_sensor import report_sensor
from pipelines.schedules import daily_expiry
from pipelines.sensors import dnc_sensor, inbox_sensor, registry_sensor
from resources.bucket import BucketResource
from resources.database import DatabaseResource
from resources.mailer import MailerResource
from resources.progress import no_progress


def resources_for(cfg: DialerConfig) -> dict[str, object]:
    """The resources the assets, sensors and jobs use, for the configuration `cfg`.

    Also what an in-process run passes when its configuration is not the one the
    definitions were loaded with (`job.execute_in_process(resources=...)`; a run of
    some of a job's assets needs `build_definitions(cfg)` instead, since Dagster
    refuses to swap the resources of an asset subset).
    """
    return {
        "database": DatabaseResource.from_config(cfg),
        "bucket": BucketResource.from_config(cfg),
        "mailer": MailerResource.from_config(cfg),
        "progress": no_progress,
    }


def build_definitions(cfg: DialerConfig) -> dg.Definitions:
    """Every asset, job, sensor and schedule, bound to the resources for `cfg`."""
    return dg.Definitions(
        assets=[*UPLOAD_ASSETS, dnc_list_numbers, dnc_registry, expired_prospects, hopper, call_attempts,
                report_detail, report_summary],
        asset_checks=FRESHNESS_CHECKS,
        jobs=[load_prospect_list, import_dnc_file, import_registry_file, expire_prospects_job, fill_hopper_job, campaign_report_job],
        sensors=[inbox_sensor, dnc_sensor, registry_sensor, report_sensor, hopper_fills_sensor, call_attempts_sensor,
                 freshness_sensor],
        schedules=[daily_expiry],
        resources=resources_for(cfg),
    )


defs = build_definitions(DialerConfig.from_env())
