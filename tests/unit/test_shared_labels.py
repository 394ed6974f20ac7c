"""The one vocabulary of labels Ferry puts on target objects: one prefix, and the keys
of earlier versions still read (pure)."""

from ferry_shared import labels


def test_every_key_ferry_owns_has_the_one_prefix() -> None:
    keys = [labels.PLAN, labels.SOURCE_VM, labels.SOURCE_VM_ID, labels.SOURCE_PROVIDER, labels.ROLE,
            labels.MIGRATION, labels.VM, labels.SOURCE_FILE, labels.SOURCE_VM_NAME]  # fmt: skip
    assert all(key.startswith("ferry.dev/") for key in keys)
    assert len(set(keys)) == len(keys)
    assert dict(labels.MANAGED_BY_FERRY) == {"app.kubernetes.io/managed-by": "ferry"}


def test_a_label_is_read_under_todays_key_first_then_under_the_earlier_one() -> None:
    assert labels.label_of({"ferry.dev/role": "disk-sink"}, labels.ROLE) == "disk-sink"
    assert labels.label_of({"ferry.io/role": "disk-sink"}, labels.ROLE) == "disk-sink"
    assert labels.label_of({"ferry.dev/vm": "new", "ferry.io/vm": "old"}, labels.VM) == "new"
    assert labels.label_of({"ferry.io/vm": "web-1"}, labels.MIGRATION) is None
    assert labels.label_of(None, labels.ROLE) is None


def test_keys_that_never_had_another_name_are_read_only_under_their_own() -> None:
    assert labels.label_of({"ferry.io/plan": "p1"}, labels.PLAN) is None
    assert labels.label_of({"ferry.dev/plan": "p1"}, labels.PLAN) == "p1"


def test_selectors_find_objects_of_this_version_and_of_earlier_ones() -> None:
    assert labels.selectors({labels.ROLE: "disk-sink", labels.VM: "web-1"}) == (
        "ferry.dev/role=disk-sink,ferry.dev/vm=web-1",
        "ferry.io/role=disk-sink,ferry.io/vm=web-1",
    )
    assert labels.selectors({labels.SOURCE_VM: "vm-42"}) == ("ferry.dev/source-vm=vm-42",)
