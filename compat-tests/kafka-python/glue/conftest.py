"""compat-tests glue, installed as test/conftest.py of the unpacked kafka-python sdist (which ships none).

Works around a kafka-python 3.0.12 client race (see compat-tests/kafka-python/FINDINGS.md): a consumer that
subscribes while its bootstrap Metadata request (topics=[]) is in flight loses the metadata update it
requested (ClusterMetadata.update_metadata() resets _need_update when the older response arrives) and then
sleeps metadata_max_age_ms (300 s) with an empty assignment. A fast broker answers within the window, so the
consumer tests fail at random. Giving every client of the suite a short metadata_max_age_ms makes the client
recover within a second; it changes no broker interaction except an extra Metadata request per second.
Disable with KAFKA_PYTHON_METADATA_MAX_AGE_MS=0.
"""
import os

from test.integration import fixtures

_MAX_AGE_MS = int(os.environ.get('KAFKA_PYTHON_METADATA_MAX_AGE_MS', '1000') or 0)

if _MAX_AGE_MS > 0:
    _orig_enrich = fixtures.KafkaFixture._enrich_client_params

    def _enrich_client_params(self, params, **defaults):
        params = _orig_enrich(self, params, **defaults)
        params.setdefault('metadata_max_age_ms', _MAX_AGE_MS)
        return params

    fixtures.KafkaFixture._enrich_client_params = _enrich_client_params
