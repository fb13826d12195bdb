"""The host app's own container: ads-infra's, plus the app's wiring (the usual file name)."""

from dependency_injector import containers

from ads_infra.containers import Container as AdsContainer


class Container(AdsContainer):
    wiring_config = containers.WiringConfiguration(modules=["views"])
