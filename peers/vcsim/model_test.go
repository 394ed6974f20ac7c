package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func devicesOf[T any](vm mo.VirtualMachine) []T {
	var out []T
	for _, d := range vm.Config.Hardware.Device {
		if x, ok := d.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

func TestDefaultModelReadBack(t *testing.T) {
	app := startApp(t, nil)
	c := login(t, app)
	ctx := context.Background()

	// vm-efi: EFI + secure boot + vTPM, 2 disks on 2 datastores, standard + DVPG NICs.
	vm := vmByName(t, c, "vm-efi")
	if vm.Config.Firmware != "efi" {
		t.Errorf("firmware %q", vm.Config.Firmware)
	}
	if b := vm.Config.BootOptions; b == nil || b.EfiSecureBootEnabled == nil || !*b.EfiSecureBootEnabled {
		t.Errorf("efiSecureBootEnabled not true: %+v", b)
	}
	if len(devicesOf[*types.VirtualTPM](vm)) != 1 {
		t.Errorf("no vTPM device")
	}
	hw := vm.Config.Hardware
	if hw.NumCPU != 4 || hw.NumCoresPerSocket == nil || *hw.NumCoresPerSocket != 2 || hw.MemoryMB != 4096 {
		t.Errorf("hardware %d cpu, %v cores/socket, %d MB", hw.NumCPU, hw.NumCoresPerSocket, hw.MemoryMB)
	}
	if !*vm.Config.CpuHotAddEnabled || !*vm.Config.MemoryHotAddEnabled {
		t.Errorf("hot add not enabled")
	}
	if vm.Config.GuestId != "windows2019srv_64Guest" || vm.Config.GuestFullName != "Microsoft Windows Server 2019 (64-bit)" {
		t.Errorf("guest %q / %q", vm.Config.GuestId, vm.Config.GuestFullName)
	}
	if vm.Summary.Config.GuestFullName != vm.Config.GuestFullName {
		t.Errorf("summary guest full name %q", vm.Summary.Config.GuestFullName)
	}
	if vm.Config.ChangeTrackingEnabled == nil || !*vm.Config.ChangeTrackingEnabled {
		t.Errorf("CBT not enabled")
	}
	if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("power state %s", vm.Runtime.PowerState)
	}
	// Required enums the simulator leaves empty are filled (pyvmomi cannot parse "").
	if vm.Runtime.FaultToleranceState != types.VirtualMachineFaultToleranceStateNotConfigured ||
		vm.Runtime.RecordReplayState != types.VirtualMachineRecordReplayStateInactive {
		t.Errorf("runtime enums %q %q", vm.Runtime.FaultToleranceState, vm.Runtime.RecordReplayState)
	}
	if vm.Guest.HostName != "vm-efi" || vm.Guest.IpAddress != "192.168.10.12" ||
		vm.Guest.ToolsRunningStatus != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
		t.Errorf("guest info %q %q %q", vm.Guest.HostName, vm.Guest.IpAddress, vm.Guest.ToolsRunningStatus)
	}
	if len(vm.Guest.Net) != 2 || len(vm.Guest.Net[0].IpAddress) != 1 {
		t.Errorf("guest.net %+v", vm.Guest.Net)
	}

	disks := devicesOf[*types.VirtualDisk](vm)
	if len(disks) != 2 {
		t.Fatalf("%d disks", len(disks))
	}
	wantFiles := []string{"[LocalDS_0] vm-efi/vm-efi.vmdk", "[LocalDS_1] vm-efi/vm-efi.vmdk"}
	wantThin := []bool{true, false}
	dsNames := map[types.ManagedObjectReference]string{}
	for i, d := range disks {
		b := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if b.FileName != wantFiles[i] {
			t.Errorf("disk %d file %q", i, b.FileName)
		}
		if b.ThinProvisioned == nil || *b.ThinProvisioned != wantThin[i] {
			t.Errorf("disk %d thin %v", i, b.ThinProvisioned)
		}
		if b.DiskMode != "persistent" || b.Sharing != "" && b.Sharing != "sharingNone" {
			t.Errorf("disk %d mode %q sharing %q", i, b.DiskMode, b.Sharing)
		}
		if b.ChangeId == "" {
			t.Errorf("disk %d has no changeId", i)
		}
		if b.Datastore == nil {
			t.Fatalf("disk %d has no datastore", i)
		}
		var ds mo.Datastore
		if err := c.RetrieveOne(ctx, *b.Datastore, []string{"name", "summary"}, &ds); err != nil {
			t.Fatal(err)
		}
		dsNames[*b.Datastore] = ds.Name
		if d.DeviceInfo.GetDescription().Label != []string{"Hard disk 1", "Hard disk 2"}[i] {
			t.Errorf("disk %d label %q", i, d.DeviceInfo.GetDescription().Label)
		}
	}
	if len(dsNames) != 2 {
		t.Errorf("disks on %v", dsNames)
	}

	nics := devicesOf[types.BaseVirtualEthernetCard](vm)
	if len(nics) != 2 {
		t.Fatalf("%d nics", len(nics))
	}
	if _, ok := nics[0].(*types.VirtualVmxnet3); !ok {
		t.Errorf("nic 0 is %T", nics[0])
	}
	if _, ok := nics[1].(*types.VirtualE1000e); !ok {
		t.Errorf("nic 1 is %T", nics[1])
	}
	if b, ok := nics[0].GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardNetworkBackingInfo); !ok || b.DeviceName != "VM Network" {
		t.Errorf("nic 0 backing %#v", nics[0].GetVirtualEthernetCard().Backing)
	}
	dvb, ok := nics[1].GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo)
	if !ok {
		t.Fatalf("nic 1 backing %T", nics[1].GetVirtualEthernetCard().Backing)
	}
	var pg mo.DistributedVirtualPortgroup
	if err := c.RetrieveOne(ctx, types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: dvb.Port.PortgroupKey}, []string{"name", "config"}, &pg); err != nil {
		t.Fatal(err)
	}
	if pg.Name != "DC0_DVPG0" || dvb.Port.SwitchUuid == "" {
		t.Errorf("dvpg %q switch %q", pg.Name, dvb.Port.SwitchUuid)
	}
	if vlan, ok := pg.Config.DefaultPortConfig.(*types.VMwareDVSPortSetting).Vlan.(*types.VmwareDistributedVirtualSwitchVlanIdSpec); !ok || vlan.VlanId != 100 {
		t.Errorf("dvpg vlan %+v", pg.Config.DefaultPortConfig)
	}
	if !nics[0].GetVirtualEthernetCard().Connectable.Connected {
		t.Errorf("nic 0 not connected")
	}

	// vm-bios: BIOS, lsilogic, fixed MAC.
	bios := vmByName(t, c, "vm-bios")
	if bios.Config.Firmware != "bios" {
		t.Errorf("vm-bios firmware %q", bios.Config.Firmware)
	}
	if len(devicesOf[*types.VirtualLsiLogicController](bios)) != 1 {
		t.Errorf("vm-bios has no LSI Logic controller")
	}
	if mac := devicesOf[types.BaseVirtualEthernetCard](bios)[0].GetVirtualEthernetCard().MacAddress; mac != "00:50:56:aa:00:01" {
		t.Errorf("vm-bios mac %q", mac)
	}

	// vm-sata-off: powered off, SATA disk, disconnected NIC, one snapshot.
	off := vmByName(t, c, "vm-sata-off")
	if off.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		t.Errorf("vm-sata-off power %s", off.Runtime.PowerState)
	}
	if len(devicesOf[*types.VirtualAHCIController](off)) != 1 {
		t.Errorf("vm-sata-off has no SATA controller")
	}
	if off.Snapshot == nil || len(off.Snapshot.RootSnapshotList) != 1 || off.Snapshot.RootSnapshotList[0].Name != "before-upgrade" {
		t.Errorf("vm-sata-off snapshots %+v", off.Snapshot)
	}
	if n := devicesOf[types.BaseVirtualEthernetCard](off)[0].GetVirtualEthernetCard(); n.Connectable.StartConnected {
		t.Errorf("vm-sata-off nic startConnected")
	}

	// The flat files are real files of the disks' sizes.
	var vms []VMInfo
	control(t, app, "GET", "/vms", nil, &vms)
	if len(vms) != 3 {
		t.Fatalf("%d VMs", len(vms))
	}
	for _, v := range vms {
		for _, d := range v.Disks {
			st, err := os.Stat(d.PathOnDisk)
			if err != nil || st.Size() != d.Capacity {
				t.Errorf("%s disk %d: %v size %v want %d", v.Name, d.Key, err, st, d.Capacity)
			}
		}
	}

	// Cluster C0 has two hosts, both datastores and the networks.
	finder := find.NewFinder(c.Client, true)
	dc, err := finder.Datacenter(ctx, "DC0")
	if err != nil {
		t.Fatal(err)
	}
	finder.SetDatacenter(dc)
	hosts, err := finder.HostSystemList(ctx, "C0/*")
	if err != nil || len(hosts) != 2 {
		t.Fatalf("hosts %v %v", hosts, err)
	}
	nets, err := finder.NetworkList(ctx, "*")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, n := range nets {
		names[n.GetInventoryPath()] = true
	}
	if !names["/DC0/network/VM Network"] || !names["/DC0/network/DC0_DVPG0"] {
		t.Errorf("networks %v", names)
	}
	var ds0 mo.Datastore
	dso, err := finder.Datastore(ctx, "LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RetrieveOne(ctx, dso.Reference(), []string{"summary", "host"}, &ds0); err != nil {
		t.Fatal(err)
	}
	if ds0.Summary.Type != "VMFS" || ds0.Summary.Capacity != 2<<40 || len(ds0.Host) != 2 {
		t.Errorf("LocalDS_0 %s %d hosts %d", ds0.Summary.Type, ds0.Summary.Capacity, len(ds0.Host))
	}
}

