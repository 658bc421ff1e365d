"""The Elasticsearch client predlog builds from the settings, and what a refusal means.

The sink (`agents.worker.make_es_sink`) and `replay --from-elasticsearch` build their
client here: an API key (`PREDLOG_ELASTICSEARCH_API_KEY`) or basic auth
(`PREDLOG_ELASTICSEARCH_USERNAME`/`PASSWORD`, e.g. behind a TLS-terminating proxy), and a
CA file for a private CA (`PREDLOG_ELASTICSEARCH_CA_FILE`). Secrets are read from their
`SecretStr` only here.

A 401, a 403 or a failed TLS handshake is permanent: retrying cannot fix it. `refusal`
turns such an error into one line naming the setting to fix; `check_access` runs one
request at start-up so a worker with a wrong password stops at once with that line
instead of retrying. Anything else (Elasticsearch not up yet) is left to the sink's
retries.

>>> from agents.settings import Settings
>>> client = elasticsearch_client(Settings(elasticsearch_username="predlog",
...                                        elasticsearch_password="pw"))
>>> type(client).__name__
'Elasticsearch'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from agents.settings import Settings


class ElasticsearchRefused(RuntimeError):
    """Elasticsearch (or the proxy in front of it) refused predlog for good."""


def elasticsearch_client(settings: Settings, url: str | None = None, *,
                         request_timeout: float = 30.0, **options: Any) -> Any:
    """An `elasticsearch.Elasticsearch` for `url` (default: the sink's) with the settings'
    credentials and CA file (and any other client `options`, e.g. max_retries)."""
    from elasticsearch import Elasticsearch

    kwargs: dict[str, Any] = {}
    if settings.elasticsearch_api_key is not None:
        kwargs["api_key"] = settings.elasticsearch_api_key.get_secret_value()
    elif settings.elasticsearch_password is not None:
        kwargs["basic_auth"] = (settings.elasticsearch_username,
                                settings.elasticsearch_password.get_secret_value())
    ca = settings.elasticsearch_ca_file
    if ca:
        if not Path(ca).is_file():
            raise ElasticsearchRefused(f"PREDLOG_ELASTICSEARCH_CA_FILE={ca}: no such file")
        kwargs["ca_certs"] = ca
    return Elasticsearch(url or settings.elasticsearch_url, request_timeout=request_timeout,
                         **kwargs, **options)


def _credentials(settings: Settings) -> str:
    if settings.elasticsearch_api_key is not None:
        return "the API key in PREDLOG_ELASTICSEARCH_API_KEY"
    if settings.elasticsearch_password is not None:
        return ("the credentials in PREDLOG_ELASTICSEARCH_USERNAME/PASSWORD "
                f"(user {settings.elasticsearch_username!r})")
    return ("no credentials (set PREDLOG_ELASTICSEARCH_USERNAME/PASSWORD or "
            "PREDLOG_ELASTICSEARCH_API_KEY)")


def _public(url: str) -> str:
    """`url` without any user:password@ part."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def refusal(exc: BaseException, settings: Settings, url: str | None = None
            ) -> ElasticsearchRefused | None:
    """The permanent failure `exc` stands for, as one line naming the setting; else None."""
    from elastic_transport import TlsError
    from elasticsearch import AuthenticationException, AuthorizationException

    where = f"Elasticsearch at {_public(url or settings.elasticsearch_url)}"
    if isinstance(exc, AuthenticationException):
        return ElasticsearchRefused(f"{where} refused {_credentials(settings)} (401)")
    if isinstance(exc, AuthorizationException):
        return ElasticsearchRefused(
            f"{where} denied {_credentials(settings)} (403): the user needs the privileges "
            "manage_index_templates and write on predlog-* (read for a replay)")
    if isinstance(exc, TlsError):
        ca = settings.elasticsearch_ca_file
        fix = (f"is PREDLOG_ELASTICSEARCH_CA_FILE={ca} the CA that signed its certificate?"
               if ca else "for a private CA set PREDLOG_ELASTICSEARCH_CA_FILE")
        return ElasticsearchRefused(f"TLS to {where} failed ({exc.message}); {fix}")
    return None


def check_access(client: Any, settings: Settings) -> None:
    """One request as the sink will make them; raise `ElasticsearchRefused` if refused.

    Unreachable is not a refusal: the sink's own retries wait for Elasticsearch.
    """
    try:
        client.indices.exists_index_template(name="predlog-predictions")
    except Exception as exc:
        refused = refusal(exc, settings)
        if refused is not None:
            raise refused from None
