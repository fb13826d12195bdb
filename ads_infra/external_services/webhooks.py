"""Standard Webhooks signatures: signing what we send, verifying what a receiver gets.

The `Standard Webhooks <https://www.standardwebhooks.com/>`_ scheme (as used
by Svix, and in spirit by Stripe-Signature and GitHub's X-Hub-Signature-256):

- ``webhook-id``: the message's id, the same on every retry (a receiver
  deduplicates by it);
- ``webhook-timestamp``: seconds since the epoch when this attempt was sent;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>``,
  several separated by spaces while a key is rotated.

The key is a secret shared with the receiver, written ``whsec_<base64>``
(:func:`generate_webhook_secret`). A receiver calls :func:`verify_webhook`,
which checks the signature in constant time, refuses a timestamp outside
``tolerance`` seconds of its clock (a replay of an old capture) and, given a
:class:`ReplayGuard`, an id it has already accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Mapping

from ads_infra.core.errors import ConfigurationError, WebhookVerificationError
from ads_infra.core.redact import Secret

__all__ = [
    "DEFAULT_TOLERANCE",
    "ReplayGuard",
    "generate_webhook_secret",
    "parse_webhook_secret",
    "sign_webhook",
    "verify_webhook",
]

SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
DEFAULT_TOLERANCE = 300  # seconds, the spec's recommendation
_MIN_KEY_BYTES = 24  # the spec: between 24 and 64 bytes


def generate_webhook_secret() -> str:
    """A new secret to share with a receiver: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def parse_webhook_secret(secret: Secret | str, *, key: str = "webhook_secret") -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional).

    ConfigurationError naming ``key`` (never the value) when it is not base64 of
    at least 24 bytes.
    """
    text = secret.get_secret_value() if isinstance(secret, Secret) else secret
    text = text.strip().removeprefix(SECRET_PREFIX)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) < _MIN_KEY_BYTES:
        raise ConfigurationError(
            f"must be 'whsec_' followed by base64 of at least {_MIN_KEY_BYTES} random bytes; "
            "generate one with `python -c 'from ads_infra.external_services import "
            "generate_webhook_secret as g; print(g())'` and give the same to the receiver",
            key=key,
        )
    return raw


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign_webhook(
    key: bytes, msg_id: str, body: bytes, *, now: float | None = None
) -> dict[str, str]:
    """The three headers that sign ``body`` as message ``msg_id``, sent at ``now``."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + _signature(key, msg_id, timestamp, body),
    }


class ReplayGuard:
    """The message ids a receiver has accepted, remembered while their timestamp is
    within tolerance (older ones are refused by the timestamp check anyway).

    In memory and per process: several receiver processes need a shared store
    (e.g. Redis ``SET id NX EX``) doing the same.
    """

    def __init__(self, tolerance: float = DEFAULT_TOLERANCE) -> None:
        self.tolerance = tolerance
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, msg_id: str, now: float) -> bool:
        """Record ``msg_id``; False when it was already accepted."""
        with self._lock:
            if len(self._seen) > 1024:
                horizon = now - 2 * self.tolerance
                self._seen = {k: t for k, t in self._seen.items() if t >= horizon}
            if msg_id in self._seen:
                return False
            self._seen[msg_id] = now
            return True


def verify_webhook(
    secret: Secret | str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    replay_guard: ReplayGuard | None = None,
    now: float | None = None,
) -> str:
    """Check a received webhook; return its ``webhook-id``, or raise WebhookVerificationError.

    ``body`` must be the raw bytes received (not re-serialized JSON). Refused:
    missing headers, a timestamp more than ``tolerance`` seconds from ``now``
    (either way: clock skew is allowed up to it), no ``v1`` signature that
    matches, or (with ``replay_guard``) an id already accepted.
    """
    key = secret if isinstance(secret, bytes) else parse_webhook_secret(secret)
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id = lower.get("webhook-id", "")
    stamp = lower.get("webhook-timestamp", "")
    signatures = lower.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise WebhookVerificationError(
            "webhook refused: the webhook-id, webhook-timestamp and webhook-signature "
            "headers are all required"
        )
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError(
            "webhook refused: webhook-timestamp is not whole seconds since the epoch"
        ) from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"webhook refused: its timestamp is {now - timestamp:+.0f} s from this clock, "
            f"beyond the tolerance of {tolerance:g} s (a replay, or a clock to fix)"
        )
    expected = _signature(key, msg_id, timestamp, body)
    offered = [part.partition(",") for part in signatures.split()]
    if not any(
        version == "v1" and hmac.compare_digest(value, expected) for version, _, value in offered
    ):
        raise WebhookVerificationError(
            "webhook refused: no v1 signature matches; the body was altered, or the "
            "sender uses another secret"
        )
    if replay_guard is not None and not replay_guard.first_time(msg_id, now):
        raise WebhookVerificationError(
            f"webhook refused: message {msg_id!r} was already received (a replay)"
        )
    return msg_id
