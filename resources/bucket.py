"""The watched bucket as a Dagster resource."""


import dagster as dg

from campaigns.core import config
from campaigns.ingestion.bucket import Bucket


class BucketResource(dg.ConfigurableResource):
    """The bucket ops drop lists into: `DIALER_BUCKET_URL` (a folder or s3://…), else `<DIALER_HOME>/bucket`."""

    url: str | None = None

    def resolved_url(self) -> str:
        return self.url or config.bucket_url()

    def get(self) -> Bucket:
        return Bucket(self.resolved_url())
