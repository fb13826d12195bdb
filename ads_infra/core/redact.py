"""Keeping secrets out of sight: :class:`Secret` values and :func:`mask_url`.

Every place that prints or logs a configured value (``ads-infra config show``,
health reports, error messages, ``repr`` of configs and managers) goes through
these two, so a password or token never reaches a terminal or a log line.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SAFE_QUERY_KEYS", "Secret", "mask_url"]


class Secret:
    """A string that never shows itself in ``repr``, ``str``, logs or f-strings.

    Read the value with :meth:`get_secret_value` at the one place that sends it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __format__(self, spec: str) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


# Query parameters known to hold no secret (driver and connection options);
# every other value is masked: an API gateway's ``?code=`` (Azure Functions),
# a ``?sig=`` or ``?token=`` carries the credential in the query itself.
SAFE_QUERY_KEYS = frozenset(
    {
        "api-version", "application_name", "charset", "client_encoding", "command_timeout",
        "connect_timeout", "db", "dbname", "decode_responses", "encoding", "health_check_interval",
        "host", "max_connections", "model", "options", "port", "prepared_statement_cache_size",
        "protocol", "region", "socket_connect_timeout", "socket_timeout", "ssl", "ssl_cert_reqs",
        "sslcert", "sslmode", "sslrootcert", "statement_cache_size", "target_session_attrs",
        "timeout", "user", "username",
    }
)  # fmt: skip


def mask_url(url: str | None) -> str:
    """Return ``url`` with its password and every query value not known safe masked.

    ``postgresql://u:pw@h/db?sslkey=x`` -> ``postgresql://u:***@h/db?sslkey=***``.
    Works on any scheme, including SQLAlchemy's ``dialect+driver://``.

    The user information is found without ``urlsplit``: a password holding an
    unencoded ``/``, ``?``, ``#`` or ``@`` (common in generated ones) ends
    urlsplit's host part early and would be printed whole. Here it runs to the
    last ``@`` before the query (or, failing that, in the whole rest), so such a
    password is masked too; an odd URL may lose some of its host, never a secret.
    """
    if not url:
        return ""
    scheme, sep, rest = url.partition("://")
    if not sep:  # a message passes; a URL-like word with credentials does not
        return "<url with credentials>" if "@" in url and " " not in url else url
    before_query = rest.split("?", 1)[0]
    at = before_query.rfind("@")
    if at < 0:
        at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        if ":" in userinfo:  # a bare user name is no secret; a password is
            rest = f"{userinfo.split(':', 1)[0]}:***{rest[at:]}"
    head, qmark, query = rest.partition("?")
    if qmark:
        fragment = ""
        if "#" in query:
            query, fragment = query.split("#", 1)
            fragment = "#" + fragment
        query = "&".join(
            f"{pair.split('=', 1)[0]}=***"
            if "=" in pair and pair.split("=", 1)[0].lower() not in SAFE_QUERY_KEYS
            else pair
            for pair in query.split("&")
        )
        rest = f"{head}?{query}{fragment}"
    return f"{scheme}://{rest}"
