"""The one `Definitions` of the campaign dialer's Dagster code location.

It only assembles: each stage contributes its assets, checks, sensors and
schedules, and the resources are built here. Nothing is computed at import.
"""

import dagster as dg

from assets.dnc import dnc_list_numbers, import_dnc_file
from assets.expiry import daily_expiry, expire_prospects_job, expired_prospects
from assets.hopper import fill_hopper_job, hopper, hopper_schedule
from assets.ingestion import UPLOAD_ASSETS, load_prospect_list
from assets.reports import campaign_report_job, report_detail, report_summary
from pipelines.report_sensor import report_sensor
from pipelines.sensors import dnc_sensor, inbox_sensor
from resources.bucket import BucketResource
from resources.database import DatabaseResource
from resources.mailer import MailerResource

defs = dg.Definitions(
    assets=[*UPLOAD_ASSETS, dnc_list_numbers, expired_prospects, hopper, report_detail, report_summary],
    jobs=[load_prospect_list, import_dnc_file, expire_prospects_job, fill_hopper_job, campaign_report_job],
    sensors=[inbox_sensor, dnc_sensor, report_sensor],
    schedules=[daily_expiry, hopper_schedule],
    resources={
        "database": DatabaseResource(),
        "bucket": BucketResource(),
        "mailer": MailerResource(),
    },
)
