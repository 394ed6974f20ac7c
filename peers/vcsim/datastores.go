package main

// Datastores: directories under --state-dir/datastores, mounted on hosts through
// HostDatastoreSystem.CreateLocalDatastore, then presented as VMFS / NFS / vSAN with the
// model's capacity and free space.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func (b *dcBuilder) addDatastore(ctx context.Context, spec DatastoreSpec) error {
	dir := filepath.Join(b.app.dsRoot, spec.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hosts := spec.Hosts
	if len(hosts) == 0 {
		for _, h := range b.hostList {
			hosts = append(hosts, h.name)
		}
	}
	var ref types.ManagedObjectReference
	for _, name := range hosts {
		h := b.hosts[name]
		dss, err := h.obj.ConfigManager().DatastoreSystem(ctx)
		if err != nil {
			return err
		}
		ds, err := dss.CreateLocalDatastore(ctx, spec.Name, dir)
		if err != nil {
			return err
		}
		if ref.Value == "" {
			// Only the first mount returns the new datastore's reference.
			ref = ds.Reference()
		}
		h.datastores[spec.Name] = true
	}
	b.ds[spec.Name] = ref
	b.app.addDatastoreDir(spec.Name, dir, ref)

	// Present the datastore as the requested type and size.
	obj := b.app.reg.Get(ref).(*simulator.Datastore)
	sctx := b.app.newContext()
	sctx.WithLock(obj, func() {
		setDatastoreType(obj, spec)
		sctx.Update(obj, []types.PropertyChange{
			{Name: "summary", Val: obj.Summary},
			{Name: "info", Val: obj.Info},
		})
	})
	return nil
}

func setDatastoreType(obj *simulator.Datastore, spec DatastoreSpec) {
	capacity := int64(spec.Capacity)
	if capacity <= 0 {
		capacity = 1 << 40
	}
	dir := obj.Summary.Url
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte(spec.Name)).String()
	base := types.DatastoreInfo{
		Name:                   spec.Name,
		Url:                    dir,
		FreeSpace:              capacity,
		MaxFileSize:            62 << 40,
		MaxVirtualDiskCapacity: 62 << 40,
		MaxMemoryFileSize:      62 << 40,
		Timestamp:              types.NewTime(time.Now()),
		ContainerId:            id,
	}
	kind := spec.Type
	if kind == "" {
		kind = "VMFS"
	}
	switch strings.ToLower(kind) {
	case "vmfs":
		obj.Summary.Type = "VMFS"
		obj.Info = &types.VmfsDatastoreInfo{
			DatastoreInfo:          base,
			MaxPhysicalRDMFileSize: 64 << 40,
			MaxVirtualRDMFileSize:  62 << 40,
			Vmfs: &types.HostVmfsVolume{
				HostFileSystemVolume: types.HostFileSystemVolume{Type: "VMFS", Name: spec.Name, Capacity: capacity},
				BlockSizeMb:          1,
				BlockSize:            1024,
				MaxBlocks:            63963136,
				MajorVersion:         6,
				Version:              "6.82",
				Uuid:                 id,
				Extent:               []types.HostScsiDiskPartition{{DiskName: "naa." + strings.ReplaceAll(id, "-", "")[:24], Partition: 1}},
				Local:                types.NewBool(true),
				Ssd:                  types.NewBool(true),
			},
		}
	case "nfs", "nfs41":
		t := "NFS"
		if strings.ToLower(kind) == "nfs41" {
			t = "NFS41"
		}
		obj.Summary.Type = t
		obj.Info = &types.NasDatastoreInfo{
			DatastoreInfo: base,
			Nas: &types.HostNasVolume{
				HostFileSystemVolume: types.HostFileSystemVolume{Type: t, Name: spec.Name, Capacity: capacity},
				RemoteHost:           "nfs.example.com",
				RemotePath:           "/export/" + spec.Name,
			},
		}
	case "vsan":
		obj.Summary.Type = "vsan"
		obj.Info = &types.VsanDatastoreInfo{DatastoreInfo: base, MembershipUuid: id}
	default:
		obj.Summary.Type = strings.ToUpper(kind)
		if li, ok := obj.Info.(*types.LocalDatastoreInfo); ok {
			li.DatastoreInfo = base
		}
	}
	obj.Summary.Capacity = capacity
	obj.Summary.FreeSpace = capacity
	obj.Summary.Name = spec.Name
}

// finishDatastores applies the model's "free" values after the VMs used their space.
func (b *dcBuilder) finishDatastores() error {
	for _, spec := range b.spec.Datastores {
		if spec.Free == nil {
			continue
		}
		obj := b.app.reg.Get(b.ds[spec.Name]).(*simulator.Datastore)
		sctx := b.app.newContext()
		sctx.WithLock(obj, func() {
			obj.Summary.FreeSpace = int64(*spec.Free)
			obj.Info.GetDatastoreInfo().FreeSpace = int64(*spec.Free)
			sctx.Update(obj, []types.PropertyChange{
				{Name: "summary.freeSpace", Val: obj.Summary.FreeSpace},
				{Name: "info", Val: obj.Info},
			})
		})
	}
	return nil
}
