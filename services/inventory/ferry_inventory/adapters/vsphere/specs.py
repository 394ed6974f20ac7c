"""Builders of the pyVmomi data objects the adapter sends: filter, property, object and
traversal specs, retrieve and wait options.

pyVmomi's stubs declare no constructors for data objects, so each call here is the one
place that tells mypy the construction is deliberate.
"""

from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import ManagedObject

from ferry_inventory.adapters.vsphere.properties import PATHS

Collector = vmodl.query.PropertyCollector


def property_specs(types: dict[type, tuple[str, ...]] = PATHS) -> list[Collector.PropertySpec]:
    return [
        Collector.PropertySpec(type=kind, pathSet=list(paths))  # type: ignore[no-untyped-call]
        for kind, paths in types.items()
    ]


def view_filter_spec(view: vim.view.ContainerView) -> Collector.FilterSpec:
    """Every object in ``view`` (not the view itself) with the properties of :data:`PATHS`."""
    traverse = Collector.TraversalSpec(  # type: ignore[no-untyped-call]
        name="traverseView", path="view", skip=False, type=vim.view.ContainerView
    )
    start = Collector.ObjectSpec(obj=view, skip=True, selectSet=[traverse])  # type: ignore[no-untyped-call]
    return Collector.FilterSpec(objectSet=[start], propSet=property_specs())  # type: ignore[no-untyped-call]


def object_filter_spec(obj: ManagedObject) -> Collector.FilterSpec:
    """One object with the properties of :data:`PATHS` that apply to it."""
    start = Collector.ObjectSpec(obj=obj, skip=False)  # type: ignore[no-untyped-call]
    kinds = {kind: paths for kind, paths in PATHS.items() if isinstance(obj, kind)}
    return Collector.FilterSpec(objectSet=[start], propSet=property_specs(kinds))  # type: ignore[no-untyped-call]


def paths_filter_spec(obj: ManagedObject, paths: tuple[str, ...]) -> Collector.FilterSpec:
    """One object with just ``paths``."""
    start = Collector.ObjectSpec(obj=obj, skip=False)  # type: ignore[no-untyped-call]
    return Collector.FilterSpec(objectSet=[start], propSet=property_specs({type(obj): paths}))  # type: ignore[no-untyped-call]


def retrieve_options(max_objects: int) -> Collector.RetrieveOptions:
    return Collector.RetrieveOptions(maxObjects=max_objects)  # type: ignore[no-untyped-call]


def wait_options(max_wait_seconds: int) -> Collector.WaitOptions:
    return Collector.WaitOptions(maxWaitSeconds=max_wait_seconds)  # type: ignore[no-untyped-call]
