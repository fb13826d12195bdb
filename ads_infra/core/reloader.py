"""ConfigReloader: takes a new configuration while the layer runs, whole or not at all.

Any source feeds it: :meth:`ConfigReloader.reload_from_file` (what SIGHUP
runs, see :meth:`~ConfigReloader.install_sighup`) and
:meth:`~ConfigReloader.reload_from_mapping` (a document parsed elsewhere);
:meth:`~ConfigReloader.follow` consumes a stream of documents from a watch.
:meth:`~ConfigReloader.reload_overlay` takes the keys of a key-value store
(etcd's ``discovery.config_prefix``, followed by
:mod:`ads_infra.discovery.config_watch`): settings laid over the file, which
stay laid over it when the file is reloaded.

A reload validates the whole new configuration, then compares it with the
one in force. A changed key that is not reloadable (``core/reload.py``,
docs/reload.md) refuses the reload, naming the key. Otherwise every component
whose section changed prepares it, and only when all accepted are they
applied, one after the other with no ``await`` in between, so no request
sees half of a reload; then the container's ``settings`` and ``config``
providers serve the new values. Each reload logs one line and counts in
``ads_config_reloads_total{result}`` (applied, refused, invalid, unchanged).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter

from ads_infra.core.errors import ConfigurationError, RestartRequiredError
from ads_infra.core.loader import (
    LoadedConfig,
    config_file_path,
    from_mapping,
    merge_sections,
    read_config,
)
from ads_infra.core.overlay import overlay_document
from ads_infra.core.reload import (
    Applier,
    changed_keys,
    describe_changes,
    restart_only,
    section_at,
)
from ads_infra.core.settings import LoggingConfig, Settings

__all__ = ["RESULTS", "ConfigReloader", "ReloadResult"]

logger = logging.getLogger("ads_infra.config")

RESULTS = ("applied", "refused", "invalid", "unchanged")
# The logger whose level ``logging.level`` sets: every ads_infra logger inherits it.
PACKAGE_LOGGER = "ads_infra"


@dataclasses.dataclass(frozen=True)
class ReloadResult:
    """What one reload did: ``result`` is one of :data:`RESULTS`.

    ``keys`` are the changed keys (applied) or the refused ones; ``message``
    is the line that was logged.
    """

    result: str
    keys: tuple[str, ...]
    message: str


class SettingsProvider(Protocol):
    """The container's ``settings`` provider (dependency-injector), as the reloader uses it."""

    @property
    def overridden(self) -> tuple[Any, ...]: ...

    def override(self, provider: Any) -> Any: ...

    def reset_last_overriding(self) -> None: ...


class ConfigProvider(Protocol):
    """The container's ``config`` provider (``providers.Configuration``)."""

    def reset_override(self) -> None: ...

    def from_dict(self, options: dict[str, Any]) -> None: ...


def _level_applier(section: LoggingConfig) -> Applier:
    target = logging.getLogger(PACKAGE_LOGGER)
    # None: NOTSET, so the loggers follow the host application's configuration again.
    level = logging.getLevelName(section.level) if section.level else logging.NOTSET
    return lambda: target.setLevel(level)


