"""Pure parts of local storage's reads without a hop: the bound on kept infos, which
decodes the manager calls light enough for the event loop, and the recorded size both
it and get_file_info read."""

from __future__ import annotations

import datetime as dt

from ads_infra.storage import ObjectInfo
from ads_infra.storage.base import INLINE_BYTES, OFFLOAD_BYTES, decodes_on_loop
from ads_infra.storage.local_nowait import KEPT, NowaitReads
from ads_infra.storage.manager import _Decode, _recorded_size

NOW = dt.datetime.now(dt.UTC)


def _info(**metadata: str) -> ObjectInfo:
    return ObjectInfo(key="k", size=1, last_modified=NOW, metadata=metadata)


def test_kept_infos_are_bounded_oldest_first() -> None:
    reads = NowaitReads("/nowhere")  # nothing is opened until open()
    for i in range(KEPT + 10):
        reads.keep(f"/nowhere/{i}", (0, i, 0, 1, 7), _info())
    assert len(reads._known) == KEPT
    assert "/nowhere/9" not in reads._known and "/nowhere/10" in reads._known
    reads.keep("/nowhere/10", (0, 10, 1, 1, 7), _info())  # kept again: the newest now
    assert list(reads._known)[-1] == "/nowhere/10"
    reads.forget("/nowhere/10")
    assert "/nowhere/10" not in reads._known
    assert reads.read("/nowhere/11") is None  # never opened: no read without a hop


def test_what_the_manager_decodes_on_the_event_loop() -> None:
    light = _Decode.light
    small, large, inline = b"x" * 100, b"x" * OFFLOAD_BYTES, b"x" * INLINE_BYTES
    xxh3 = {"ads-encoding": "identity", "ads-sha256": "0" * 64, "ads-xxh3": "0" * 32}
    # Stored as is and checked with xxh3-128 (memory speed), or not checked at all:
    # up to INLINE_BYTES.
    assert light(_info(**xxh3), small) and light(_info(**xxh3), inline)
    assert not light(_info(**xxh3), inline + b"x")
    assert light(_info(), inline) and not light(_info(), inline + b"x")
    # Written before xxh3 was recorded, so checked with sha256: under OFFLOAD_BYTES.
    sha256 = {"ads-encoding": "identity", "ads-sha256": "0" * 64, "ads-size": "100"}
    assert light(_info(**sha256), small) and not light(_info(**sha256), large)
    assert not light(_info(**{**sha256, "ads-xxh3": ""}), large)  # the decoder uses sha256
    # Compressed or encrypted: by the size it decodes to, which must be recorded.
    assert light(_info(**{"ads-encoding": "gzip", "ads-size": "4096"}), small)
    assert not light(_info(**{"ads-encoding": "gzip", "ads-size": str(OFFLOAD_BYTES)}), small)
    assert not light(_info(**{"ads-encoding": "gzip"}), small)
    assert not light(_info(**{"ads-encryption": "aes", "ads-size": "9" * 30}), small)
    assert not light(_info(**{"ads-encoding": "gzip", "ads-size": "100"}), large)
    assert not light(_info(**{**xxh3, "ads-encryption": "aes", "ads-size": "100"}), large)
    # A decode without its own judgement: by the stored size.
    assert decodes_on_loop(lambda info, data: data, _info(), small)
    assert not decodes_on_loop(lambda info, data: data, _info(), large)


def test_a_recorded_size_is_read_only_when_sane() -> None:
    assert _recorded_size({"ads-size": "4096"}) == 4096
    assert _recorded_size({"ads-size": "0"}) == 0
    for bad in ("", "-1", "4 KiB", "1e3", "9" * 20, "9" * 5000):
        assert _recorded_size({"ads-size": bad}) is None, bad
    assert _recorded_size({}) is None
