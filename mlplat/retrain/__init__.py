"""The retraining pipeline: `mlplat retrain fetch|train|evaluate|register|propose` and `mlplat history`.

Kept light: `registry_gate` imports `lineage` from here, so nothing heavy is imported at package level.
"""
