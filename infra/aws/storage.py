"""StorageClasses: encrypted gp3 as the default, and a Retain class for stateful services."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.contract import STATEFUL_STORAGE_CLASS

DEFAULT_CLASS = "gp3-encrypted"


@dataclass(frozen=True)
class StorageClassNames:
    """The classes a volume may claim, for the services that create volumes (infra/services/facts.py)."""

    default: str  # reclaim Delete: data that can be rebuilt (metrics history)
    retain: str  # reclaim Retain: a deleted claim never deletes the data (Vault, MinIO, PostgreSQL)


NAMES = StorageClassNames(default=DEFAULT_CLASS, retain=STATEFUL_STORAGE_CLASS)


class StorageClasses(pulumi.ComponentResource):
    """Both classes use the EBS CSI driver with the cluster's EBS key; only reclaim differs."""

    def __init__(
        self,
        name: str,
        ebs_key_arn: pulumi.Input[str],
        encrypted: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlplat:cluster:StorageClasses", name, None, opts)
        parameters: dict[str, pulumi.Input[str]] = {"type": "gp3", "encrypted": str(encrypted).lower()}
        if encrypted:
            parameters["kmsKeyId"] = ebs_key_arn
        for class_name, reclaim, default in (
            (NAMES.default, "Delete", True),
            (NAMES.retain, "Retain", False),
        ):
            k8s.storage.v1.StorageClass(
                f"{name}-{class_name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=class_name,
                    annotations={"storageclass.kubernetes.io/is-default-class": str(default).lower()},
                ),
                provisioner="ebs.csi.aws.com",
                parameters=parameters,
                reclaim_policy=reclaim,
                volume_binding_mode="WaitForFirstConsumer",
                allow_volume_expansion=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
        # What the services' volumes claim: handed on by the program, so only a class created here is named.
        self.names = NAMES
        self.register_outputs({"defaultClass": NAMES.default, "retainClass": NAMES.retain})
