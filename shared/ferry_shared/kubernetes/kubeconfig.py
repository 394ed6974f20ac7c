"""A Kubernetes client configuration from a provider's kubeconfig text or from the pod's
service account; called by the inventory's watcher on every (re)connect and by the
kubevirt-writer for each target it writes to.

Everything a user can get wrong in a kubeconfig is a ``kubeconfig_invalid`` failure that
names the part at fault, never its contents: YAML errors say only where they are, and
credential plug-ins (``exec``, ``auth-provider``) are refused because Ferry will not run
commands from a stored secret. Inline certificates and keys go to 0600 temporary files,
as the Kubernetes client needs files for TLS.
"""

import os
import ssl
from collections.abc import Mapping
from typing import Any

import yaml
from kubernetes.client import Configuration
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import (
    SERVICE_CERT_FILENAME,
    SERVICE_HOST_ENV_NAME,
    SERVICE_TOKEN_FILENAME,
    InClusterConfigLoader,
)
from kubernetes.config.kube_config import KubeConfigLoader

from ferry_shared.credentials import Secret
from ferry_shared.kubernetes.failures import KUBECONFIG_INVALID, TargetError, safe_url
from ferry_shared.providers import ProviderSpec


def _invalid(message: str) -> TargetError:
    return TargetError(KUBECONFIG_INVALID, message)


def _parse(kubeconfig: Secret) -> dict[str, Any]:
    try:
        document = yaml.safe_load(kubeconfig.reveal())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        # The YAML error quotes the offending line, which may hold a key: keep it out of
        # the chain on purpose.
        problem = error.problem or "syntax error"
        raise _invalid(f"the kubeconfig is not valid YAML{where}: {problem}") from None
    except yaml.YAMLError:
        raise _invalid("the kubeconfig is not valid YAML") from None
    if not isinstance(document, dict) or not isinstance(document.get("contexts"), list):
        raise _invalid("the text given as kubeconfig is not a kubeconfig (it has no list of contexts)")
    return document


def _named(document: Mapping[str, Any], section: str, name: str) -> Mapping[str, Any]:
    for entry in document.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(section[:-1])
            return body if isinstance(body, dict) else {}
    raise _invalid(f"the kubeconfig has no {section[:-1]} named '{name}'")


def _check_context(document: Mapping[str, Any], wanted: str) -> str:
    names = [str(c.get("name")) for c in document["contexts"] if isinstance(c, dict)]
    chosen = wanted or str(document.get("current-context") or "")
    listed = ", ".join(f"'{n}'" for n in names) or "none"
    if not chosen:
        raise _invalid(f"the kubeconfig has no current-context; set the provider's context (one of {listed})")
    if chosen not in names:
        raise _invalid(f"the kubeconfig has no context named '{chosen}' (its contexts: {listed})")
    context = _named(document, "contexts", chosen)
    cluster = _named(document, "clusters", str(context.get("cluster", "")))
    if not cluster.get("server"):
        raise _invalid(f"the cluster of context '{chosen}' has no server URL")
    user = _named(document, "users", str(context.get("user", ""))) if context.get("user") else {}
    for plugin in ("exec", "auth-provider"):
        if plugin in user:
            raise _invalid(
                f"the user of context '{chosen}' gets its credentials from an '{plugin}' plug-in, "
                "which Ferry does not run; use a client certificate or a (service account) token"
            )
    return chosen


def endpoint_of(kubeconfig: Secret, context: str) -> tuple[str, str]:
    """The API server URL (without user-info, query or fragment) and the name of the context
    that ``context`` resolves to (the current context when empty): what a provider is listed
    with. Raises :class:`TargetError` (``kubeconfig_invalid``) as :func:`from_kubeconfig` does."""
    document = _parse(kubeconfig)
    chosen = _check_context(document, context)
    cluster = _named(document, "clusters", str(_named(document, "contexts", chosen).get("cluster", "")))
    try:
        server = safe_url(str(cluster["server"]))
    except ValueError:  # a port that is no number; the message must not quote the URL
        raise _invalid(f"the server URL of context '{chosen}' is malformed") from None
    return server, chosen


def _check_tls_files(configuration: Configuration, context: str) -> None:
    """Load the CA and client certificate once, so a broken one is named now rather
    than surfacing as an obscure TLS error on the first request."""
    tls = ssl.create_default_context()
    try:
        if configuration.ssl_ca_cert:
            tls.load_verify_locations(cafile=configuration.ssl_ca_cert)
    except (ssl.SSLError, OSError):
        raise _invalid(f"the certificate authority of context '{context}' is not readable PEM") from None
    try:
        if configuration.cert_file and configuration.key_file:
            tls.load_cert_chain(configuration.cert_file, configuration.key_file)
    except (ssl.SSLError, OSError):
        raise _invalid(
            f"the client certificate or key of context '{context}' cannot be loaded (not PEM, or not a pair)"
        ) from None


def from_kubeconfig(kubeconfig: Secret, context: str) -> Configuration:
    """The configuration of ``context`` (the current context when empty)."""
    document = _parse(kubeconfig)
    chosen = _check_context(document, context)
    configuration = Configuration()
    try:
        loader = KubeConfigLoader(config_dict=document, active_context=chosen)  # type: ignore[no-untyped-call]
        loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    except ConfigException as error:
        raise _invalid(f"context '{chosen}' of the kubeconfig cannot be used: {error}") from error
    except (ValueError, TypeError) as error:  # binascii.Error is a ValueError; neither quotes the data
        raise _invalid(f"context '{chosen}' of the kubeconfig has malformed base64 data or fields") from error
    _check_tls_files(configuration, chosen)
    return configuration


def in_cluster(explicit: bool) -> Configuration:
    """The configuration of the pod's service account; ``explicit`` says whether the
    provider asked for it (else there was simply no kubeconfig)."""
    if not os.environ.get(SERVICE_HOST_ENV_NAME):
        raise _invalid(
            "the provider uses the in-cluster service account, but Ferry is not running inside a cluster; "
            "give the provider a kubeconfig: `ferry provider update NAME --kubeconfig FILE`"
            if explicit
            else "no kubeconfig is stored for the provider and Ferry is not running inside a cluster; "
            "give it one: `ferry provider update NAME --kubeconfig FILE`"
        )
    configuration = Configuration()
    try:
        loader = InClusterConfigLoader(SERVICE_TOKEN_FILENAME, SERVICE_CERT_FILENAME)  # type: ignore[no-untyped-call]
        loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    except ConfigException as error:
        raise _invalid(f"the in-cluster service account cannot be used: {error}") from error
    return configuration


def configuration_for(spec: ProviderSpec, kubeconfig: Secret | None) -> Configuration:
    """The configuration of a ``kubernetes`` provider: its stored ``kubeconfig`` at
    ``spec.context``, or the pod's service account when ``spec.in_cluster`` is set or no
    kubeconfig is stored. Blocks (reads files); raises :class:`TargetError`."""
    if kubeconfig is None or spec.in_cluster:
        return in_cluster(explicit=spec.in_cluster)
    return from_kubeconfig(kubeconfig, spec.context)
