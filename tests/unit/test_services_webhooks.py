"""Standard Webhooks signatures, checked against the spec's own reference library."""

from __future__ import annotations

import base64
import datetime as dt
import time

import pytest
from standardwebhooks import Webhook

from ads_infra.errors import ConfigurationError, WebhookVerificationError
from ads_infra.external_services import (
    ReplayGuard,
    generate_webhook_secret,
    sign_webhook,
    verify_webhook,
)
from ads_infra.external_services.webhooks import parse_webhook_secret

SECRET = generate_webhook_secret()
KEY = parse_webhook_secret(SECRET)
BODY = b'{"channel":"ops","text":"Spend spike"}'


def test_our_signature_passes_the_reference_verifier() -> None:
    headers = sign_webhook(KEY, "msg_1", BODY)
    assert Webhook(SECRET).verify(BODY, headers) == {"channel": "ops", "text": "Spend spike"}


def test_the_reference_signature_passes_ours() -> None:
    now = dt.datetime.now(dt.UTC)
    signature = Webhook(SECRET).sign("msg_2", now, BODY.decode())
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    assert verify_webhook(SECRET, headers, BODY) == "msg_2"


def test_headers_are_read_whatever_their_case_and_a_rotated_key_still_verifies() -> None:
    old = sign_webhook(parse_webhook_secret(generate_webhook_secret()), "msg_3", BODY)
    new = sign_webhook(KEY, "msg_3", BODY, now=int(old["webhook-timestamp"]))
    headers = {k.title(): v for k, v in new.items()}
    headers["Webhook-Signature"] = f"{old['webhook-signature']} {new['webhook-signature']}"
    assert verify_webhook(SECRET, headers, BODY) == "msg_3"


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_timestamp_beyond_the_tolerance_is_refused_either_way(skew: int) -> None:
    now = time.time()
    headers = sign_webhook(KEY, "msg_4", BODY, now=now + skew)
    with pytest.raises(WebhookVerificationError, match="beyond the tolerance of 300 s"):
        verify_webhook(SECRET, headers, BODY, now=now)
    assert verify_webhook(SECRET, headers, BODY, now=now, tolerance=400) == "msg_4"


def test_clock_skew_within_the_tolerance_is_accepted() -> None:
    now = time.time()
    assert verify_webhook(SECRET, sign_webhook(KEY, "m", BODY, now=now - 120), BODY, now=now)


def test_a_replayed_message_is_refused_by_the_guard() -> None:
    guard = ReplayGuard()
    headers = sign_webhook(KEY, "msg_5", BODY)
    verify_webhook(SECRET, headers, BODY, replay_guard=guard)
    with pytest.raises(WebhookVerificationError, match="already received"):
        verify_webhook(SECRET, headers, BODY, replay_guard=guard)


def test_a_forged_or_altered_message_is_refused() -> None:
    headers = sign_webhook(KEY, "msg_6", BODY)
    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify_webhook(generate_webhook_secret(), headers, BODY)
    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify_webhook(SECRET, {**headers, "webhook-id": "msg_7"}, BODY)
    forged = {**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]}
    with pytest.raises(WebhookVerificationError, match="no v1 signature matches"):
        verify_webhook(SECRET, forged, BODY)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_refused(missing: str) -> None:
    headers = sign_webhook(KEY, "msg_8", BODY)
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match="are all required"):
        verify_webhook(SECRET, headers, BODY)


def test_a_bad_secret_is_a_configuration_error_that_does_not_echo_it() -> None:
    short = "whsec_" + base64.b64encode(b"tiny").decode()
    for bad in (short, "whsec_not base64!", ""):
        with pytest.raises(ConfigurationError, match="webhook_secret: must be 'whsec_'") as err:
            parse_webhook_secret(bad)
        assert bad not in str(err.value) or not bad
