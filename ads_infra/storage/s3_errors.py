"""The errors the S3 backend raises: obstore's failures as ads-infra errors, without secrets.

obstore's messages are long debug dumps (the request, its retries, the
response body) that repeat the request URL whole: only a first line is kept,
with the configured credentials and every URL's password or signature masked.
"""

from __future__ import annotations

import re
from typing import NoReturn
from urllib.parse import unquote, urlsplit

from obstore.exceptions import AlreadyExistsError, NotFoundError, PreconditionError

from ads_infra.core.errors import ObjectExistsError, StorageError, StoredFileNotFoundError
from ads_infra.core.redact import mask_url
from ads_infra.core.settings import StorageConfig

__all__ = ["S3Errors"]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


class S3Errors:
    """Builds the errors of one bucket (``target`` names it in every message)."""

    def __init__(self, config: StorageConfig, target: str) -> None:
        self.config = config
        self.target = target

    def fail(self, exc: BaseException, action: str, key: str | None = None) -> NoReturn:
        if isinstance(exc, NotFoundError | FileNotFoundError) and key is not None:
            raise StoredFileNotFoundError(key) from None
        if isinstance(exc, AlreadyExistsError | PreconditionError) and key is not None:
            raise ObjectExistsError(
                f"a file named {key!r} is already stored in {self.target} (or being written); "
                "delete it first or choose another name"
            ) from None
        what = f" {key!r}" if key else ""
        raise StorageError(
            f"S3 {action}{what} failed on {self.target}: {self.summary(exc)}; "
            "check the bucket, endpoint (ADS_S3_ENDPOINT_URL) and credentials"
        ) from None

    def summary(self, exc: BaseException) -> str:
        """obstore's messages are long debug dumps (request, retries, body): keep the
        first line, and never a credential."""
        lines = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {self.scrub(lines[0] if lines else '')[:240]}"

    def scrub(self, text: str) -> str:
        """``text`` without the configured credentials or any URL's password or signature.

        obstore repeats the request URL whole. StorageConfig refuses a password in
        ``s3_endpoint_url``, but one set on the object afterwards must not leak either.
        """
        secrets = [
            s.get_secret_value()
            for s in (self.config.s3_access_key_id, self.config.s3_secret_access_key)
            if s
        ]
        try:
            password = urlsplit(self.config.s3_endpoint_url or "").password
        except ValueError:  # unparseable: the URL masking below is all there is
            password = None
        if password:
            secrets += [password, unquote(password)]
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return _URL.sub(lambda match: mask_url(match.group()), text)
