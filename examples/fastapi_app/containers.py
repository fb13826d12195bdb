"""The host app's container: ads-infra's Container plus the app's wiring configuration."""

from dependency_injector import containers

from ads_infra.containers import Container


class AppContainer(Container):
    wiring_config = containers.WiringConfiguration(modules=[".endpoints"])
