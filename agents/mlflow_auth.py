"""MLflow tracking credentials from the settings object → MLflow's client.

MLflow's client takes credentials from nowhere but the process environment
(`MLFLOW_TRACKING_USERNAME`/`PASSWORD`, `MLFLOW_TRACKING_TOKEN`,
`MLFLOW_TRACKING_SERVER_CERT_PATH`) or `~/.mlflow/credentials`:
`mlflow.utils.credentials.get_default_host_creds` reads them for every request, of the
tracking store, the model registry and the `mlflow-artifacts:` repository alike, and
`MlflowClient` has no argument for them. So `apply_mlflow_credentials` sets those
variables in this process from predlog's settings (`PREDLOG_MLFLOW_TRACKING_USERNAME`/
`PASSWORD`/`TOKEN` or their `_FILE` variants, `PREDLOG_MLFLOW_CA_FILE`), once, when the
MLflow sink is built; nothing logs them. The variables are not touched when the settings
leave them unset.

MLflow's basic-auth app answers a wrong password with 401 and a missing permission with
403; neither is retried by MLflow's own client, and `check_access` turns them into one
line naming the settings at start-up.
"""

from __future__ import annotations

import os

from agents.settings import Settings


class MlflowRefused(RuntimeError):
    """The MLflow tracking server refused predlog's credentials for good."""


def apply_mlflow_credentials(settings: Settings) -> None:
    """Set MLflow's client environment variables from the settings (those configured)."""
    ca = settings.mlflow_ca_file
    if ca and not os.path.isfile(ca):
        raise MlflowRefused(f"PREDLOG_MLFLOW_CA_FILE={ca}: no such file")
    values = {
        "MLFLOW_TRACKING_USERNAME": settings.mlflow_tracking_username,
        "MLFLOW_TRACKING_PASSWORD": settings.mlflow_tracking_password,
        "MLFLOW_TRACKING_TOKEN": settings.mlflow_tracking_token,
        "MLFLOW_TRACKING_SERVER_CERT_PATH": settings.mlflow_ca_file,
    }
    for name, value in values.items():
        if value is not None:
            os.environ[name] = value if isinstance(value, str) else value.get_secret_value()


def _credentials(settings: Settings) -> str:
    if settings.mlflow_tracking_password is not None:
        return ("the credentials in PREDLOG_MLFLOW_TRACKING_USERNAME/PASSWORD "
                f"(user {settings.mlflow_tracking_username!r})")
    if settings.mlflow_tracking_token is not None:
        return "the token in PREDLOG_MLFLOW_TRACKING_TOKEN"
    return ("no credentials (set PREDLOG_MLFLOW_TRACKING_USERNAME/PASSWORD or "
            "PREDLOG_MLFLOW_TRACKING_TOKEN)")


def refusal(status: int, settings: Settings) -> MlflowRefused | None:
    """The permanent failure an HTTP status stands for, naming the settings; else None.

    >>> from agents.settings import Settings
    >>> s = Settings(mlflow_tracking_uri="http://m:5000", mlflow_tracking_username="u",
    ...              mlflow_tracking_password="p")
    >>> print(refusal(401, s))  # doctest: +NORMALIZE_WHITESPACE
    MLflow at http://m:5000 refused the credentials in
    PREDLOG_MLFLOW_TRACKING_USERNAME/PASSWORD (user 'u') (401)
    """
    where = f"MLflow at {settings.mlflow_tracking_uri}"
    if status == 401:
        return MlflowRefused(f"{where} refused {_credentials(settings)} (401)")
    if status == 403:
        return MlflowRefused(f"{where} denied {_credentials(settings)} (403): the user needs "
                             "permission to create experiments and runs")
    return None


def _tls_failure(exc: BaseException) -> bool:
    """Whether `exc` (MLflow wraps requests' errors, chained) is a failed TLS handshake."""
    import requests

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, requests.exceptions.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def check_access(settings: Settings) -> None:
    """One request (no retries) with the credentials and CA the sink uses; raise
    `MlflowRefused` on 401/403 or a failed TLS handshake. Anything else (MLflow not up
    yet) is left to the sink's retries."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    uri = settings.mlflow_tracking_uri
    if not uri.startswith(("http://", "https://")):
        return
    try:
        response = http_request(get_default_host_creds(uri), "/api/2.0/mlflow/experiments/search",
                                "GET", max_retries=0, timeout=10, params={"max_results": 1})
    except Exception as exc:  # noqa: BLE001 - unreachable: the sink's writes wait for it
        if not _tls_failure(exc):
            return
        ca = settings.mlflow_ca_file
        fix = (f"is PREDLOG_MLFLOW_CA_FILE={ca} the CA that signed its certificate?" if ca
               else "for a private CA set PREDLOG_MLFLOW_CA_FILE")
        raise MlflowRefused(f"TLS to MLflow at {uri} failed (SSLError); {fix}") from None
    refused = refusal(response.status_code, settings)
    if refused is not None:
        raise refused
