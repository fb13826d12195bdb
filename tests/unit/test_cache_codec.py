"""The cache payload codec: formats, markers, compression, refusals."""

from __future__ import annotations

import pickle

import orjson
import pytest

from ads_infra.cache import Codec
from ads_infra.errors import CacheSerializationError, ConfigurationError

AD = {"id": 1, "headline": "Save 30%", "tags": ["a", "b"], "score": 0.5, "active": True}


def test_json_is_stored_as_plain_json() -> None:
    codec = Codec("json")
    data = codec.encode(AD)
    assert data == orjson.dumps(AD)
    assert codec.decode(data) == AD


@pytest.mark.parametrize("value", [None, 0, -3, 1.5, "", "text", [], {}, [1, "a", None], True])
def test_json_round_trips_scalars_and_containers(value: object) -> None:
    codec = Codec("json")
    assert codec.decode(codec.encode(value)) == value


def test_payloads_above_the_threshold_are_compressed_and_marked() -> None:
    codec = Codec("json", compression_threshold=100)
    big = {"description": "free shipping " * 200}
    data = codec.encode(big)
    assert data[0] == 0x01
    assert len(data) < len(orjson.dumps(big)) / 4
    assert codec.decode(data) == big
    # Any reader decodes it, whatever its own settings.
    assert Codec("json", compression_threshold=None).decode(data) == big


def test_incompressible_payloads_stay_plain() -> None:
    codec = Codec("json", compression_threshold=10)
    value = "".join(chr(33 + (i * 7919) % 90) for i in range(40))
    assert codec.encode(value) == orjson.dumps(value)


def test_no_threshold_never_compresses() -> None:
    codec = Codec("json", compression_threshold=None)
    big = {"description": "x" * 10_000}
    assert codec.encode(big) == orjson.dumps(big)


@pytest.mark.parametrize("threshold", [None, 50])
def test_msgpack_round_trips_and_is_marked(threshold: int | None) -> None:
    codec = Codec("msgpack", compression_threshold=threshold)
    value = {"blob": "y" * 400, "n": [1, 2, 3]}
    data = codec.encode(value)
    assert data[0] in (0x02, 0x03)
    assert codec.decode(data) == value
    assert Codec("json").decode(data) == value  # readers follow the marker


def test_pickle_only_when_chosen() -> None:
    writer = Codec("pickle")
    data = writer.encode({1: {2, 3}})
    assert data[0] == 0x04
    assert writer.decode(data) == {1: {2, 3}}
    with pytest.raises(CacheSerializationError, match="does not allow pickle"):
        Codec("json").decode(data)


def test_a_forged_pickle_is_never_loaded_by_a_json_cache() -> None:
    forged = b"\x04" + pickle.dumps(print)
    with pytest.raises(CacheSerializationError, match="does not allow pickle"):
        Codec("json").decode(forged)


def test_unserializable_value_names_the_type_and_the_fix() -> None:
    with pytest.raises(CacheSerializationError) as caught:
        Codec("json").encode({"when": object()})
    message = str(caught.value)
    assert "dict" in message and "json" in message and "cache.serializer" in message


def test_every_serializer_failure_is_a_serialization_error() -> None:
    def local() -> None: ...

    with pytest.raises(CacheSerializationError, match="msgpack"):
        Codec("msgpack").encode({"big": 2**70})  # msgpack raises OverflowError
    with pytest.raises(CacheSerializationError, match="pickle"):
        Codec("pickle", allow_pickle=True).encode(local)  # pickle raises AttributeError


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"{not json", "not valid JSON"), (b"", "empty"), (b"\x07abc", "unknown format marker 0x07"),
     (b"\x01not zlib", "could not be read")],
)  # fmt: skip
def test_corrupt_payloads_are_clear_errors(payload: bytes, reason: str) -> None:
    with pytest.raises(CacheSerializationError, match=reason):
        Codec("json").decode(payload)


def test_unknown_serializer_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"cache\.serializer"):
        Codec("yaml")
