"""The vSphere adapter of the inventory service: a :class:`VsphereWatcher` per vCenter,
and :class:`~.power.VspherePower`, which powers source VMs off and on for migrations.

Modules, outside in: :mod:`.watcher` (the run loop), :mod:`.live` (one session's load
and change feed), :mod:`.login` (TLS probe and login), :mod:`.power` and :mod:`.waits`
(power operations, waiting on one property), :mod:`.collector`, :mod:`.feed` and
:mod:`.own_collector` (PropertyCollector calls), :mod:`.mirror` and :mod:`.cache` (the
copy of vCenter's objects), :mod:`.records`, :mod:`.vm_record`, :mod:`.disks`,
:mod:`.nics` (objects to inventory records).
"""

from ferry_inventory.adapters.vsphere.watcher import VsphereWatcher, WatchSettings

__all__ = ["VsphereWatcher", "WatchSettings"]
