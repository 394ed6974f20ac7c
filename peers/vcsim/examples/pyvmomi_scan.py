"""Read every property of every object of a running ferry-vcsim with pyvmomi.

    python3 examples/pyvmomi_scan.py STATE_DIR/ready.json

Prints FAIL lines for properties whose answer pyvmomi cannot parse (e.g. an empty enum
the simulator left behind) and UNSUPPORTED lines for properties the simulator does not
model (it answers a vmodl fault, e.g. ClusterComputeResource.summaryEx), then
"scan done". Exits 1 on FAIL. Used to check govmomi upgrades; needs pyvmomi.
"""
import json
import ssl
import sys

from pyVim.connect import SmartConnect
from pyVmomi import vim, vmodl

ready = json.load(open(sys.argv[1]))
host, port = ready["sdk_url"].split("//")[1].split("/")[0].split(":")
ctx = ssl.create_default_context(cafile=ready["cert_file"]) if ready["cert_file"] else None
si = SmartConnect(protocol="https" if ctx else "http", host=host, port=int(port),
                  user=ready["username"], pwd=ready["password"], sslContext=ctx)
content = si.RetrieveContent()
pc = content.propertyCollector
kinds = [vim.VirtualMachine, vim.HostSystem, vim.Datastore, vim.Network,
         vim.dvs.DistributedVirtualPortgroup, vim.dvs.VmwareDistributedVirtualSwitch,
         vim.ClusterComputeResource, vim.ComputeResource, vim.ResourcePool, vim.Folder,
         vim.Datacenter, vim.OpaqueNetwork]
failed = set()
unsupported = set()


def check(obj):
    for prop in type(obj)._GetPropertyList():
        key = (type(obj).__name__, prop.name)
        if key in failed or key in unsupported:
            continue
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj)],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=[prop.name])])
        try:
            pc.RetrieveContents([spec])
            getattr(obj, prop.name)  # the Fetch path pyvmomi uses for attribute access
        except vmodl.MethodFault as e:
            unsupported.add(key)
            print("UNSUPPORTED", type(obj).__name__, prop.name, type(e).__name__)
        except Exception as e:  # noqa: BLE001
            failed.add(key)
            print("FAIL", type(obj).__name__, obj._moId, prop.name, type(e).__name__, str(e)[:200])


snapshots = []
for kind in kinds:
    objs = content.viewManager.CreateContainerView(content.rootFolder, [kind], True).view
    for obj in list(objs)[:8]:
        check(obj)
        if kind is vim.VirtualMachine and obj.snapshot:
            stack = list(obj.snapshot.rootSnapshotList)
            while stack:
                s = stack.pop()
                snapshots.append(s.snapshot)
                stack.extend(s.childSnapshotList)
for snap in snapshots[:8]:
    check(snap)
print("scan done (%d failures, %d unsupported)" % (len(failed), len(unsupported)))
sys.exit(1 if failed else 0)