class ConfigReloader:
    """Reloads the configuration into running components.

    ``targets`` maps a section's dotted path (``cache``, ``services.ai``) to
    the components built from it; each has ``prepare_settings(section)``
    (:class:`~ads_infra.core.reload.Reconfigurable`); one without it (a test's
    stand-in) is left alone. The ``logging`` section is the reloader's own.
    ``config_file`` and ``overrides`` are what the container was built from,
    so a reload reads the same file with the same overrides.
    """

    def __init__(
        self,
        settings: Settings,
        targets: Mapping[str, object] | None = None,
        *,
        settings_provider: SettingsProvider | None = None,
        config_provider: ConfigProvider | None = None,
        config_file: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.current = settings
        self._targets = dict(targets or {})
        self._settings_provider = settings_provider
        self._config_provider = config_provider
        self._config_file = config_file
        self._overrides = dict(overrides or {})
        # The settings laid over the file (reload_overlay) in force now: a file
        # reload keeps them. Only an applied (or unchanged) overlay is kept, so
        # this always matches the configuration in force.
        self._overlay: dict[str, Any] = {}
        self._registry = CollectorRegistry(auto_describe=True)
        self._reloads = Counter(
            "ads_config_reloads",
            "Configuration reloads, by result (applied, refused, invalid, unchanged)",
            ["result"],
            registry=self._registry,
        )
        for result in RESULTS:
            self._reloads.labels(result)
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sighup_loop: asyncio.AbstractEventLoop | None = None

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """The registry holding ``ads_config_reloads_total`` (folded into the container's)."""
        return self._registry

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Apply ``logging.level`` (when set) to the ads_infra loggers."""
        if self.current.logging.level:
            _level_applier(self.current.logging)()

    async def close(self) -> None:
        """Remove the SIGHUP handler and stop following watches."""
        self.remove_sighup()
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- triggers ---------------------------------------------------------------------

    def install_sighup(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Reload ``path`` (default: the file the container was built from) on SIGHUP.

        Call it inside the running loop (a FastAPI lifespan); :meth:`close`
        removes it. Returns the file a SIGHUP reloads (resolved now, so a later
        change of directory does not change it; None when the container runs
        on the packaged defaults: then a SIGHUP logs that there is no file).

        Only the main thread's loop can take signals: elsewhere (an app run by
        a test client in a thread) or on a platform without SIGHUP this logs a
        warning and installs nothing; the reload methods still work.
        """
        loop = asyncio.get_running_loop()
        chosen = config_file_path(path or self._config_file)
        resolved = chosen.resolve() if chosen is not None else None
        sighup = getattr(signal, "SIGHUP", None)
        try:
            if sighup is None:
                raise RuntimeError("this platform has no SIGHUP")
            loop.add_signal_handler(sighup, self._on_sighup, resolved)
        except (RuntimeError, ValueError) as exc:
            logger.warning("SIGHUP will not reload the configuration here: %s", exc)
            return resolved
        self._sighup_loop = loop
        logger.info("SIGHUP reloads %s", resolved or "nothing: no configuration file")
        return resolved

    def remove_sighup(self) -> None:
        loop, self._sighup_loop = self._sighup_loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_signal_handler(signal.SIGHUP)

    def _on_sighup(self, path: Path | None) -> None:
        self._spawn(self.reload_from_file(path, origin="SIGHUP"))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # The etcd prefix watch (discovery.backend: etcd) plugs in here: an async
    # iterator of whole configuration documents, one per change under the prefix,
    # handed to follow() (or start_following()) with origin "etcd:<prefix>".
    async def follow(self, documents: AsyncIterable[Mapping[str, Any]], origin: str) -> None:
        """Reload each document ``documents`` yields (a watch), until it ends."""
        async for document in documents:
            await self.reload_document(document, origin)

    def start_following(self, documents: AsyncIterable[Mapping[str, Any]], origin: str) -> None:
        """:meth:`follow` as a task of the reloader's own, cancelled by :meth:`close`."""
        self._spawn(self.follow(documents, origin))

    # --- reloads ----------------------------------------------------------------------

    def _serial(self) -> asyncio.Lock:
        # One reload at a time: a file read that finished late never undoes a newer one.
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def reload_from_file(
        self, path: str | os.PathLike[str] | None = None, *, origin: str | None = None
    ) -> ReloadResult:
        """Read ``path`` (default: the container's file) in a thread, then reload it."""
        async with self._serial():
            chosen = config_file_path(path or self._config_file)
            where = f"{origin} {chosen}" if origin and chosen else origin or str(chosen)
            if chosen is None:
                return self._invalid(
                    where,
                    "there is no configuration file to reload: the container runs on the "
                    "packaged defaults; start it with ADS_INFRA_CONFIG=<file> to reload one",
                )
            try:
                loaded = await asyncio.to_thread(read_config, chosen, self._over(self._overlay))
            except ConfigurationError as exc:
                return self._invalid(where, str(exc))
            return self._reload(loaded, where)

    def _over(self, overlay: Mapping[str, Any]) -> dict[str, Any]:
        """What is merged over the file: the overlay, then the container's own overrides."""
        return merge_sections(dict(overlay), self._overrides) if overlay else self._overrides

    async def reload_overlay(self, values: Mapping[str, str], origin: str) -> ReloadResult:
        """Lay ``values`` over the file, instead of the overlay in force, and reload.

        ``values`` maps dotted settings to their YAML text
        (``{"services.ai.rate_limit": "5"}``: :func:`~ads_infra.core.overlay.overlay_document`),
        the whole of the store, not a change; ``origin`` is the store
        (``etcd:/ads-infra/config/``), a key appended to it names where a
        value came from. The file is read again (in a thread), so the result
        is exactly file + overlay + the container's overrides, which win. The
        values are taken as they are: no ``${ENV}`` is resolved in them.
        """
        async with self._serial():
            try:
                overlay = overlay_document(values, origin)
                loaded = await asyncio.to_thread(
                    read_config, config_file_path(self._config_file), self._over(overlay)
                )
            except ConfigurationError as exc:
                return self._invalid(origin, str(exc))
            # A bad value names the store's key, not the file (secrets masked).
            origins = {key: (f"{origin}{key}", values[key]) for key in values}
            loaded = dataclasses.replace(loaded, origins={**loaded.origins, **origins})
            result = self._reload(loaded, origin)
            if result.result in ("applied", "unchanged"):
                self._overlay = overlay
            return result

    async def reload_document(self, document: Mapping[str, Any], origin: str) -> ReloadResult:
        """:meth:`reload_from_mapping`, in turn with file reloads."""
        async with self._serial():
            return self.reload_from_mapping(document, origin=origin)

    def reload_from_mapping(self, document: Mapping[str, Any], *, origin: str) -> ReloadResult:
        """Reload from a whole configuration document, as the file would hold it.

        ``${ENV:default}`` is resolved; the overlay in force and the container's
        overrides apply over it;
        ``origin`` names the source in the log line and errors. No I/O, no await.
        """
        try:
            loaded = from_mapping(document, origin, self._over(self._overlay))
        except ConfigurationError as exc:
            return self._invalid(origin, str(exc))
        return self._reload(loaded, origin)

    def _reload(self, loaded: LoadedConfig, where: str) -> ReloadResult:
        try:
            new = loaded.validate()
        except ConfigurationError as exc:
            return self._invalid(where, str(exc))
        keys = changed_keys(self.current, new)
        if not keys:
            return self._done("unchanged", (), f"config reload from {where}: nothing changed")
        refused = restart_only(keys)
        if refused:
            verb = "needs" if len(refused) == 1 else "need"
            return self._refused(where, tuple(refused), f"{verb} a restart")
        try:
            appliers = self._prepare(new)
        except RestartRequiredError as exc:
            return self._refused(where, exc.keys, exc.reason)
        except ConfigurationError as exc:
            return self._invalid(where, str(exc))
        # From here on nothing awaits and nothing can fail: one step for the loop.
        for apply in appliers:
            apply()
        old, self.current = self.current, new
        self._publish(new)
        changes = describe_changes(old, new, keys)
        return self._done("applied", tuple(keys), f"config reloaded from {where}: {changes}")

    def _prepare(self, new: Settings) -> list[Applier]:
        appliers: list[Applier] = []
        if new.logging != self.current.logging:
            appliers.append(_level_applier(new.logging))
        for path, targets in self._targets.items():
            section = section_at(new, path)
            if section == section_at(self.current, path):
                continue
            for target in targets if isinstance(targets, Sequence) else (targets,):
                prepare: Callable[[Any], Applier] | None = getattr(target, "prepare_settings", None)
                if prepare is not None:
                    appliers.append(prepare(section))
        return appliers

    def _publish(self, new: Settings) -> None:
        """The container's providers serve ``new`` from now on (one layer of override kept)."""
        provider = self._settings_provider
        if provider is not None:
            if provider.overridden:
                provider.reset_last_overriding()
            provider.override(new)
        config = self._config_provider
        if config is not None:
            config.reset_override()
            config.from_dict(new.to_config())

    # --- outcomes: one log line and one count each ------------------------------------

    def _invalid(self, where: str, problem: str) -> ReloadResult:
        message = f"config reload from {where} failed, the configuration in force stays: {problem}"
        return self._done("invalid", (), message)

    def _refused(self, where: str, keys: tuple[str, ...], why: str) -> ReloadResult:
        message = (
            f"config reload from {where} refused, the configuration in force stays: "
            f"{', '.join(keys)} {why}; restart the process to change "
            f"{'it' if len(keys) == 1 else 'them'} (docs/reload.md lists what a reload may change)"
        )
        return self._done("refused", keys, message)

    def _done(self, result: str, keys: tuple[str, ...], message: str) -> ReloadResult:
        self._reloads.labels(result).inc()
        level = logging.ERROR if result in ("invalid", "refused") else logging.INFO
        logger.log(level, "%s", message)
        return ReloadResult(result, keys, message)
