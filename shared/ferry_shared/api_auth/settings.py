"""How a service checks its API callers (``FERRY_API_AUTH``…), and the authenticator it makes."""

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from ferry_shared.api_auth.guard import ApiGuard
from ferry_shared.api_auth.kubernetes import KubernetesAuthenticator, kube_api_client
from ferry_shared.api_auth.local_token import LocalTokenAuthenticator, default_token_file, ensure_token_file


class ApiAuthSettings(BaseSettings):
    """``FERRY_API_AUTH``: ``token`` (a local token in ``FERRY_API_TOKEN_FILE``, made at start
    if missing) or ``kubernetes`` (TokenReview and SubjectAccessReview, in ``FERRY_NAMESPACE``
    when set, through the pod's service account or ``FERRY_API_AUTH_KUBECONFIG``)."""

    model_config = SettingsConfigDict(env_prefix="FERRY_", extra="ignore")

    api_auth: Literal["token", "kubernetes"] = "token"
    api_token_file: Path | None = None
    api_auth_kubeconfig: Path | None = None
    namespace: str = ""


def api_guard(settings: ApiAuthSettings) -> ApiGuard:
    """The guard ``settings`` describe (for ``token``: the token file, made if missing)."""
    if settings.api_auth == "kubernetes":
        return ApiGuard(KubernetesAuthenticator(kube_api_client(settings.api_auth_kubeconfig), settings.namespace))
    return ApiGuard(LocalTokenAuthenticator(ensure_token_file(settings.api_token_file or default_token_file())))
