"""StorageClasses: encrypted gp3 as the default, and a Retain class for stateful services."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.contract import STATEFUL_STORAGE_CLASS

DEFAULT_CLASS = "gp3-encrypted"


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
            (DEFAULT_CLASS, "Delete", True),
            (STATEFUL_STORAGE_CLASS, "Retain", False),
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
        self.register_outputs({"defaultClass": DEFAULT_CLASS, "retainClass": STATEFUL_STORAGE_CLASS})
