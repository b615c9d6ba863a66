"""Where supplier pictures are kept: a local folder by default, any S3-compatible bucket optionally.

Keys are content-addressed (`<2 hex>/<sha256>.<ext>`), so the same picture
reached through two URLs, or downloaded again after a crash, is written once:
`exists` is asked before `put`. Implementations are synchronous (boto3 is);
the image job calls them from a thread.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}


def storage_key(content_hash: str, content_type: str) -> str:
    return f"{content_hash[:2]}/{content_hash}{_EXTENSIONS.get(content_type, '.bin')}"


class MediaStorage(Protocol):
    def exists(self, key: str) -> bool: ...

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def url(self, key: str) -> str:
        """Where a stored picture can be read (a file path or an object URL)."""
        ...


class LocalStorage:
    """A folder on disk; writes go through a temporary file and a rename, so no reader sees half a picture."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key {key!r} leaves the storage folder")
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def url(self, key: str) -> str:
        return self._path(key).as_uri()


class S3Storage:
    """An S3-compatible bucket (AWS S3, Cloudflare R2, MinIO) through boto3, installed as an extra.

    Credentials come from boto3's own chain (environment, config files, roles),
    never from job payloads. `public_url` is the bucket's public base, if any.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        public_url: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise ValueError("S3Storage needs a bucket name")
        if client is None:
            try:
                import boto3  # type: ignore[import-not-found, import-untyped, unused-ignore]
            except ImportError as e:
                raise ImportError("S3Storage needs boto3: pip install 'conveyor-jobs[s3]'") from e
            client = boto3.client("s3", endpoint_url=endpoint_url)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.public_url = (public_url or f"s3://{bucket}").rstrip("/")
        self._client = client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self._client.exceptions.ClientError as e:
            if str(e.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def url(self, key: str) -> str:
        return f"{self.public_url}/{self._key(key)}"
