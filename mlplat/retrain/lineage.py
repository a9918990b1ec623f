"""The lineage tags of a registered model version: the one owner of their names.

An auditor asks of any version serving anywhere: what triggered its training, who, from which data
(where and its content hash), with which code (git commit) in which image, with which parameters, after
which earlier run, and what its model card says. `mlplat retrain register` writes these tags,
`mlplat history` reads them, and the registry gate (`MLP-REGISTRY-LINEAGE`) refuses a version without
them in staging or prod.
"""

from __future__ import annotations

PREFIX = "mlplat.lineage."
CODE_COMMIT = PREFIX + "code_commit"  # git commit of the training code
DATA_URI = PREFIX + "data_uri"  # where the training data was fetched from
DATA_SHA256 = PREFIX + "data_sha256"  # content hash of the data files (lineage-data.json)
IMAGE_DIGEST = PREFIX + "image_digest"  # the training container image, by digest
PARAMS = PREFIX + "params"  # the training parameters, JSON
PARENT_RUN = PREFIX + "parent_run"  # the run this one retrains from, or NO_PARENT
TRIGGER = PREFIX + "trigger"  # one of TRIGGERS
TRIGGERED_BY = PREFIX + "triggered_by"  # the alert, schedule or person that started the run
MODEL_CARD = "mlplat.model_card"  # path of the model card, relative to the version's source

# The commit the training image was built from (images/monitor/Dockerfile bakes it in): the code that
# ran is the image's, not whatever the checkout a step cloned for evaluation.yaml is at.
CODE_COMMIT_ENV = "MLPLAT_CODE_COMMIT"

TRIGGERS = ("drift", "schedule", "manual")
MODEL_CARD_FILE = "MODEL_CARD.md"
NO_PARENT = "none"
NO_IMAGE = "none: trained outside a container"  # an honest value beats a missing tag
# Trained in the mlplat image (CODE_COMMIT_ENV set) without --image-digest: a container ran, but its
# digest is not known to the step (the pipelines pin the image by tag until it is published).
IMAGE_BY_TAG = "unrecorded: trained in the mlplat image, pinned by tag, not digest"

# What makes two runs the same training, so `register` reuses the version instead of adding a copy:
# the same data, code and parameters. Same data and image with other parameters is another model.
SAME_TRAINING = (DATA_SHA256, CODE_COMMIT, PARAMS)

# What a version must carry before staging or prod: every lineage tag and the model card.
REQUIRED = (CODE_COMMIT, DATA_URI, DATA_SHA256, IMAGE_DIGEST, PARAMS, PARENT_RUN, TRIGGER, TRIGGERED_BY)


def missing(tags: dict[str, str | None]) -> list[str]:
    """The lineage tags absent or empty in `tags`, in REQUIRED order (the model card is judged apart)."""
    return [key for key in REQUIRED if not (tags.get(key) or "").strip()]
