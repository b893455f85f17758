"""Partitions of the assets: one per uploaded prospect file, per DNC file, per registry file, and per campaign and report day.

They live beside the assets that declare them; the jobs and sensors in `pipelines/` import them from here.
"""

import dagster as dg

# Key: the file's key below inbox/, i.e. "<workspace>/<campaign-slug>/<file>.csv".
uploads = dg.DynamicPartitionsDefinition(name="uploads")

# Key: the file's key below dnc/, i.e. "<workspace>/<list>/<file>".
dnc_files = dg.DynamicPartitionsDefinition(name="dnc_files")

# Reports: one partition per campaign ("<workspace>/<slug>") and dialing day.
report_campaigns = dg.DynamicPartitionsDefinition(name="report_campaigns")
report_days = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)
reports = dg.MultiPartitionsDefinition({"campaign": report_campaigns, "day": report_days})

# Key: a National DNC Registry file's name under dnc/_registry/.
registry_files = dg.DynamicPartitionsDefinition(name="registry_files")
