"""VPC across three zones: public subnets for load balancers, private subnets for nodes, and the
peering with the bootstrap's runner VPC through which deploys reach the private API (docs/adr/0003)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from infra.config import NetworkConfig, RunnerConfig


@dataclass(frozen=True)
class NetworkArgs:
    config: NetworkConfig
    cluster_name: str  # subnets are tagged for this cluster's load balancers and Karpenter
    runner: RunnerConfig | None  # the in-VPC runner to peer with; None: no peering (public endpoint)


class Network(pulumi.ComponentResource):
    """One NAT gateway (dev) or one per zone (prod), as `nat_gateways` says."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    # What traffic in and out of the cluster's subnets needs: every subnet's association with its
    # route table and, with a runner, the active peering, every private route table (their routes to
    # the runner) and the runner's route back. What talks to the cluster waits for it, so that destroy
    # removes it only after everything on the cluster: the engine deletes a resource once nothing that
    # depends on it is left, in waves, the first of which is every resource nothing depends on
    # (pulumi/pulumi pkg/resource/deploy/step_generator.go ScheduleDeletes; a dependent is one naming it
    # as dependency, property dependency, parent or provider: pkg/resource/graph/dependency_graph.go
    # DependenciesOf). An association removed early puts its subnet back on the VPC's main route table,
    # which has neither the NAT nor the runner route: the API's interfaces no longer answer the runner,
    # and the controllers that delete load balancers, volumes and instances lose the AWS APIs.
    routing: list[pulumi.Resource]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplat:network:Vpc", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config
        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(cfg.vpc_cidr),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{args.cluster_name}-vpc"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)

        # /20 private subnets (room for pod IPs from the VPC CNI), /24 public subnets.
        private_cidrs = list(cfg.vpc_cidr.subnets(new_prefix=max(cfg.vpc_cidr.prefixlen + 2, 20)))
        runner = args.runner
        peering = self._peering(name, args.cluster_name, runner, vpc.id) if runner else None
        # The private route tables keep their routes inline, so the route to the runner is inline too:
        # a table with inline routes removes any separate aws.ec2.Route on its next update
        # (pulumi-aws 7.x ec2.RouteTable, "NOTE on Route Tables and Routes").
        to_runner = (
            [
                aws.ec2.RouteTableRouteArgs(
                    cidr_block=str(runner.vpc_cidr), vpc_peering_connection_id=peering.id
                )
            ]
            if runner and peering
            else []
        )
        public_cidrs = list(IPv4Network(private_cidrs[-1]).subnets(new_prefix=24))

        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            opts=child,
        )
        public_subnets: list[aws.ec2.Subnet] = []
        private_subnets: list[aws.ec2.Subnet] = []
        nat_gateways: list[aws.ec2.NatGateway] = []
        private_route_tables: list[aws.ec2.RouteTable] = []
        associations: list[aws.ec2.RouteTableAssociation] = []
        for index, zone in enumerate(cfg.availability_zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=str(public_cidrs[index]),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={
                    **cluster_tag,
                    "kubernetes.io/role/elb": "1",
                    "Name": f"{args.cluster_name}-public-{zone}",
                },
                opts=child,
            )
            associations.append(
                aws.ec2.RouteTableAssociation(
                    f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_rt.id, opts=child
                )
            )
            public_subnets.append(public)
            if cfg.nat_gateways == "per_az" or index == 0:
                eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", opts=child)
                nat_gateways.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{zone}", allocation_id=eip.id, subnet_id=public.id, opts=child
                    )
                )
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=str(private_cidrs[index]),
                availability_zone=zone,
                tags={
                    **cluster_tag,
                    "kubernetes.io/role/internal-elb": "1",
                    "karpenter.sh/discovery": args.cluster_name,
                    "Name": f"{args.cluster_name}-private-{zone}",
                },
                opts=child,
            )
            private_rt = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                routes=[
                    aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat_gateways[-1].id),
                    *to_runner,
                ],
                opts=child,
            )
            private_route_tables.append(private_rt)
            associations.append(
                aws.ec2.RouteTableAssociation(
                    f"{name}-private-{zone}", subnet_id=private.id, route_table_id=private_rt.id, opts=child
                )
            )
            private_subnets.append(private)

        self.routing = [*associations]
        if runner and peering:
            # The runner's route table takes separate routes only (infra/bootstrap/runners.tf), so this
            # route survives the bootstrap's next apply.
            back = aws.ec2.Route(
                f"{name}-runner-to-cluster",
                route_table_id=runner.private_route_table_id,
                destination_cidr_block=str(cfg.vpc_cidr),
                vpc_peering_connection_id=peering.id,
                opts=child,
            )
            self.routing += [peering, *private_route_tables, back]
        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
            }
        )

    def _peering(
        self, name: str, cluster_name: str, runner: RunnerConfig, vpc_id: pulumi.Output[str]
    ) -> aws.ec2.VpcPeeringConnection:
        """Cluster VPC (requester) to the runner VPC (accepter), accepted in the same call.

        `auto_accept` needs both VPCs in the same account and region (pulumi-aws 7.51
        ec2.VpcPeeringConnection: "both VPCs need to be in the same AWS account and region"), which is
        how the bootstrap lays them out; the provider then waits until the connection is active.
        """
        return aws.ec2.VpcPeeringConnection(
            f"{name}-runner-peering",
            vpc_id=vpc_id,
            peer_vpc_id=runner.vpc_id,
            auto_accept=True,
            tags={"Name": f"{cluster_name}-to-github-runners"},
            opts=pulumi.ResourceOptions(parent=self),
        )