func TestLoginRejectsWrongPassword(t *testing.T) {
	app := startApp(t, nil, func(o *Options) { o.Username, o.Password = "admin@vsphere.local", "s3cret" })
	u := app.SDKURL()
	u.User = url.UserPassword("admin@vsphere.local", "wrong")
	_, err := govmomi.NewClient(context.Background(), u, true)
	if _, ok := vimFault(err).(*types.InvalidLogin); !ok {
		t.Fatalf("want InvalidLogin, got %v", err)
	}
	u.User = url.UserPassword("admin@vsphere.local", "s3cret")
	c, err := govmomi.NewClient(context.Background(), u, true)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	_ = c.Logout(context.Background())
}

func richModel() *ModelSpec {
	return &ModelSpec{Datacenters: []DatacenterSpec{{
		Name: "DC1",
		Datastores: []DatastoreSpec{
			{Name: "vmfs-01", Type: "VMFS", Capacity: 10 << 40, Free: ptr(Size(3 << 40))},
			{Name: "nfs-01", Type: "NFS", Capacity: 1 << 40, Hosts: []string{"esx-01", "esx-02"}},
			{Name: "vsanDatastore", Type: "vsan", Capacity: 20 << 40, Hosts: []string{"esx-01", "esx-02", "esx-03"}},
		},
		Networks:       []PortgroupSpec{{Name: "VM Network"}, {Name: "Prod-VLAN10", VLAN: 10}},
		OpaqueNetworks: []OpaqueSpec{{Name: "nsx-segment-1"}},
		DVSwitches: []DVSSpec{{Name: "DSwitch", Portgroups: []DVPGSpec{
			{Name: "dvpg-app", VLAN: 20}, {Name: "dvpg-db", VLAN: 30},
		}}},
		Clusters: []ClusterSpec{{
			Name:          "Prod",
			DRS:           true,
			ResourcePools: []string{"Gold"},
			Hosts:         []HostSpec{{Name: "esx-01"}, {Name: "esx-02"}, {Name: "esx-03", Maintenance: true}},
		}},
		Hosts: []HostSpec{{Name: "esx-standalone"}},
		VMs: []VMSpec{
			{
				Name: "db-01", Folder: "Prod/DB", Cluster: "Prod", ResourcePool: "Gold",
				PowerState: "poweredOn", GuestID: "rhel9_64Guest", GuestFullName: "Red Hat Enterprise Linux 9 (64-bit)",
				Firmware: "efi", NumCPU: 8, CoresPerSock: 4, MemoryMB: 16384,
				InstanceUUID: "50123456-1234-1234-1234-123456789abc", BIOSUUID: "42123456-1234-1234-1234-123456789abc",
				Annotation: "database", CBT: true, USB: "usb3",
				Guest: &GuestSpec{HostName: "db-01.example.com", IPAddresses: []string{"10.0.20.5", "fe80::1"}},
				Disks: []DiskSpec{
					{Capacity: 1 << 20, Datastore: "vmfs-01", Controller: "pvscsi"},
					{CapacityMB: 2, Datastore: "vmfs-01", Controller: "pvscsi", Bus: 1, Sharing: "sharingMultiWriter", Provisioning: "eagerZeroedThick", DiskMode: "independent_persistent"},
					{Capacity: 1 << 20, Datastore: "vmfs-01", Controller: "lsilogic-sas", Bus: 2, RDM: &RDMSpec{Compatibility: "physicalMode", Device: "/vmfs/devices/disks/naa.600a0b80001234"}},
					{Capacity: 1 << 20, Datastore: "nfs-01", Controller: "nvme"},
					{Capacity: 1 << 20, Datastore: "nfs-01", Controller: "ide"},
					{Capacity: 1 << 20, Datastore: "vsanDatastore", Controller: "sata"},
				},
				NICs: []NICSpec{
					{Network: "dvpg-db", Adapter: "vmxnet3"},
					{Network: "Prod-VLAN10", Adapter: "e1000", Connected: ptr(false)},
					{Network: "nsx-segment-1", Adapter: "vmxnet3"},
					{Network: "dvpg-app", Adapter: "sriov", PhysicalFunction: "0000:5e:00.0"},
				},
				PCI:       []PCISpec{{ID: "0000:3b:00.0", VendorID: "10de", DeviceID: "1db6", DeviceName: "NVIDIA V100"}, {VGPU: "grid_v100-8q"}},
				CDROMs:    []CDROMSpec{{ISO: "[nfs-01] iso/rhel9.iso"}},
				Snapshots: []SnapshotSpec{{Name: "s1"}, {Name: "s2", Description: "second"}},
			},
			{Name: "standalone-vm", Host: "esx-standalone", Datastore: "vmfs-01", PowerState: "suspended", Disks: []DiskSpec{{Capacity: 1 << 20}}},
			{Name: "tmpl", Template: true, Disks: []DiskSpec{{Capacity: 1 << 20, Datastore: "vmfs-01"}}},
		},
		Generate: []GenerateSpec{{Count: 10, Prefix: "bulk-", Digits: 3, Template: VMSpec{
			PowerState: "poweredOn", Disks: []DiskSpec{{Capacity: 64 << 10, Datastore: "vmfs-01"}},
			NICs: []NICSpec{{Network: "VM Network"}},
		}}},
	}}}
}

