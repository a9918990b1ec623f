"""A price table (infra/cost_prices.yaml's format) of round test prices, so the cost tests' arithmetic
can be checked by hand. Every figure but the instance types' is the same in every cost test."""

from __future__ import annotations

# item -> (USD, the service in its made-up source URL)
ROUND_PRICES = {
    "eks_cluster_hour": ("0.10", "eks"),
    "eks_cluster_extended_hour": ("0.60", "eks"),
    "kms_key_month": ("1.00", "kms"),
    "kms_rotated_key_month": ("3.00", "kms"),
    "nat_gateway_hour": ("0.05", "vpc"),
    "public_ipv4_hour": ("0.01", "vpc"),
    "nlb_hour": ("0.02", "elb"),
    "ebs_gp3_gib_month": ("0.10", "ebs"),
    "cloudwatch_logs_ingest_gib": ("0.50", "cw"),
    "cloudwatch_logs_storage_gib_month": ("0.03", "cw"),
    "vpc_interface_endpoint_az_hour": ("0.01", "pl"),
}


def _price(usd: str, service: str, verified: bool = True) -> str:
    flag = "true" if verified else "false"
    return f'{{usd: {usd}, verified: {flag}, source: "https://prices.test/{service}", basis: "test"}}'


def price_table(region: str, instances: dict[str, tuple[str, bool]]) -> str:
    """The table's YAML: `region` priced at ROUND_PRICES, with `instances` (type -> (USD an hour, verified))."""
    lines = ['taken: "2026-12-01"', "hours_per_month: 730", "regions:", f"  {region}:"]
    lines += [f"    {item}: {_price(usd, service)}" for item, (usd, service) in ROUND_PRICES.items()]
    lines.append("    ec2_instance_hour:")
    lines += [f"      {name}: {_price(usd, 'ec2', ok)}" for name, (usd, ok) in instances.items()]
    return "\n".join(lines) + "\n"
