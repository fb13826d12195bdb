"""Settings one dotted key each (etcd's config_prefix) into a document: pure, no I/O."""

from __future__ import annotations

import pytest

from ads_infra.core.errors import ConfigurationError
from ads_infra.core.overlay import (
    MAX_OVERLAY_KEY_CHARS,
    MAX_OVERLAY_KEYS,
    MAX_OVERLAY_VALUE_BYTES,
    clipped,
    overlay_document,
)
from ads_infra.core.settings import DiscoveryConfig

SOURCE = "etcd:/ads-infra/config/"


def test_dotted_keys_become_one_nested_document_with_yaml_values() -> None:
    document = overlay_document(
        {
            "services.ai.rate_limit": "5",
            "services.ai.model": "gpt-4.1",
            "services.ai.temperature": "0.25",
            "cache.default_ttl": "60",
            "discovery.resolve": "[ai.openai=ai]",
            "logging.level": "",
        },
        SOURCE,
    )
    assert document == {
        "services": {"ai": {"rate_limit": 5, "model": "gpt-4.1", "temperature": 0.25}},
        "cache": {"default_ttl": 60},
        "discovery": {"resolve": ["ai.openai=ai"]},
        "logging": {"level": None},
    }
    assert overlay_document({}, SOURCE) == {}


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("services.ai.rate_limt", "is no setting; did you mean 'services.ai.rate_limit'?"),
        ("services.ai", "is a section: one key holds one setting"),
        ("nothing.like.it", "is no setting; e.g. services.ai.rate_limit"),
        ("x" * (MAX_OVERLAY_KEY_CHARS + 1), f"longer than {MAX_OVERLAY_KEY_CHARS} characters"),
    ],
)
def test_a_key_that_is_not_one_setting_is_refused_by_name(key: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        overlay_document({key: "5"}, SOURCE)
    assert problem in str(caught.value) and SOURCE in str(caught.value)


def test_bad_values_are_refused_without_showing_them() -> None:
    with pytest.raises(ConfigurationError) as caught:
        overlay_document({"services.ai.api_key": "sk-secret: [unclosed"}, SOURCE)
    message = str(caught.value)
    assert "is not valid YAML" in message and f"{SOURCE}services.ai.api_key" in message
    assert "sk-secret" not in message
    with pytest.raises(ConfigurationError) as caught:
        overlay_document({"services.ai.model": "m" * (MAX_OVERLAY_VALUE_BYTES + 1)}, SOURCE)
    assert "services.ai.model: value is larger than 16 KiB" in str(caught.value)


def test_too_many_keys_are_refused_before_any_is_read() -> None:
    values = {f"k{n}": "1" for n in range(MAX_OVERLAY_KEYS + 1)}
    with pytest.raises(ConfigurationError) as caught:
        overlay_document(values, SOURCE)
    assert f"holds {MAX_OVERLAY_KEYS + 1} keys, more than {MAX_OVERLAY_KEYS}" in str(caught.value)


def test_what_a_holder_keeps_is_bounded_and_still_refused() -> None:
    assert clipped("services.ai.model", "gpt-4.1") == ("services.ai.model", "gpt-4.1")
    assert clipped("services.ai.model", None) == ("services.ai.model", None)
    long_key = "k" * 10_000
    key, value = clipped(long_key, "v" * 1_000_000)
    assert len(key) < 300 and value is not None and len(value) == MAX_OVERLAY_VALUE_BYTES + 1
    assert clipped(long_key + "a", None)[0] != key  # another long key keeps its own entry
    assert clipped(long_key, None)[0] == key  # its deletion finds it
    with pytest.raises(ConfigurationError, match="longer than"):
        overlay_document({key: value}, SOURCE)


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("ads-infra/config", "must start and end with '/'"),
        ("/ads-infra/services/config/", "overlaps key_prefix '/ads-infra/services/'"),
        ("/ads-infra/", "overlaps key_prefix"),
    ],
)
def test_the_config_prefix_is_checked(prefix: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        DiscoveryConfig.from_dict({"config_prefix": prefix})
    assert problem in str(caught.value) and "discovery.config_prefix" in str(caught.value)
    assert DiscoveryConfig.from_dict({"config_prefix": ""}).config_prefix == ""
