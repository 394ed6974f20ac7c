"""Strict input of the planner's API models: DNS-1123 names, bounded source references,
lists and records, and refusals that never repeat a huge value."""

from typing import Any

import pytest
from pydantic import ValidationError

from ferry_planner.entrypoints.api_models import (
    MAX_VMS,
    CancelIn,
    NetworkMapIn,
    PlanIn,
    ProviderIn,
    ProviderPatchIn,
    StorageMapIn,
)
from ferry_shared.api_fields import shown


def plan(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "p1", "source_provider": "vc", "target_provider": "kube", "network_map": "net",
                            "storage_map": "sto", "target_namespace": "apps", "vms": [{"ref": "web-01"}]}  # fmt: skip
    return body | changes


@pytest.mark.parametrize("bad", ["has space", "star*", "nul\x00", "newline\n", "Upper", "x" * 64, "", "-a"])
@pytest.mark.parametrize("field", ["name", "source_provider", "network_map", "target_namespace"])
def test_a_name_that_is_no_dns1123_label_is_refused(field: str, bad: str) -> None:
    with pytest.raises(ValidationError, match="DNS-1123"):
        PlanIn.model_validate(plan(**{field: bad}))


@pytest.mark.parametrize("ref", ["Finance DB (prod)", "web*01", "vm-42", "naïve/ünïcode"])
def test_source_names_may_hold_spaces_and_most_characters(ref: str) -> None:
    assert PlanIn.model_validate(plan(vms=[{"ref": ref}])).vms[0].ref == ref


@pytest.mark.parametrize("ref", ["", "nul\x00", "newline\n", "tab\t", "x" * 256])
def test_source_names_with_control_characters_or_too_long_are_refused(ref: str) -> None:
    with pytest.raises(ValidationError):
        PlanIn.model_validate(plan(vms=[{"ref": ref}]))


def test_lists_are_bounded_and_a_record_must_fit_in_the_bucket() -> None:
    with pytest.raises(ValidationError, match=f"at most {MAX_VMS}"):
        PlanIn.model_validate(plan(vms=[{"ref": f"vm-{i}"} for i in range(MAX_VMS + 1)]))
    with pytest.raises(ValidationError, match="bytes encoded"):
        PlanIn.model_validate(plan(vms=[{"ref": "ü" * 255, "target_name": f"vm-{i}"} for i in range(MAX_VMS)]))
    with pytest.raises(ValidationError):
        CancelIn.model_validate({"vms": ["vm"] * (MAX_VMS + 1)})


def test_map_pairs_name_kubernetes_objects_by_their_rules() -> None:
    network = {"name": "net", "source_provider": "vc", "target_provider": "kube"}
    ok = NetworkMapIn.model_validate(network | {"pairs": [{"source": "VM Network", "destination": "multus",
                                                           "nad": "apps/vlan-100"}]})  # fmt: skip
    assert ok.pairs[0].nad == "apps/vlan-100"
    for nad in ("vlan-100", "apps/", "Apps/x", "a/b\n"):
        with pytest.raises(ValidationError, match="namespace/name"):
            NetworkMapIn.model_validate(network | {"pairs": [{"source": "n", "destination": "multus", "nad": nad}]})
    with pytest.raises(ValidationError, match="DNS-1123 subdomain"):
        StorageMapIn.model_validate(network | {"pairs": [{"source": "LocalDS_0", "storage_class": "Fast SSD"}]})


def test_provider_settings_are_checked() -> None:
    good = ProviderIn.model_validate({"name": "vc", "type": "vsphere", "url": "https://vc/sdk", "username": "u",
                                      "password": "p", "thumbprint": ":".join(["AB"] * 32)})  # fmt: skip
    assert good.thumbprint.startswith("AB:")
    for bad in ({"url": "https://vc/ sdk"}, {"thumbprint": "AB:CD"}, {"username": "a\nb"}, {"path": "/tmp\x00"}):
        with pytest.raises(ValidationError):
            ProviderIn.model_validate({"name": "vc", "type": "local"} | bad)
    assert ProviderIn.model_validate({"name": "vc", "type": "vsphere", "ca_bundle": "-----BEGIN\nx\n-----END\n"})


def test_a_provider_change_is_checked_like_a_new_provider_and_names_no_provider() -> None:
    assert ProviderPatchIn.model_validate({}).model_dump(exclude_none=True) == {}
    good = ProviderPatchIn.model_validate(
        {"thumbprint": ":".join(["CD"] * 32), "insecure": False, "password": "hunter2"}
    )
    assert good.password is not None and "hunter2" not in repr(good)
    for bad in ({"url": "https://vc/ sdk"}, {"thumbprint": "AB:CD"}, {"username": "a\nb"}, {"path": "/tmp\x00"},
                {"name": "other"}, {"type": "vmware"}, {"password": "x" * 1025}, {"context": "c" * 300}):  # fmt: skip
        with pytest.raises(ValidationError):
            ProviderPatchIn.model_validate(bad)


def test_a_refusal_shows_a_short_escaped_piece_of_the_value() -> None:
    with pytest.raises(ValidationError) as refused:
        PlanIn.model_validate(plan(name="x" * 1_000_000))
    assert len(str(refused.value)) < 2000
    assert shown("a\x00b") == "'a\\x00b'"
    assert shown("y" * 100).endswith("… (100 characters)")
