"""pytest plugin for host apps: an ads-infra container fixture (built by the host-app issue)."""
