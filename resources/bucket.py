"""The watched bucket as a Dagster resource."""


import dagster as dg

from campaigns.core.config import DialerConfig
from campaigns.ingestion.bucket import Bucket, storage_options


class BucketResource(dg.ConfigurableResource):
    """The bucket ops drop lists into: `DIALER_BUCKET_URL` (a folder or s3://…), else `<DIALER_HOME>/bucket`."""

    url: str | None = None

    def resolved_url(self) -> str:
        return self.url or DialerConfig.from_env().bucket_url

    def get(self) -> Bucket:
        config = DialerConfig.from_env()
        url = self.resolved_url()
        return Bucket(url, storage_options(url, config.s3_endpoint_url))