func TestRichModelReadBack(t *testing.T) {
	app := startApp(t, richModel())
	c := login(t, app)
	ctx := context.Background()

	vm := vmByName(t, c, "db-01")
	if vm.Config.InstanceUuid != "50123456-1234-1234-1234-123456789abc" || vm.Config.Uuid != "42123456-1234-1234-1234-123456789abc" {
		t.Errorf("uuids %s %s", vm.Config.InstanceUuid, vm.Config.Uuid)
	}
	if vm.Config.Annotation != "database" || vm.Config.Hardware.NumCPU != 8 || *vm.Config.Hardware.NumCoresPerSocket != 4 {
		t.Errorf("config %q %d", vm.Config.Annotation, vm.Config.Hardware.NumCPU)
	}
	if vm.Config.BootOptions.EfiSecureBootEnabled == nil || *vm.Config.BootOptions.EfiSecureBootEnabled {
		t.Errorf("secure boot should be false")
	}
	disks := devicesOf[*types.VirtualDisk](vm)
	if len(disks) != 6 {
		t.Fatalf("%d disks", len(disks))
	}
	mw := disks[1].Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	if mw.Sharing != "sharingMultiWriter" || mw.DiskMode != "independent_persistent" || *mw.ThinProvisioned || !*mw.EagerlyScrub {
		t.Errorf("multiwriter disk %+v", mw)
	}
	rdm, ok := disks[2].Backing.(*types.VirtualDiskRawDiskMappingVer1BackingInfo)
	if !ok || rdm.CompatibilityMode != "physicalMode" || rdm.DeviceName != "/vmfs/devices/disks/naa.600a0b80001234" {
		t.Errorf("rdm backing %#v", disks[2].Backing)
	}
	ctrl := func(d *types.VirtualDisk) types.BaseVirtualDevice {
		for _, x := range vm.Config.Hardware.Device {
			if x.GetVirtualDevice().Key == d.ControllerKey {
				return x
			}
		}
		return nil
	}
	if _, ok := ctrl(disks[3]).(*types.VirtualNVMEController); !ok {
		t.Errorf("disk 3 controller %T", ctrl(disks[3]))
	}
	if _, ok := ctrl(disks[4]).(*types.VirtualIDEController); !ok {
		t.Errorf("disk 4 controller %T", ctrl(disks[4]))
	}
	if _, ok := ctrl(disks[5]).(*types.VirtualAHCIController); !ok {
		t.Errorf("disk 5 controller %T", ctrl(disks[5]))
	}
	if c, ok := ctrl(disks[1]).(*types.ParaVirtualSCSIController); !ok || c.BusNumber != 1 {
		t.Errorf("disk 1 controller %#v", ctrl(disks[1]))
	}
	if _, ok := ctrl(disks[2]).(*types.VirtualLsiLogicSASController); !ok {
		t.Errorf("disk 2 controller %T", ctrl(disks[2]))
	}
	nics := devicesOf[types.BaseVirtualEthernetCard](vm)
	if len(nics) != 4 {
		t.Fatalf("%d nics", len(nics))
	}
	if nics[1].GetVirtualEthernetCard().Connectable.Connected {
		t.Errorf("nic 1 should be disconnected")
	}
	if ob, ok := nics[2].GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardOpaqueNetworkBackingInfo); !ok || ob.OpaqueNetworkType != "nsx.LogicalSwitch" {
		t.Errorf("nic 2 backing %#v", nics[2].GetVirtualEthernetCard().Backing)
	}
	sr, ok := nics[3].(*types.VirtualSriovEthernetCard)
	if !ok || sr.SriovBacking == nil || sr.SriovBacking.PhysicalFunctionBacking.Id != "0000:5e:00.0" {
		t.Errorf("sriov nic %#v", nics[3])
	}
	pci := devicesOf[*types.VirtualPCIPassthrough](vm)
	if len(pci) != 2 {
		t.Fatalf("%d pci devices", len(pci))
	}
	if b, ok := pci[0].Backing.(*types.VirtualPCIPassthroughDeviceBackingInfo); !ok || b.Id != "0000:3b:00.0" || b.VendorId != 0x10de {
		t.Errorf("pci 0 %#v", pci[0].Backing)
	}
	if b, ok := pci[1].Backing.(*types.VirtualPCIPassthroughVmiopBackingInfo); !ok || b.Vgpu != "grid_v100-8q" {
		t.Errorf("pci 1 %#v", pci[1].Backing)
	}
	if len(devicesOf[*types.VirtualUSBXHCIController](vm)) != 1 {
		t.Errorf("no xHCI controller")
	}
	cds := devicesOf[*types.VirtualCdrom](vm)
	if len(cds) != 1 {
		t.Errorf("%d cdroms", len(cds))
	} else if b, ok := cds[0].Backing.(*types.VirtualCdromIsoBackingInfo); !ok || b.FileName != "[nfs-01] iso/rhel9.iso" {
		t.Errorf("cdrom backing %#v", cds[0].Backing)
	}
	if vm.Snapshot == nil || len(vm.Snapshot.RootSnapshotList) != 1 || len(vm.Snapshot.RootSnapshotList[0].ChildSnapshotList) != 1 {
		t.Errorf("snapshot tree %+v", vm.Snapshot)
	}
	if vm.Guest.IpAddress != "10.0.20.5" || len(vm.Guest.Net) != 4 || len(vm.Guest.Net[0].IpAddress) != 2 {
		t.Errorf("guest %q %+v", vm.Guest.IpAddress, vm.Guest.Net)
	}

	// Placement: folder, resource pool, host not in maintenance mode.
	obj := object.NewVirtualMachine(c.Client, vm.Self)
	var folder mo.Folder
	if err := c.RetrieveOne(ctx, *vm.Parent, []string{"name"}, &folder); err != nil || folder.Name != "DB" {
		t.Errorf("folder %q %v", folder.Name, err)
	}
	var rp mo.ResourcePool
	if err := c.RetrieveOne(ctx, *vm.ResourcePool, []string{"name"}, &rp); err != nil || rp.Name != "Gold" {
		t.Errorf("pool %q %v", rp.Name, err)
	}
	var host mo.HostSystem
	if err := c.RetrieveOne(ctx, *vm.Runtime.Host, []string{"name", "runtime"}, &host); err != nil || host.Name == "esx-03" {
		t.Errorf("host %q %v", host.Name, err)
	}
	_ = obj

	// Maintenance mode host.
	finder := find.NewFinder(c.Client, true)
	h3, err := finder.HostSystem(ctx, "/DC1/host/Prod/esx-03")
	if err != nil {
		t.Fatal(err)
	}
	var h3mo mo.HostSystem
	if err := c.RetrieveOne(ctx, h3.Reference(), []string{"runtime"}, &h3mo); err != nil || !h3mo.Runtime.InMaintenanceMode {
		t.Errorf("esx-03 not in maintenance mode: %v", err)
	}

	// Datastore types and free space.
	for name, want := range map[string]string{"vmfs-01": "VMFS", "nfs-01": "NFS", "vsanDatastore": "vsan"} {
		ds, err := finder.Datastore(ctx, "/DC1/datastore/"+name)
		if err != nil {
			t.Fatal(err)
		}
		var dmo mo.Datastore
		if err := c.RetrieveOne(ctx, ds.Reference(), []string{"summary", "info"}, &dmo); err != nil {
			t.Fatal(err)
		}
		if dmo.Summary.Type != want {
			t.Errorf("%s type %s", name, dmo.Summary.Type)
		}
		if name == "vmfs-01" {
			if dmo.Summary.FreeSpace != 3<<40 {
				t.Errorf("vmfs-01 free %d", dmo.Summary.FreeSpace)
			}
			if _, ok := dmo.Info.(*types.VmfsDatastoreInfo); !ok {
				t.Errorf("vmfs-01 info %T", dmo.Info)
			}
		}
	}

	sa := vmByName(t, c, "standalone-vm")
	if sa.Runtime.PowerState != types.VirtualMachinePowerStateSuspended {
		t.Errorf("standalone-vm %s", sa.Runtime.PowerState)
	}
	tm := vmByName(t, c, "tmpl")
	if !tm.Config.Template {
		t.Errorf("tmpl is not a template")
	}
	b := vmByName(t, c, "bulk-007")
	if b.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("bulk-007 %s", b.Runtime.PowerState)
	}
	var all []VMInfo
	control(t, app, "GET", "/vms", nil, &all)
	if len(all) != 13 {
		t.Errorf("%d VMs", len(all))
	}
	for _, v := range all {
		for _, d := range v.Disks {
			if st, err := os.Stat(d.PathOnDisk); err != nil || st.Size() != d.Capacity {
				t.Errorf("%s disk %d file %s: %v", v.Name, d.Key, d.PathOnDisk, err)
			}
		}
	}
}

