"""Registry tags of a version registered through the training pipeline: what staging and prod need."""

from __future__ import annotations

from mlplat.retrain import lineage

COMPLETE = {
    lineage.CODE_COMMIT: "c" * 40,
    lineage.DATA_URI: "s3://mlplat-training/iris-classifier/2026-12-01",
    lineage.DATA_SHA256: "f" * 64,
    lineage.IMAGE_DIGEST: "sha256:" + "a" * 64,
    lineage.PARAMS: '{"variant": 2}',
    lineage.PARENT_RUN: lineage.NO_PARENT,
    lineage.TRIGGER: "drift",
    lineage.TRIGGERED_BY: "alert MlplatFeatureDrift",
    lineage.MODEL_CARD: lineage.MODEL_CARD_FILE,
}
