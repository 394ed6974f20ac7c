package main

import (
	"context"
	"os"
	"reflect"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func cbtModel() *ModelSpec {
	return &ModelSpec{Datacenters: []DatacenterSpec{{
		Name:       "DC0",
		Datastores: []DatastoreSpec{{Name: "LocalDS_0"}},
		Clusters:   []ClusterSpec{{Name: "C0", Hosts: []HostSpec{{Name: "h0"}}}},
		VMs: []VMSpec{
			{Name: "cbt-vm", CBT: true, PowerState: "poweredOn", Disks: []DiskSpec{
				{Capacity: 16 << 20, Content: &ContentSpec{Kind: "extents", Seed: ptr[uint64](5), Extents: []ExtentSpec{
					{Offset: 0, Length: 100 << 10},
					{Offset: 1 << 20, Length: 64 << 10},
					{Offset: 5<<20 + 10, Length: 1},
				}}},
				{Capacity: 1 << 20},
			}},
			{Name: "nocbt", Disks: []DiskSpec{{Capacity: 1 << 20}}},
		},
	}}}
}

type qcda struct {
	t   *testing.T
	c   *govmomi.Client
	ref types.ManagedObjectReference
}

func (q qcda) query(key int32, start int64, changeID string, snap *types.ManagedObjectReference) (types.DiskChangeInfo, error) {
	res, err := methods.QueryChangedDiskAreas(context.Background(), q.c.Client, &types.QueryChangedDiskAreas{
		This: q.ref, Snapshot: snap, DeviceKey: key, StartOffset: start, ChangeId: changeID,
	})
	if err != nil {
		return types.DiskChangeInfo{}, err
	}
	return res.Returnval, nil
}

func (q qcda) want(key int32, start int64, changeID string, snap *types.ManagedObjectReference, want []types.DiskChangeExtent, capacity int64) {
	q.t.Helper()
	info, err := q.query(key, start, changeID, snap)
	if err != nil {
		q.t.Fatalf("QueryChangedDiskAreas(%q, %d): %v", changeID, start, err)
	}
	if info.StartOffset != start || info.Length != capacity-start {
		q.t.Errorf("QueryChangedDiskAreas(%q): start %d length %d", changeID, info.StartOffset, info.Length)
	}
	if len(info.ChangedArea) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(info.ChangedArea, want) {
		q.t.Errorf("QueryChangedDiskAreas(%q, %d) = %+v, want %+v", changeID, start, info.ChangedArea, want)
	}
}

func writeAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func ext(start, length int64) types.DiskChangeExtent {
	return types.DiskChangeExtent{Start: start, Length: length}
}

func TestQueryChangedDiskAreas(t *testing.T) {
	app := startApp(t, cbtModel())
	c := login(t, app)
	ctx := context.Background()
	const KiB, MiB = 1 << 10, 1 << 20
	const capacity = 16 * MiB

	var info VMInfo
	control(t, app, "GET", "/vms/cbt-vm", nil, &info)
	disk := info.Disks[0]
	q := qcda{t: t, c: c, ref: types.ManagedObjectReference{Type: "VirtualMachine", Value: info.Moref}}

	// "*": exactly the written extents, rounded to 64 KiB blocks.
	allocated := []types.DiskChangeExtent{ext(0, 128*KiB), ext(1*MiB, 64*KiB), ext(5*MiB, 64*KiB)}
	q.want(disk.Key, 0, "*", nil, allocated, capacity)
	q.want(disk.Key, 64*KiB, "*", nil, []types.DiskChangeExtent{ext(64*KiB, 64*KiB), ext(1*MiB, 64*KiB), ext(5*MiB, 64*KiB)}, capacity)
	q.want(info.Disks[1].Key, 0, "*", nil, nil, 1*MiB)

	// The build-time change ID (CBT enabled) is in the config; nothing changed since.
	vm := vmByName(t, c, "cbt-vm")
	c0 := devicesOf[*types.VirtualDisk](vm)[0].Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId
	if c0 == "" || c0 != disk.ChangeID {
		t.Fatalf("change id in config %q, control API %q", c0, disk.ChangeID)
	}
	q.want(disk.Key, 0, c0, nil, nil, capacity)

	// Checkpoint on demand, then modify: block 0 (changed byte), block 16 (data -> zeros),
	// block 48 (new data), block 80 (same bytes rewritten: not a change).
	var cp struct {
		Disks []DiskChange `json:"disks"`
	}
	if code := control(t, app, "POST", "/cbt/checkpoint", map[string]string{"vm": "cbt-vm"}, &cp); code != 200 || len(cp.Disks) != 2 {
		t.Fatalf("checkpoint: %d %+v", code, cp)
	}
	c1 := cp.Disks[0].ChangeID
	if c1 == c0 {
		t.Fatalf("checkpoint kept change id %q", c1)
	}
	orig := make([]byte, 1)
	FillStream(5, 0, orig)
	writeAt(t, disk.PathOnDisk, 0, []byte{^orig[0]})
	writeAt(t, disk.PathOnDisk, 1*MiB, make([]byte, 64*KiB))
	writeAt(t, disk.PathOnDisk, 3*MiB+5, []byte{1})
	same := make([]byte, 1)
	FillStream(5, 5*MiB+10, same)
	writeAt(t, disk.PathOnDisk, 5*MiB+10, same)

	q.want(disk.Key, 0, c1, nil, []types.DiskChangeExtent{ext(0, 64*KiB), ext(1*MiB, 64*KiB), ext(3*MiB, 64*KiB)}, capacity)
	q.want(disk.Key, 2*MiB, c1, nil, []types.DiskChangeExtent{ext(3*MiB, 64*KiB)}, capacity)
	// Since the build-time state: block 0, block 1 (unchanged data, but compared with c0
	// it is the same), ... only real differences count.
	q.want(disk.Key, 0, c0, nil, []types.DiskChangeExtent{ext(0, 64*KiB), ext(1*MiB, 64*KiB), ext(3*MiB, 64*KiB)}, capacity)
	q.want(disk.Key, 0, "*", nil, []types.DiskChangeExtent{ext(0, 128*KiB), ext(3*MiB, 64*KiB), ext(5*MiB, 64*KiB)}, capacity)

	// A snapshot records a new change ID, visible in the VM's and the snapshot's config.
	obj := object.NewVirtualMachine(c.Client, q.ref)
	task, err := obj.CreateSnapshot(ctx, "backup-1", "", false, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := task.WaitForResult(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := res.Result.(types.ManagedObjectReference)
	vm = vmByName(t, c, "cbt-vm")
	c2 := devicesOf[*types.VirtualDisk](vm)[0].Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId
	if c2 == "" || c2 == c1 {
		t.Fatalf("snapshot change id %q (before %q)", c2, c1)
	}
	var snapMo mo.VirtualMachineSnapshot
	if err := c.RetrieveOne(ctx, snap, []string{"config"}, &snapMo); err != nil {
		t.Fatal(err)
	}
	for _, d := range snapMo.Config.Hardware.Device {
		if vd, ok := d.(*types.VirtualDisk); ok && vd.Key == disk.Key {
			if id := vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId; id != c2 {
				t.Errorf("snapshot config change id %q, want %q", id, c2)
			}
		}
	}
	// Writes after the snapshot show against c2 without a snapshot, but not in the
	// snapshot's view.
	writeAt(t, disk.PathOnDisk, 10*MiB, []byte{7})
	q.want(disk.Key, 0, c2, nil, []types.DiskChangeExtent{ext(10*MiB, 64*KiB)}, capacity)
	q.want(disk.Key, 0, c1, &snap, []types.DiskChangeExtent{ext(0, 64*KiB), ext(1*MiB, 64*KiB), ext(3*MiB, 64*KiB)}, capacity)
	q.want(disk.Key, 0, c2, &snap, nil, capacity)

	// Errors as vSphere faults.
	if _, err := q.query(disk.Key, 0, "52 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00/9", nil); !isFault[*types.InvalidArgument](err) {
		t.Errorf("unknown change id: %v", err)
	}
	if _, err := q.query(info.Disks[1].Key, 0, c1, nil); !isFault[*types.InvalidArgument](err) {
		t.Errorf("change id of another disk: %v", err)
	}
	if _, err := q.query(4000, 0, "*", nil); !isFault[*types.InvalidArgument](err) {
		t.Errorf("unknown device key: %v", err)
	}
	if _, err := q.query(disk.Key, capacity+1, "*", nil); !isFault[*types.InvalidArgument](err) {
		t.Errorf("start offset past the end: %v", err)
	}
	var nocbt VMInfo
	control(t, app, "GET", "/vms/nocbt", nil, &nocbt)
	q2 := qcda{t: t, c: c, ref: types.ManagedObjectReference{Type: "VirtualMachine", Value: nocbt.Moref}}
	if _, err := q2.query(nocbt.Disks[0].Key, 0, "*", nil); !isFault[*types.FileFault](err) {
		t.Errorf("CBT disabled: %v", err)
	}
	if code := control(t, app, "POST", "/cbt/checkpoint", map[string]string{"vm": "nocbt"}, nil); code != 409 {
		t.Errorf("checkpoint of a VM without CBT: %d", code)
	}
}

func isFault[T types.BaseMethodFault](err error) bool {
	_, ok := vimFault(err).(T)
	return ok
}

func TestQueryChangedDiskAreasMaxSpan(t *testing.T) {
	app := startApp(t, cbtModel(), func(o *Options) { o.CBTMaxSpan = 4 << 20 })
	c := login(t, app)
	var info VMInfo
	control(t, app, "GET", "/vms/cbt-vm", nil, &info)
	q := qcda{t: t, c: c, ref: types.ManagedObjectReference{Type: "VirtualMachine", Value: info.Moref}}
	// A client loops until startOffset+length reaches the capacity.
	var got []types.DiskChangeExtent
	calls := 0
	for off := int64(0); off < 16<<20; calls++ {
		r, err := q.query(info.Disks[0].Key, off, "*", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Length > 4<<20 {
			t.Fatalf("length %d over the max span", r.Length)
		}
		got = append(got, r.ChangedArea...)
		off = r.StartOffset + r.Length
	}
	want := []types.DiskChangeExtent{ext(0, 128<<10), ext(1<<20, 64<<10), ext(5<<20, 64<<10)}
	if calls != 4 || !reflect.DeepEqual(got, want) {
		t.Errorf("%d calls, areas %+v", calls, got)
	}
}
