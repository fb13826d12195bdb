"""Hostile configuration files: bounded in time and memory, refused with a clear error.

Each case is a real attack or accident: an alias bomb, a recursive alias,
duplicate keys, numbers that are not numbers. Bounds are checked with a
watchdog (the load must finish in well under the time the attack took before)
and tracemalloc (peak memory), not with a throughput assertion.
"""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from ads_infra.config import load_settings
from ads_infra.errors import ConfigurationError

# 1 KB: nine levels of ten aliases each expand to 10^9 values.
ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    + ["cache: {max_size: 10}"]
)


def refused_within(seconds: float, load: Callable[[], object]) -> tuple[ConfigurationError, int]:
    """Run ``load`` in a thread; it must raise ConfigurationError before ``seconds``."""
    outcome: list[BaseException] = []
    peak: list[int] = []

    def run() -> None:
        tracemalloc.start()
        try:
            load()
        except BaseException as exc:
            outcome.append(exc)
        finally:
            peak.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still loading after {seconds} s"
    assert outcome and isinstance(outcome[0], ConfigurationError), outcome
    return outcome[0], peak[0]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ads.yml"
    path.write_text(text)
    return path


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    path = write(tmp_path, ALIAS_BOMB)
    assert path.stat().st_size < 1200
    error, peak = refused_within(5, lambda: load_settings(path, environ={}))
    assert "expands to more than" in str(error) and str(path) in str(error)
    assert peak < 20 * 1024 * 1024


def test_a_recursive_alias_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    path = write(tmp_path, "cache: &loop\n  self: *loop\n")
    error, _ = refused_within(5, lambda: load_settings(path, environ={}))
    assert "nested more than" in str(error)


def test_duplicate_keys_are_refused_naming_the_key_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "cache:\n  max_size: 10\n  max_size: 20\n")
    with pytest.raises(ConfigurationError, match=r"'max_size' appears twice at line 3"):
        load_settings(path, environ={})


def test_a_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, "# padding\n" * 1_000_000)  # 10 MB
    error, peak = refused_within(5, lambda: load_settings(path, environ={}))
    assert "larger than" in str(error)
    assert peak < 4 * 1024 * 1024  # read up to the bound, not the whole file


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (".nan", "finite"),
        (".inf", "finite"),
        ("-.inf", "finite"),
        ("1e400", "finite"),
        ("100000000000000000000000000", "finite"),  # 10^26 seconds
    ],
)
def test_numbers_in_the_configuration_are_finite_and_in_range(
    tmp_path: Path, value: str, problem: str
) -> None:
    path = write(tmp_path, f"database:\n  statement_timeout: {value}\n")
    with pytest.raises(ConfigurationError, match=rf"database\.statement_timeout: .*{problem}"):
        load_settings(path, environ={})


def test_whole_numbers_are_in_range_too(tmp_path: Path) -> None:
    path = write(tmp_path, f"database:\n  pool_size: {2**70}\n")
    with pytest.raises(ConfigurationError, match=r"database\.pool_size: must be at most"):
        load_settings(path, environ={})


def test_a_number_from_the_environment_is_bounded_and_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"^ADS_CACHE_TYPE=x+\.\.\. \(cache") as caught:
        load_settings(
            Path(__file__).resolve().parents[2] / "config.yml",
            environ={"ADS_CACHE_TYPE": "x" * 5000},
        )
    assert len(str(caught.value)) < 400  # the 5,000 characters are not repeated
