"""The parts of Kubernetes objects the inventory reads, decoded from the API's JSON into
typed structs (unknown fields ignored), and the inventory records made from them.

Called by the feeds (decoding) and by :class:`TargetState` (records).
"""

import msgspec

from ferry_shared.inventory import NadRecord, NamespaceRecord, StorageClassRecord, TargetVmRecord

DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


class Metadata(msgspec.Struct, frozen=True, rename="camel"):
    name: str = ""
    namespace: str = ""
    resource_version: str = ""
    annotations: dict[str, str] = {}

    @property
    def id(self) -> str:
        """``namespace/name`` for namespaced objects, else the name."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


class KubeObject(msgspec.Struct, frozen=True, rename="camel"):
    metadata: Metadata = Metadata()


class StorageClassObject(KubeObject, frozen=True):
    provisioner: str = ""


class ClaimPropertySet(msgspec.Struct, frozen=True, rename="camel"):
    access_modes: list[str] = []
    volume_mode: str = ""


class ProfileFields(msgspec.Struct, frozen=True, rename="camel"):
    claim_property_sets: list[ClaimPropertySet] = []


class StorageProfileObject(KubeObject, frozen=True):
    spec: ProfileFields = ProfileFields()
    status: ProfileFields = ProfileFields()


class Interface(msgspec.Struct, frozen=True, rename="camel"):
    name: str = ""
    mac_address: str = ""


class Devices(msgspec.Struct, frozen=True):
    interfaces: list[Interface] = []


class Domain(msgspec.Struct, frozen=True):
    devices: Devices = Devices()


class TemplateSpec(msgspec.Struct, frozen=True):
    domain: Domain = Domain()


class Template(msgspec.Struct, frozen=True):
    spec: TemplateSpec = TemplateSpec()


class VirtualMachineSpec(msgspec.Struct, frozen=True):
    template: Template = Template()


class VirtualMachineObject(KubeObject, frozen=True):
    spec: VirtualMachineSpec = VirtualMachineSpec()


OBJECT_TYPES: dict[str, type[KubeObject]] = {
    "namespace": KubeObject,
    "storageclass": StorageClassObject,
    "storageprofile": StorageProfileObject,
    "nad": KubeObject,
    "targetvm": VirtualMachineObject,
}


def namespace_record(obj: KubeObject) -> NamespaceRecord:
    return NamespaceRecord(id=obj.metadata.id, name=obj.metadata.name)


def storage_class_record(obj: StorageClassObject, profile: StorageProfileObject | None) -> StorageClassRecord:
    """The class with its CDI hints: the profile's observed claim property sets (``status``),
    else the ones set by an administrator (``spec``)."""
    annotations = obj.metadata.annotations
    sets = (profile.status.claim_property_sets or profile.spec.claim_property_sets) if profile else []
    return StorageClassRecord(
        id=obj.metadata.id,
        name=obj.metadata.name,
        provisioner=obj.provisioner,
        is_default=any(annotations.get(key, "").lower() == "true" for key in DEFAULT_CLASS_ANNOTATIONS),
        volume_modes=tuple(dict.fromkeys(s.volume_mode for s in sets if s.volume_mode)),
        access_modes=tuple(dict.fromkeys(mode for s in sets for mode in s.access_modes)),
    )


def nad_record(obj: KubeObject) -> NadRecord:
    return NadRecord(id=obj.metadata.id, name=obj.metadata.name, namespace=obj.metadata.namespace)


def target_vm_record(obj: VirtualMachineObject) -> TargetVmRecord:
    interfaces = obj.spec.template.spec.domain.devices.interfaces
    return TargetVmRecord(
        id=obj.metadata.id,
        name=obj.metadata.name,
        namespace=obj.metadata.namespace,
        macs=tuple(i.mac_address for i in interfaces if i.mac_address),
    )
