"""Kafka authentication settings → the keyword arguments of each client library predlog uses.

predlog talks to Kafka through three libraries: Faust (the worker), aiokafka (the ingest
gateway's producer) and kafka-python (topic discovery, `replay --to-kafka`, the Kafka
replay source). All three take the same security settings from the one settings object;
the password is read from its `SecretStr` only here, when a client is built.

>>> from agents.settings import Settings
>>> s = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
...              kafka_username="predlog", kafka_password="secret")
>>> sorted(kafka_python_kwargs(s))
['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol']
>>> kafka_python_kwargs(Settings())
{}
>>> type(faust_credentials(s)).__name__, faust_credentials(Settings()) is None
('SASLCredentials', True)
"""

from __future__ import annotations

import ssl
from typing import Any

from agents.settings import Settings


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if "SSL" not in settings.kafka_security_protocol:
        return None
    return ssl.create_default_context(cafile=settings.kafka_ca_file)


def _sasl(settings: Settings) -> dict[str, Any]:
    if not settings.kafka_security_protocol.startswith("SASL_"):
        return {}
    password = settings.kafka_password.get_secret_value() if settings.kafka_password else None
    return {"sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_username,
            "sasl_plain_password": password}


def kafka_python_kwargs(settings: Settings) -> dict[str, Any]:
    """For kafka-python's KafkaProducer, KafkaConsumer and KafkaAdminClient."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    out: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol,
                           **_sasl(settings)}
    context = _ssl_context(settings)
    if context is not None:
        out["ssl_context"] = context
    return out


def aiokafka_kwargs(settings: Settings) -> dict[str, Any]:
    """For aiokafka's AIOKafkaProducer and AIOKafkaConsumer (same names as kafka-python)."""
    return kafka_python_kwargs(settings)


def faust_credentials(settings: Settings) -> Any:
    """Faust's `broker_credentials`: SASL or SSL credentials, or None for PLAINTEXT."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = _ssl_context(settings)
    if protocol.startswith("SASL_"):
        sasl = _sasl(settings)
        return faust.SASLCredentials(username=sasl["sasl_plain_username"],
                                     password=sasl["sasl_plain_password"],
                                     mechanism=settings.kafka_sasl_mechanism,
                                     ssl_context=context)
    return faust.SSLCredentials(context)
