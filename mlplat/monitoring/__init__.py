"""Model monitoring: what the inference logger may store, drift and quality as metrics, and their names.

The serving path logs requests and responses with KServe's logger (`spec.predictor.logger`), which
posts each batch to the privacy marshaller (`marshaller.py`) before anything reaches the logs bucket.
A scheduled drift job (`drift.py`) reads the stored records, compares their inputs with the reference
data saved beside the served model version, and publishes scores under the names `metrics.py` owns.
Each app says what it logs and how drift is judged in `apps/<app>/base/monitoring.yaml` (`contract.py`).
"""
