"""The host app's container: ads-infra's Container, where the app adds providers of its own.

It has no wiring configuration: the endpoints receive what they need through
FastAPI dependencies that call the container's providers (see endpoints.py),
so no module is patched and no ``@inject`` wrapper runs per request.
"""

from ads_infra.containers import Container


class AppContainer(Container):
    """ads-infra's providers; a real app declares its own here."""
