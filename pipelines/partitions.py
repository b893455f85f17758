"""Partitions: one dynamic partition per uploaded prospect file and per DNC file."""

import dagster as dg

# Key: the file's key below inbox/, i.e. "<workspace>/<campaign-slug>/<file>.csv".
uploads = dg.DynamicPartitionsDefinition(name="uploads")

# Key: the file's key below dnc/, i.e. "<workspace>/<list>/<file>".
dnc_files = dg.DynamicPartitionsDefinition(name="dnc_files")
