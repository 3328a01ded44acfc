"""Objects on the team's S3-compatible store, through boto3 (the maintained S3 client).

Every call names the operation it was part of, so a failure becomes one line naming the
URL and what was being done. Writes are either create-only (``If-None-Match: *``) or
compare-and-swap (``If-Match: <etag>``); a lost condition is :class:`PreconditionFailed`,
never a silent overwrite.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from flywheel.core.errors import RemoteError, RemoteUnavailable
from flywheel.core.remote_section import RemoteConfig

T = TypeVar("T")

# Codes S3 (and S3-compatible servers) answer for a lost condition: 412, and 409 while a
# conflicting conditional write is in flight (treated alike: re-read, then decide).
_LOST = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_NOT_MODIFIED = {"304", "NotModified"}


class PreconditionFailed(RemoteError):
    """A conditional write lost: the key exists (create-only) or moved (If-Match)."""


@dataclass(frozen=True)
class Blob:
    body: bytes
    etag: str
    unchanged: bool = False  # a 304 to If-None-Match: ``body`` is empty


class ObjectStore:
    def __init__(self, config: RemoteConfig) -> None:
        if not config.enabled:
            raise RemoteError("remote.url is empty: this project keeps everything local")
        self.config = config
        self.bucket = config.bucket

    @property
    def url(self) -> str:
        return self.config.url

    def where(self) -> str:
        """The URL (and endpoint) as error messages name it; never any credential."""
        ep = self.config.endpoint_url
        return f"{self.url} (endpoint {ep})" if ep else self.url

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.config.prefix, *parts) if p)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @functools.cached_property
    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        cfg = self.config
        return boto3.session.Session().client(
            "s3",
            endpoint_url=cfg.endpoint_url or None,
            config=Config(
                connect_timeout=cfg.connect_timeout_s,
                read_timeout=cfg.read_timeout_s,
                # total_max_attempts: legacy max_attempts still retries once more.
                retries={"total_max_attempts": cfg.max_attempts, "mode": "standard"},
            ),
        )

    def _call(self, doing: str, fn: Callable[[], T]) -> T:
        """``fn`` with botocore's failures turned into one-line errors naming ``doing``."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return fn()
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in _LOST:
                raise PreconditionFailed(f"{doing} on {self.url}: condition failed") from err
            if code == "NoSuchBucket":
                raise RemoteError(
                    f"bucket {self.bucket!r} of remote.url {self.url} does not exist "
                    f"({doing}): create it, or fix remote.url"
                ) from err
            if code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}:
                raise RemoteError(
                    f"{self.where()} refused {doing} ({code}): check the AWS credentials in "
                    "the environment or ~/.aws"
                ) from err
            raise RemoteError(f"{doing} on {self.where()} failed: {code} {err}") from err
        except NoCredentialsError as err:
            raise RemoteError(
                f"no AWS credentials for {self.url} ({doing}): set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials"
            ) from err
        except (BotoCoreError, OSError) as err:
            raise RemoteUnavailable(
                f"cannot reach the remote {self.where()} while {doing}: "
                f"{str(err).splitlines()[0]}; check remote.endpoint_url and that the store is up"
            ) from err

    # reading
    def get(self, key: str, doing: str, if_none_match: str | None = None) -> Blob | None:
        """The object, or None when it does not exist; with ``if_none_match``, an empty
        ``Blob(unchanged=True)`` when it still has that ETag."""
        from botocore.exceptions import ClientError

        extra = {"IfNoneMatch": if_none_match} if if_none_match else {}

        def fetch() -> Blob | None:
            try:
                out = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
            except ClientError as err:
                code = str(err.response.get("Error", {}).get("Code", ""))
                if code in _NOT_MODIFIED and if_none_match:
                    return Blob(b"", if_none_match, unchanged=True)
                if code in _MISSING:
                    return None
                raise
            return Blob(out["Body"].read(), str(out["ETag"]))

        return self._call(doing, fetch)

    def etag(self, key: str, doing: str) -> str | None:
        from botocore.exceptions import ClientError

        def head() -> str | None:
            try:
                return str(self.client.head_object(Bucket=self.bucket, Key=key)["ETag"])
            except ClientError as err:
                if str(err.response.get("Error", {}).get("Code", "")) in _MISSING:
                    return None
                raise

        return self._call(doing, head)

    def keys(self, prefix: str, doing: str) -> list[str]:
        def listing() -> list[str]:
            pages = self.client.get_paginator("list_objects_v2")
            out: list[str] = []
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                out += [str(o["Key"]) for o in page.get("Contents", [])]
            return out

        return self._call(doing, listing)

    def download(self, key: str, dest: Path, doing: str) -> bool:
        blob = self.get(key, doing)
        if blob is None:
            return False
        dest.write_bytes(blob.body)
        return True

    # writing
    def put(
        self,
        key: str,
        body: bytes,
        doing: str,
        *,
        create_only: bool = False,
        if_match: str | None = None,
    ) -> str:
        """Write ``body``; returns its ETag. ``create_only``: only if ``key`` is absent;
        ``if_match``: only if ``key`` still has that ETag. Raises PreconditionFailed."""
        extra: dict[str, str] = {}
        if create_only:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match

        def write() -> str:
            out = self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
            return str(out["ETag"])

        return self._call(doing, write)

    def delete(self, key: str, doing: str) -> None:
        """Remove ``key`` (absent already is fine)."""
        self._call(doing, lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def ping(self) -> None:
        """Raise the one-line error if the bucket cannot be reached or listed."""
        self._call(
            "checking the bucket",
            lambda: self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1),
        )
