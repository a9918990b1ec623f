"""What a node of each EC2 instance type the stacks may use offers to pods: its size and what is kept back.

One table for every reader: the system pool's sizing test, the stack config (a CPU model pool may
only name types listed here, so its pods can be checked), `mlplat validate` (MLP-RESOURCE-FIT) and
`mlplat cost` (how many instances a Karpenter pool's limits buy).

Sources:
- vCPUs and memory: the EC2 instance type specifications, https://docs.aws.amazon.com/ec2/latest/instancetypes/gp.html
  (M6i, M7i), co.html (C7i), mo.html (R7i) and ac.html (G4dn, G5, G6; also their NVIDIA GPU counts);
- ENIs and IPv4 addresses per ENI (which bound pods per node): awslabs/amazon-eks-ami tag v20260724,
  nodeadm/internal/kubelet/instance-info.jsonl (`defaultMaxENIs`, `ipv4AddressesPerInterface`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Karpenter subtracts this share of an instance type's memory before it decides what fits: the chart's
# default `settings.vmMemoryOverheadPercent: 0.075` (../shared/reference/charts/karpenter/values.yaml),
# which infra/aws/karpenter.py does not override.
KARPENTER_VM_MEMORY_OVERHEAD = 0.075
# The kubelet's hard eviction threshold memory.available, kept back from pods on every node: 100Mi in
# nodeadm (amazon-eks-ami v20260724, nodeadm/internal/kubelet/config.go) and in Karpenter's estimate
# (aws/karpenter-provider-aws v1.14.1, pkg/providers/instancetype/types.go `evictionThreshold`).
EVICTION_HARD_MIB = 100


@dataclass(frozen=True)
class NodeShape:
    vcpus: int
    memory_gib: int
    enis: int
    ips_per_eni: int
    gpus: int = 0

    @property
    def memory_mib(self) -> int:
        return self.memory_gib * 1024

    @property
    def max_pods(self) -> int:
        # ENIs x (IPv4 per ENI - 1) + 2: nodeadm's CalcMaxPods (amazon-eks-ami v20260724,
        # nodeadm/internal/kubelet/eni_max_pods.go) and Karpenter's ENILimitedPods (v1.14.1, types.go).
        return self.enis * (self.ips_per_eni - 1) + 2

    @property
    def kube_reserved_cpu_m(self) -> int:
        # 6 % of the first core, 1 % of the second, 0.5 % of cores 3-4, 0.25 % above, each range rounded
        # down: nodeadm getCPUMillicoresToReserve and Karpenter kubeReservedResources (same tiers).
        total, reserved = self.vcpus * 1000, 0
        for start, end, basis_points in (
            (0, 1000, 600),
            (1000, 2000, 100),
            (2000, 4000, 50),
            (4000, total, 25),
        ):
            reserved += max(0, min(total, end) - start) * basis_points // 10000
        return reserved

    @property
    def kube_reserved_memory_mib(self) -> int:
        # 11 MiB per pod + 255 MiB: nodeadm getMemoryMebibytesToReserve, Karpenter kubeReservedResources.
        return 11 * self.max_pods + 255

    @property
    def allocatable_cpu_m(self) -> int:
        """CPU the kubelet offers pods (nodeadm sets no system-reserved); Karpenter estimates the same."""
        return self.vcpus * 1000 - self.kube_reserved_cpu_m

    @property
    def allocatable_memory_mib(self) -> int:
        """Memory the kubelet of an EKS AL2023 node (nodeadm) offers pods: the system node group."""
        return self.memory_mib - self.kube_reserved_memory_mib - EVICTION_HARD_MIB

    @property
    def karpenter_memory_mib(self) -> int:
        """Memory Karpenter believes a node of this type offers pods, before it launches one.

        Karpenter launches a node for a pending pod only when the pod fits this estimate, which also
        takes off the VM overhead (pkg/providers/instancetype/types.go `memory`, v1.14.1); a pod between
        this and the kubelet's figure stays Pending on a Karpenter pool. Once a node of the type has
        joined, Karpenter caches the memory it reported and uses that instead (instancetype.go,
        `discoveredCapacityCache`): the estimate is what binds on a pool scaled from zero.
        """
        overhead = math.ceil(self.memory_mib * KARPENTER_VM_MEMORY_OVERHEAD)
        return self.memory_mib - overhead - self.kube_reserved_memory_mib - EVICTION_HARD_MIB


NODE_SHAPES: dict[str, NodeShape] = {
    "m6i.large": NodeShape(vcpus=2, memory_gib=8, enis=3, ips_per_eni=10),
    "m6i.xlarge": NodeShape(vcpus=4, memory_gib=16, enis=4, ips_per_eni=15),
    "m6i.2xlarge": NodeShape(vcpus=8, memory_gib=32, enis=4, ips_per_eni=15),
    "m6i.4xlarge": NodeShape(vcpus=16, memory_gib=64, enis=8, ips_per_eni=30),
    "m6i.8xlarge": NodeShape(vcpus=32, memory_gib=128, enis=8, ips_per_eni=30),
    "m6i.12xlarge": NodeShape(vcpus=48, memory_gib=192, enis=8, ips_per_eni=30),
    "m7i.large": NodeShape(vcpus=2, memory_gib=8, enis=3, ips_per_eni=10),
    "m7i.xlarge": NodeShape(vcpus=4, memory_gib=16, enis=4, ips_per_eni=15),
    "m7i.2xlarge": NodeShape(vcpus=8, memory_gib=32, enis=4, ips_per_eni=15),
    "m7i.4xlarge": NodeShape(vcpus=16, memory_gib=64, enis=8, ips_per_eni=30),
    "m7i.8xlarge": NodeShape(vcpus=32, memory_gib=128, enis=8, ips_per_eni=30),
    "m7i.12xlarge": NodeShape(vcpus=48, memory_gib=192, enis=8, ips_per_eni=30),
    "c7i.large": NodeShape(vcpus=2, memory_gib=4, enis=3, ips_per_eni=10),
    "c7i.xlarge": NodeShape(vcpus=4, memory_gib=8, enis=4, ips_per_eni=15),
    "c7i.2xlarge": NodeShape(vcpus=8, memory_gib=16, enis=4, ips_per_eni=15),
    "c7i.4xlarge": NodeShape(vcpus=16, memory_gib=32, enis=8, ips_per_eni=30),
    "c7i.8xlarge": NodeShape(vcpus=32, memory_gib=64, enis=8, ips_per_eni=30),
    "c7i.12xlarge": NodeShape(vcpus=48, memory_gib=96, enis=8, ips_per_eni=30),
    "r7i.large": NodeShape(vcpus=2, memory_gib=16, enis=3, ips_per_eni=10),
    "r7i.xlarge": NodeShape(vcpus=4, memory_gib=32, enis=4, ips_per_eni=15),
    "r7i.2xlarge": NodeShape(vcpus=8, memory_gib=64, enis=4, ips_per_eni=15),
    "r7i.4xlarge": NodeShape(vcpus=16, memory_gib=128, enis=8, ips_per_eni=30),
    "r7i.8xlarge": NodeShape(vcpus=32, memory_gib=256, enis=8, ips_per_eni=30),
    "r7i.12xlarge": NodeShape(vcpus=48, memory_gib=384, enis=8, ips_per_eni=30),
    "g4dn.xlarge": NodeShape(vcpus=4, memory_gib=16, enis=3, ips_per_eni=10, gpus=1),
    "g5.xlarge": NodeShape(vcpus=4, memory_gib=16, enis=4, ips_per_eni=15, gpus=1),
    "g5.2xlarge": NodeShape(vcpus=8, memory_gib=32, enis=4, ips_per_eni=15, gpus=1),
    "g5.4xlarge": NodeShape(vcpus=16, memory_gib=64, enis=8, ips_per_eni=30, gpus=1),
    "g5.8xlarge": NodeShape(vcpus=32, memory_gib=128, enis=8, ips_per_eni=30, gpus=1),
    "g5.12xlarge": NodeShape(vcpus=48, memory_gib=192, enis=15, ips_per_eni=50, gpus=4),
    "g6.xlarge": NodeShape(vcpus=4, memory_gib=16, enis=4, ips_per_eni=15, gpus=1),
    "g6.2xlarge": NodeShape(vcpus=8, memory_gib=32, enis=4, ips_per_eni=15, gpus=1),
    "g6.4xlarge": NodeShape(vcpus=16, memory_gib=64, enis=8, ips_per_eni=30, gpus=1),
    "g6.8xlarge": NodeShape(vcpus=32, memory_gib=128, enis=8, ips_per_eni=30, gpus=1),
    "g6.12xlarge": NodeShape(vcpus=48, memory_gib=192, enis=8, ips_per_eni=30, gpus=4),
}

# What the DaemonSets on a model node request, rounded up: a model pod gets what is left. On every node
# Falco, node-exporter, kube-proxy, aws-node, the EBS CSI node and the NFD worker (all tolerate every
# taint): 290m / 680Mi in the offline plans of 2026-12-01; on GPU nodes also the GPU operator's operands
# (device plugin, DCGM exporter, GFD, validator): 480m / 1128Mi.
# tests/infra/test_system_pool_capacity.py adds up the real requests from the offline plan and
# fails when they outgrow this allowance.
DAEMONSET_ALLOWANCE_CPU_M = 600
DAEMONSET_ALLOWANCE_MEMORY_MIB = 1536
