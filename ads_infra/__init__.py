"""ads-infra: the infrastructure layer of an ads system."""