func TestModelFileParsing(t *testing.T) {
	m, err := ParseModel([]byte(`{"datacenters":[{"name":"DC0",
		"datastores":[{"name":"ds","capacity":"2TiB"}],
		"clusters":[{"name":"C","hosts":[{"name":"h1"}]}],
		"vms":[{"name":"a","snapshots":["s1",{"name":"s2","memory":true}],
		        "disks":[{"capacity":"1.5GiB","content":{"kind":"extents","seed":7,"pattern":{"stride":"10MiB","length":"1MiB"}}}]}],
		"generate":[{"count":3,"prefix":"g-","digits":2,"template":{"disks":[{"capacity_mb":1}]}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	dc := m.Datacenters[0]
	if dc.Datastores[0].Capacity != 2<<40 || dc.VMs[0].Disks[0].bytes() != 3<<29 || dc.VMs[0].Snapshots[1].Name != "s2" || !dc.VMs[0].Snapshots[1].Memory {
		t.Errorf("parsed %+v", dc)
	}
	if dc.Generate[0].name(2) != "g-02" {
		t.Errorf("generated name %q", dc.Generate[0].name(2))
	}
	if _, err := ParseModel([]byte(`{"datacenters":[{"name":"DC0","bogus":1}]}`)); err == nil {
		t.Errorf("unknown field accepted")
	}
}

func TestExampleModelFile(t *testing.T) {
	m, err := LoadModel("examples/rich-model.json")
	if err != nil {
		t.Fatal(err)
	}
	app := startApp(t, m)
	var vms []VMInfo
	control(t, app, "GET", "/vms", nil, &vms)
	if len(vms) != 23 {
		t.Errorf("%d VMs", len(vms))
	}
	c := login(t, app)
	vm := vmByName(t, c, "db-01")
	if len(devicesOf[*types.VirtualDisk](vm)) != 6 || !*vm.Config.BootOptions.EfiSecureBootEnabled {
		t.Errorf("db-01 from the example model")
	}
}

// pyvmomi reads every property with PropertyCollector.Fetch; an unset property must give
// an empty FetchResponse (the simulator alone answers RetrievePropertiesExResponse).
func TestFetchOfUnsetProperty(t *testing.T) {
	app := startApp(t, nil, func(o *Options) { o.TLS = false })
	var info VMInfo
	control(t, app, "GET", "/vms/vm-bios", nil, &info)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	post := func(body string) string {
		t.Helper()
		env := `<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` + body + `</soapenv:Body></soapenv:Envelope>`
		res, err := hc.Post(app.SDKURL().String(), "text/xml", strings.NewReader(env))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	post(`<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>user</userName><password>pass</password></Login>`)
	for prop, want := range map[string]string{"snapshot": "<FetchResponse xmlns=\"urn:vim25\"></FetchResponse>", "name": "vm-bios"} {
		out := post(`<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">` + info.Moref + `</_this><prop>` + prop + `</prop></Fetch>`)
		if !strings.Contains(out, want) {
			t.Errorf("Fetch %s: %s", prop, out)
		}
	}
}
