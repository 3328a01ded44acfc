"""The ``remote`` section of the params: where a team shares data, run cache and registry.

Kept beside :mod:`flywheel.core.sections` (which it extends, assembled by
:mod:`flywheel.core.config`) so that the section's URL checks stay in one place. Only
locations live here: credentials come from the AWS environment variables or files, as
boto3 reads them, and never appear in params or logs.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from flywheel.core.sections import PositiveInt, _Section


class RemoteConfig(_Section):
    # s3://bucket/prefix; empty: everything stays on this machine's disk (the default).
    url: str = ""
    # An S3-compatible endpoint (MinIO, Ceph, moto); empty: AWS's own for the region.
    endpoint_url: str = ""
    # How often a serving replica asks whether the production alias moved.
    poll_interval_s: Annotated[float, Field(gt=0.0)] = 5.0
    # How often a serving replica ships its new prediction-log lines to the remote, where
    # the monitor on any machine reads every replica's log.
    log_ship_interval_s: Annotated[float, Field(gt=0.0)] = 10.0
    connect_timeout_s: Annotated[float, Field(gt=0.0)] = 5.0
    read_timeout_s: Annotated[float, Field(gt=0.0)] = 60.0
    # Attempts per request (botocore's total_max_attempts): 1 fails fast on a dead store.
    max_attempts: PositiveInt = 3

    @field_validator("url")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme != "s3" or not parts.hostname:
            raise ValueError(f"{value!r} is not an s3://bucket/prefix URL")
        if parts.username or parts.password or "@" in parts.netloc:
            raise ValueError("must not hold credentials: set them in the AWS environment/files")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: no query or fragment in an s3:// URL")
        return value.rstrip("/")

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s)://host[:port] URL")
        if parts.username or parts.password:
            raise ValueError("must not hold credentials: set them in the AWS environment/files")
        return value.rstrip("/")

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @property
    def bucket(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        """The key prefix under the bucket, without slashes at either end ("" for none)."""
        return urlsplit(self.url).path.strip("/")
