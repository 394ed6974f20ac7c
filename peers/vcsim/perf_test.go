package main

// Timing checks, run with FERRY_VCSIM_PERF=1 (they write ~6 GiB of sparse/dense files and
// build 5,000 VMs): go test -run Perf -v .

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

func perfOnly(t *testing.T) {
	if os.Getenv("FERRY_VCSIM_PERF") == "" {
		t.Skip("set FERRY_VCSIM_PERF=1 to run timing tests")
	}
}

func TestPerfDenseDisk(t *testing.T) {
	perfOnly(t)
	dirs := map[string]string{"disk": t.TempDir()}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "ferry-vcsim-perf")
		if err == nil {
			defer os.RemoveAll(d)
			dirs["tmpfs"] = d
		}
	}
	for kind, dir := range dirs {
		p := filepath.Join(dir, "dense-flat.vmdk")
		start := time.Now()
		if err := WriteDiskContent(p, 4<<30, &ContentSpec{Kind: "random"}, 1); err != nil {
			t.Fatal(err)
		}
		t.Logf("4 GiB dense random disk written in %v (%s: %s)", time.Since(start), kind, dir)
		os.Remove(p)
	}
}

func TestPerfQueryChangedDiskAreas16GiB(t *testing.T) {
	perfOnly(t)
	seed := uint64(9)
	m := &ModelSpec{Datacenters: []DatacenterSpec{{
		Name:       "DC0",
		Datastores: []DatastoreSpec{{Name: "LocalDS_0"}},
		Hosts:      []HostSpec{{Name: "h0"}},
		VMs: []VMSpec{{Name: "big", CBT: true, Disks: []DiskSpec{{
			Capacity: 16 << 30,
			// 1 MiB of data every 10 MiB: 10% allocated.
			Content: &ContentSpec{Kind: "extents", Seed: &seed, Pattern: &PatternSpec{Stride: 10 << 20, Length: 1 << 20}},
		}}}},
	}}}
	start := time.Now()
	app := startApp(t, m)
	t.Logf("model with a 16 GiB 10%%-allocated CBT disk built in %v (includes the initial checkpoint)", time.Since(start))
	c := login(t, app)
	var info VMInfo
	control(t, app, "GET", "/vms/big", nil, &info)
	d := info.Disks[0]
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: info.Moref}
	query := func(changeID string) types.DiskChangeInfo {
		start := time.Now()
		res, err := methods.QueryChangedDiskAreas(context.Background(), c.Client, &types.QueryChangedDiskAreas{
			This: ref, DeviceKey: d.Key, ChangeId: changeID,
		})
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, a := range res.Returnval.ChangedArea {
			total += a.Length
		}
		t.Logf("QueryChangedDiskAreas(%q): %d areas, %d MiB, in %v", changeID, len(res.Returnval.ChangedArea), total>>20, time.Since(start))
		return res.Returnval
	}
	all := query("*")
	if len(all.ChangedArea) != 1639 {
		t.Errorf("%d areas", len(all.ChangedArea))
	}
	writeAt(t, d.PathOnDisk, 5<<30, []byte{1})
	changed := query(d.ChangeID)
	if len(changed.ChangedArea) != 1 {
		t.Errorf("changed areas %+v", changed.ChangedArea)
	}
	start = time.Now()
	var cp map[string]any
	control(t, app, "POST", "/cbt/checkpoint", map[string]string{"vm": "big"}, &cp)
	t.Logf("checkpoint of the 16 GiB disk in %v", time.Since(start))
}

func TestPerf5000VMs(t *testing.T) {
	perfOnly(t)
	m := &ModelSpec{Datacenters: []DatacenterSpec{{
		Name:       "DC0",
		Datastores: []DatastoreSpec{{Name: "LocalDS_0"}, {Name: "LocalDS_1"}},
		Networks:   []PortgroupSpec{{Name: "VM Network"}},
		DVSwitches: []DVSSpec{{Name: "DVS0", Portgroups: []DVPGSpec{{Name: "DC0_DVPG0"}}}},
		Clusters:   []ClusterSpec{{Name: "C0", Hosts: []HostSpec{{Name: "h0"}, {Name: "h1"}, {Name: "h2"}, {Name: "h3"}}}},
		Generate: []GenerateSpec{{Count: 5000, Prefix: "bulk-vm-", Digits: 4, Template: VMSpec{
			PowerState: "poweredOn", GuestID: "rhel8_64Guest", NumCPU: 2, MemoryMB: 4096,
			Guest: &GuestSpec{HostName: "bulk"},
			Disks: []DiskSpec{{Capacity: 1 << 30, Datastore: "LocalDS_0"}},
			NICs:  []NICSpec{{Network: "DC0_DVPG0"}},
		}}},
	}}}
	start := time.Now()
	app := startApp(t, m)
	t.Logf("5000 VMs built and served in %v (model %v)", time.Since(start), app.BuildTime)
	c := login(t, app)
	start = time.Now()
	vm := vmByName(t, c, "bulk-vm-4999")
	t.Logf("property collector lookup by name over 5000 VMs: %v (%s)", time.Since(start), vm.Runtime.PowerState)
}
