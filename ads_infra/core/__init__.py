"""The kernel: what every other layer may use and that uses none of them.

Settings (frozen sections, one source of defaults) and their loader, the
redaction of secrets, the error hierarchy, health reports, the lifecycle of
managers and containers, and the Prometheus collector. It imports only the
domain's errors and third-party libraries.
"""
