"""A small NetworkPolicy evaluator: may this endpoint reach that one on this port?

It follows the semantics of https://kubernetes.io/docs/concepts/services-networking/network-policies/:
- a pod is isolated for ingress (egress) if any NetworkPolicy in its namespace selects it with
  `Ingress` (`Egress`) among its policyTypes; `policyTypes` left out means Ingress, plus Egress
  when the policy has an `egress` section;
- a connection needs the source's egress AND the destination's ingress to allow it; a
  non-isolated side allows everything; policies are additive (any allowing rule suffices);
- a rule with no `from`/`to` matches every peer, with no `ports` every port;
- a peer with `podSelector` alone means pods of the policy's namespace; `namespaceSelector` alone
  all pods of the selected namespaces; both in ONE peer the pods matching both (AND), two peers in
  the list either (OR); `ipBlock` matches addresses in `cidr` outside every `except`;
- a port entry without `protocol` is TCP; `endPort` makes it a range.
Endpoints outside the pod network (the EKS control plane, the internet) are never isolated and
only `ipBlock` peers match them. Pods carry their VPC address (VPC CNI), so `ipBlock` peers match
them too, as they do on EKS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str]
    ip: str
    name: str = ""


@dataclass(frozen=True)
class Outside:
    """An address that is not a pod: the API server's ENIs, an AWS endpoint, a git host."""

    ip: str
    name: str = ""


Endpoint = Pod | Outside


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels AND matchExpressions); empty selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


@dataclass
class Cluster:
    policies: list[dict[str, Any]]
    # Namespace name -> labels (kubernetes.io/metadata.name is added, as the API server does).
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def _ns_labels(self, namespace: str) -> dict[str, str]:
        return {**self.namespace_labels.get(namespace, {}), "kubernetes.io/metadata.name": namespace}

    def _policies_for(self, pod: Pod, direction: str) -> list[dict[str, Any]]:
        found = []
        for policy in self.policies:
            spec = policy["spec"]
            types = spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]
            if (
                policy["metadata"]["namespace"] == pod.namespace
                and direction in types
                and selects(spec.get("podSelector"), pod.labels)
            ):
                found.append(policy)
        return found

    def _peer_matches(self, peer: Mapping[str, Any], policy_ns: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            address = ipaddress.ip_address(other.ip)
            block = peer["ipBlock"]
            return address in ipaddress.ip_network(block["cidr"]) and not any(
                address in ipaddress.ip_network(e) for e in block.get("except") or []
            )
        if not isinstance(other, Pod):
            return False
        if "namespaceSelector" in peer:
            in_ns = selects(peer["namespaceSelector"], self._ns_labels(other.namespace))
        else:
            in_ns = other.namespace == policy_ns
        return in_ns and selects(peer.get("podSelector"), other.labels)

    @staticmethod
    def _port_matches(entries: Iterable[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
        entries = list(entries or [])
        if not entries:
            return True
        for entry in entries:
            if entry.get("protocol", "TCP") != protocol:
                continue
            if "port" not in entry:
                return True
            # Numbers arrive as floats from the plan's JSON (protobuf Struct has one number type).
            first = entry["port"]
            if isinstance(first, str) or int(first) != first:
                raise ValueError(f"named port {first!r}: the evaluator takes numbers only")
            if int(first) <= port <= int(entry.get("endPort", first)):
                return True
        return False

    def _allowed(self, pod: Pod, direction: str, other: Endpoint, port: int, protocol: str) -> bool:
        policies = self._policies_for(pod, direction)
        if not policies:
            return True  # not isolated in this direction
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in policies:
            for rule in policy["spec"].get(rules_key) or []:
                peers = rule.get(peers_key) or []
                peer_ok = not peers or any(
                    self._peer_matches(p, policy["metadata"]["namespace"], other) for p in peers
                )
                if peer_ok and self._port_matches(rule.get("ports"), port, protocol):
                    return True
        return False

    def may_reach(self, source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP") -> bool:
        egress = not isinstance(source, Pod) or self._allowed(source, "Egress", target, port, protocol)
        ingress = not isinstance(target, Pod) or self._allowed(target, "Ingress", source, port, protocol)
        return egress and ingress
