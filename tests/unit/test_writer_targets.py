"""Which writer kubevirt-writer uses for a target provider, and how a cluster's client
follows the provider's stored kubeconfig (no cluster is called)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest
import yaml

from ferry_kubevirt_writer.adapters.kubernetes.writer import KubernetesTargetWriter
from ferry_kubevirt_writer.adapters.local_target import LocalTargetWriter
from ferry_kubevirt_writer.adapters.targets import TargetWriterFactory
from ferry_shared.credentials import CredentialStore, Secret
from ferry_shared.errors import PermanentError
from ferry_shared.providers import ProviderSpec

CLUSTER = ProviderSpec(name="cluster", type="kubernetes")
TOKEN = "s3cr3t-t0ken-value"


def kubeconfig(server: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    })  # fmt: skip


@dataclass
class FakeCredentials:
    secrets: dict[str, str] = field(default_factory=dict)

    async def get(self, provider: str) -> Secret | None:
        value = self.secrets.get(provider)
        return Secret(value) if value is not None else None


@pytest.fixture
def credentials() -> FakeCredentials:
    return FakeCredentials()


@pytest.fixture
def factory(credentials: FakeCredentials) -> TargetWriterFactory:
    return TargetWriterFactory(
        cast(CredentialStore, credentials), sink_image="img", sink_ready_timeout=60, request_timeout=5
    )


async def test_local_and_kubernetes_providers_get_their_writers_and_a_source_gets_none(
    factory: TargetWriterFactory, credentials: FakeCredentials, tmp_path: Path
) -> None:
    local = await factory.writer_for(ProviderSpec(name="disk", type="local", path=str(tmp_path)))
    assert isinstance(local, LocalTargetWriter)
    credentials.secrets["cluster"] = kubeconfig("https://user:pw@10.0.0.1:6443")
    cluster = await factory.writer_for(CLUSTER)
    assert isinstance(cluster, KubernetesTargetWriter)
    assert repr(cluster) == "KubernetesTargetWriter('https://10.0.0.1:6443')"
    with pytest.raises(PermanentError) as raised:
        await factory.writer_for(ProviderSpec(name="vc", type="vsphere"))
    assert raised.value.code == "not_a_target"
    assert "provider 'vc' is a vsphere provider" in raised.value.message
    factory.close()


async def test_the_client_is_kept_while_the_kubeconfig_stays_and_replaced_when_it_changes(
    factory: TargetWriterFactory, credentials: FakeCredentials
) -> None:
    credentials.secrets["cluster"] = kubeconfig("https://10.0.0.1:6443")
    first = await factory._cluster(CLUSTER)
    assert await factory._cluster(CLUSTER) is first
    credentials.secrets["cluster"] = kubeconfig("https://10.0.0.2:6443")
    second = await factory._cluster(CLUSTER)
    assert second is not first and second.server == "https://10.0.0.2:6443"
    factory.close()


@pytest.mark.parametrize(
    ("secret", "complaint"),
    [
        (f"users: [{{token: {TOKEN}", "the kubeconfig is not valid YAML"),
        (None, "no kubeconfig is stored for the provider and Ferry is not running inside a cluster"),
    ],
)
async def test_an_unusable_kubeconfig_fails_permanently_without_showing_it(
    factory: TargetWriterFactory, credentials: FakeCredentials, secret: str | None, complaint: str
) -> None:
    if secret is not None:
        credentials.secrets["cluster"] = secret
    with pytest.raises(PermanentError) as raised:
        await factory.writer_for(CLUSTER)
    assert raised.value.code == "kubeconfig_invalid"
    assert raised.value.message.startswith("target provider 'cluster': ")
    assert complaint in raised.value.message
    assert TOKEN not in str(raised.value)
