"""An app's monitoring contract as the tools use it (validate, the privacy marshaller, the drift job).

The parser is infra/monitoring_contract.py, re-exported here: the program reads each app's
`retention_days` from it and infra/ never imports mlplat/ (docs/architecture.md). What only the tools
need is here: where a monitored version keeps its reference data.
"""

from __future__ import annotations

from infra.monitoring_contract import (
    FILE,
    ContractError,
    DriftSettings,
    MonitoringContract,
    Policy,
    load,
    load_file,
    path_of,
    where,
)

__all__ = [
    "FILE",
    "PREDICTION_COLUMN",
    "REFERENCE_FILE",
    "REFERENCE_TAG",
    "ContractError",
    "DriftSettings",
    "MonitoringContract",
    "Policy",
    "load",
    "load_file",
    "path_of",
    "where",
]

# A monitored version carries a sample of its training inputs (and the model's predictions on them,
# column `prediction`) beside the model in the store; the registry tag names the file.
REFERENCE_TAG = "mlplat.reference"
REFERENCE_FILE = "reference.csv"
PREDICTION_COLUMN = "prediction"
