"""pytest plugin for host applications: fixtures that build an ads-infra container (filled in by the host-app issue)."""
