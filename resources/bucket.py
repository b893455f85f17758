"""The watched bucket as a Dagster resource."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from campaigns.core.config import DialerConfig
from campaigns.ingestion.bucket import Bucket, storage_options
from resources.settings import from_environment, resolved


class BucketResource(dg.ConfigurableResource):
    """The bucket ops drop prospect lists and DNC files into."""

    url: str = Field(description="A folder or `s3://…`: `DIALER_BUCKET_URL`, else `<DIALER_HOME>/bucket`.")
    s3_endpoint_url: str | None = Field(
        default=None, description="An S3-compatible endpoint for `s3://` buckets: `DIALER_S3_ENDPOINT_URL`, else AWS."
    )

    @classmethod
    def from_config(cls, cfg: DialerConfig) -> BucketResource:
        return cls(
            url=from_environment(cfg, "DIALER_BUCKET_URL", cfg.bucket_url),
            s3_endpoint_url=from_environment(cfg, "DIALER_S3_ENDPOINT_URL", cfg.s3_endpoint_url),
        )

    def get(self) -> Bucket:
        url = resolved(self.url) or ""
        return Bucket(url, storage_options(url, resolved(self.s3_endpoint_url)))
