"""Stand-in for kafka-python's test/service.py, which the 3.0.12 sdist does not ship
(test/integration/fixtures.py imports it). Only the external-broker mode (KAFKA_URI) is
supported: the compat suite never lets the fixtures spawn Kafka/ZooKeeper itself."""
import logging

__all__ = ['ExternalService', 'SpawnedService']

log = logging.getLogger(__name__)


class ExternalService(object):
    def __init__(self, host, port):
        log.info("Using already running service at %s:%d", host, port)
        self.host = host
        self.port = port

    def open(self):
        pass

    def close(self):
        pass


class SpawnedService(object):
    def __init__(self, *args, **kwargs):
        raise RuntimeError("compat-tests/kafka-python runs against an external broker only (set KAFKA_URI)")
