package main

// Read-only helpers over the simulator registry: VMs by name, their disks and the
// local files behind them.

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// DiskInfo describes one virtual disk and the file that holds its bytes.
type DiskInfo struct {
	Key        int32  `json:"key"`
	Label      string `json:"label"`
	File       string `json:"file"`      // backing fileName, "[LocalDS_0] vm/vm.vmdk"
	Datastore  string `json:"datastore"` // datastore name
	PathOnDisk string `json:"path_on_disk"`
	Descriptor string `json:"descriptor_path"`
	Capacity   int64  `json:"capacity"`
	ChangeID   string `json:"change_id,omitempty"`
	Backing    string `json:"backing"` // flat | rdm | other
}

func (a *App) addDatastoreDir(name, dir string, ref types.ManagedObjectReference) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dsDirs[name] = dir
}

func (a *App) datastoreDir(name string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, ok := a.dsDirs[name]
	return d, ok
}

// localPath maps "[ds] dir/file.vmdk" to the local file (descriptor) path.
func (a *App) localPath(file string) (string, string, bool) {
	var p object.DatastorePath
	if !p.FromString(file) {
		return "", "", false
	}
	dir, ok := a.datastoreDir(p.Datastore)
	if !ok {
		return "", p.Datastore, false
	}
	local := filepath.Join(dir, filepath.FromSlash(p.Path))
	if _, err := os.Stat(local); err != nil {
		// vSAN datastores keep top-level directories under a UUID name.
		if m, _ := filepath.Glob(filepath.Join(dir, "*", filepath.Base(p.Path))); len(m) == 1 {
			local = m[0]
		}
	}
	return local, p.Datastore, true
}

// flatPath is the simulator's name for the data file of a disk descriptor.
func flatPath(descriptor string) string {
	return simulator.VirtualDiskBackingFileName(descriptor)
}

// diskInfos lists a device list's virtual disks.
func (a *App) diskInfos(devices []types.BaseVirtualDevice) []DiskInfo {
	var out []DiskInfo
	for _, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		info := DiskInfo{Key: disk.Key, Capacity: disk.CapacityInBytes, Backing: "other"}
		if info.Capacity == 0 {
			info.Capacity = disk.CapacityInKB * 1024
		}
		if disk.DeviceInfo != nil {
			info.Label = disk.DeviceInfo.GetDescription().Label
		}
		switch b := disk.Backing.(type) {
		case *types.VirtualDiskFlatVer2BackingInfo:
			info.File, info.ChangeID, info.Backing = b.FileName, b.ChangeId, "flat"
		case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
			info.File, info.ChangeID, info.Backing = b.FileName, b.ChangeId, "rdm"
		case *types.VirtualDiskSeSparseBackingInfo:
			info.File, info.ChangeID = b.FileName, b.ChangeId
		case *types.VirtualDiskSparseVer2BackingInfo:
			info.File, info.ChangeID = b.FileName, b.ChangeId
		}
		if local, ds, ok := a.localPath(info.File); ok {
			info.Descriptor = local
			info.PathOnDisk = flatPath(local)
			info.Datastore = ds
		}
		out = append(out, info)
	}
	return out
}

// vmDisks lists a VM's disks, reading its config under the VM lock (held by sctx or taken).
func (a *App) vmDisks(sctx *simulator.Context, vm *simulator.VirtualMachine) []DiskInfo {
	var out []DiskInfo
	sctx.WithLock(vm, func() {
		out = a.diskInfos(vm.Config.Hardware.Device)
	})
	return out
}

// VMInfo is the control API's view of a VM.
type VMInfo struct {
	Name       string     `json:"name"`
	Moref      string     `json:"moref"`
	PowerState string     `json:"power_state"`
	CBT        bool       `json:"cbt"`
	Host       string     `json:"host,omitempty"`
	Disks      []DiskInfo `json:"disks"`
}

func (a *App) allVMs() []*simulator.VirtualMachine {
	var out []*simulator.VirtualMachine
	for _, e := range a.reg.All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok {
			out = append(out, vm)
		}
	}
	return out
}

func (a *App) findVM(name string) *simulator.VirtualMachine {
	if strings.HasPrefix(name, "vm-") {
		if vm, ok := a.reg.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: name}).(*simulator.VirtualMachine); ok {
			return vm
		}
	}
	sctx := a.newContext()
	for _, vm := range a.allVMs() {
		var n string
		sctx.WithLock(vm, func() { n = vm.Name })
		if n == name {
			return vm
		}
	}
	return nil
}

func (a *App) vmInfo(sctx *simulator.Context, vm *simulator.VirtualMachine) VMInfo {
	var info VMInfo
	sctx.WithLock(vm, func() {
		info = VMInfo{
			Name:       vm.Name,
			Moref:      vm.Self.Value,
			PowerState: string(vm.Runtime.PowerState),
			CBT:        vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled,
			Disks:      a.diskInfos(vm.Config.Hardware.Device),
		}
		if vm.Runtime.Host != nil {
			info.Host = vm.Runtime.Host.Value
		}
	})
	if info.Host != "" {
		if h, ok := a.reg.Get(types.ManagedObjectReference{Type: "HostSystem", Value: info.Host}).(*simulator.HostSystem); ok {
			sctx.WithLock(h, func() { info.Host = h.Name })
		}
	}
	return info
}
