"""Reading vCenter's inventory: the full load and single-object re-reads.

The load lists everything once through a container view of the root folder and
``RetrievePropertiesEx`` in pages of ``batch_size`` objects, following
``ContinueRetrievePropertiesEx`` tokens; the view is kept for the change feed.
"""

from collections.abc import Callable

from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import ManagedObject

from ferry_inventory.adapters.vsphere.cache import ObjectState, state_from_content
from ferry_inventory.adapters.vsphere.properties import VIEW_TYPES
from ferry_inventory.adapters.vsphere.specs import object_filter_spec, retrieve_options, view_filter_spec
from ferry_shared.vsphere.errors import NOT_VCENTER, ProviderError, StoppedError


def create_view(content: vim.ServiceInstanceContent) -> vim.view.ContainerView:
    """A container view of every inventory object we collect, below the root folder."""
    manager = content.viewManager
    if manager is None:
        raise ProviderError(NOT_VCENTER, "the endpoint offers no view manager, so it is not a vCenter")
    return manager.CreateContainerView(content.rootFolder, VIEW_TYPES, True)


def load_all(
    content: vim.ServiceInstanceContent,
    view: vim.view.ContainerView,
    batch_size: int,
    stopped: Callable[[], bool],
) -> list[ObjectState]:
    """Every object in ``view`` with its properties; checks ``stopped`` between pages."""
    collector = content.propertyCollector
    result = collector.RetrievePropertiesEx([view_filter_spec(view)], retrieve_options(batch_size))
    states: list[ObjectState] = []
    while result is not None:
        states.extend(state_from_content(item) for item in result.objects)
        if not result.token:
            break
        if stopped():
            collector.CancelRetrievePropertiesEx(result.token)
            raise StoppedError
        result = collector.ContinueRetrievePropertiesEx(result.token)
    return states


def load_one(content: vim.ServiceInstanceContent, obj: ManagedObject) -> ObjectState | None:
    """One object read again; None when it no longer exists."""
    try:
        result = content.propertyCollector.RetrievePropertiesEx([object_filter_spec(obj)], retrieve_options(1))
    except vmodl.fault.ManagedObjectNotFound:
        return None
    if result is None or not result.objects:
        return None
    return state_from_content(result.objects[0])
