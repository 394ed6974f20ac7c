package main

// Builds the inventory (datacenters, hosts, clusters, datastores, networks) through the
// simulator's own API, with an in-process vim25 client, so that every later SOAP answer
// (PropertyCollector, ContainerView, ...) sees a consistent inventory.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type hostInfo struct {
	name        string
	ref         types.ManagedObjectReference
	obj         *object.HostSystem
	cluster     string // "" for standalone
	pool        types.ManagedObjectReference
	maintenance bool
	datastores  map[string]bool
}

type clusterInfo struct {
	name  string
	obj   *object.ClusterComputeResource
	pool  types.ManagedObjectReference
	pools map[string]types.ManagedObjectReference
	hosts []*hostInfo
	next  int
}

type netInfo struct {
	kind    string // standard | dvpg | opaque
	ref     types.ManagedObjectReference
	backing types.BaseVirtualDeviceBackingInfo
	opaque  *types.OpaqueNetworkSummary
}

type dcBuilder struct {
	app      *App
	c        *vim25.Client
	spec     *DatacenterSpec
	dc       *object.Datacenter
	folders  *object.DatacenterFolders
	hosts    map[string]*hostInfo
	hostList []*hostInfo
	clusters map[string]*clusterInfo
	clList   []*clusterInfo
	ds       map[string]types.ManagedObjectReference
	nets     map[string]*netInfo
	vmFolder map[string]*object.Folder
}

// buildInventory builds every datacenter of the model, then its VMs.
func (a *App) buildInventory(ctx context.Context, m *ModelSpec) error {
	for i := range m.Datacenters {
		b := &dcBuilder{
			app:      a,
			c:        a.client,
			spec:     &m.Datacenters[i],
			hosts:    map[string]*hostInfo{},
			clusters: map[string]*clusterInfo{},
			ds:       map[string]types.ManagedObjectReference{},
			nets:     map[string]*netInfo{},
			vmFolder: map[string]*object.Folder{},
		}
		if err := b.build(ctx); err != nil {
			return fmt.Errorf("datacenter %s: %w", b.spec.Name, err)
		}
	}
	return nil
}

func (b *dcBuilder) build(ctx context.Context) error {
	root := object.NewRootFolder(b.c)
	dc, err := root.CreateDatacenter(ctx, b.spec.Name)
	if err != nil {
		return err
	}
	b.dc = dc
	if b.folders, err = dc.Folders(ctx); err != nil {
		return err
	}
	b.vmFolder[""] = b.folders.VmFolder

	for _, cs := range b.spec.Clusters {
		if err := b.addCluster(ctx, cs); err != nil {
			return err
		}
	}
	for _, hs := range b.spec.Hosts {
		task, err := b.folders.HostFolder.AddStandaloneHost(ctx, types.HostConnectSpec{HostName: hs.Name}, true, nil, nil)
		if err != nil {
			return err
		}
		ref, err := b.app.taskResult(ctx, task)
		if err != nil {
			return fmt.Errorf("add host %s: %w", hs.Name, err)
		}
		h := object.NewHostSystem(b.c, ref)
		pool, err := h.ResourcePool(ctx)
		if err != nil {
			return err
		}
		b.addHostInfo(&hostInfo{name: hs.Name, ref: ref, obj: h, pool: pool.Reference(), maintenance: hs.Maintenance})
	}
	for _, ds := range b.spec.Datastores {
		if err := b.addDatastore(ctx, ds); err != nil {
			return fmt.Errorf("datastore %s: %w", ds.Name, err)
		}
	}
	if err := b.addNetworks(ctx); err != nil {
		return err
	}
	for _, h := range b.hostList {
		if h.maintenance {
			task, err := h.obj.EnterMaintenanceMode(ctx, 0, false, nil)
			if err != nil {
				return err
			}
			if _, err := b.app.waitTask(ctx, task); err != nil {
				return fmt.Errorf("maintenance mode %s: %w", h.name, err)
			}
		}
	}
	for _, f := range b.spec.Folders {
		if _, err := b.folder(ctx, f); err != nil {
			return err
		}
	}
	if err := b.buildVMs(ctx); err != nil {
		return err
	}
	b.app.sanitizeAll()
	return b.finishDatastores()
}

// waitTask waits for a simulator task by polling its object in the registry (cheaper
// than a PropertyCollector filter per task, which matters when building 5,000 VMs).
func (a *App) waitTask(ctx context.Context, t *object.Task) (types.AnyType, error) {
	obj, ok := a.reg.Get(t.Reference()).(*simulator.Task)
	if !ok {
		info, err := t.WaitForResult(ctx, nil)
		if err != nil {
			return nil, describeTaskError(err)
		}
		return info.Result, nil
	}
	sctx := a.newContext()
	delay := 50 * time.Microsecond
	for {
		var info types.TaskInfo
		sctx.WithLock(obj, func() { info = obj.Info })
		switch info.State {
		case types.TaskInfoStateSuccess:
			return info.Result, nil
		case types.TaskInfoStateError:
			return nil, describeTaskError(task.Error{LocalizedMethodFault: info.Error})
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Millisecond)
	}
}

func (a *App) taskResult(ctx context.Context, t *object.Task) (types.ManagedObjectReference, error) {
	res, err := a.waitTask(ctx, t)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	ref, ok := res.(types.ManagedObjectReference)
	if !ok {
		return types.ManagedObjectReference{}, fmt.Errorf("unexpected task result %T", res)
	}
	return ref, nil
}

func (b *dcBuilder) addHostInfo(h *hostInfo) {
	h.datastores = map[string]bool{}
	b.hosts[h.name] = h
	b.hostList = append(b.hostList, h)
}

func (b *dcBuilder) addCluster(ctx context.Context, cs ClusterSpec) error {
	spec := types.ClusterConfigSpecEx{
		DrsConfig: &types.ClusterDrsConfigInfo{Enabled: types.NewBool(cs.DRS)},
		DasConfig: &types.ClusterDasConfigInfo{Enabled: types.NewBool(cs.HA)},
	}
	cl, err := b.folders.HostFolder.CreateCluster(ctx, cs.Name, spec)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", cs.Name, err)
	}
	pool, err := cl.ResourcePool(ctx)
	if err != nil {
		return err
	}
	ci := &clusterInfo{name: cs.Name, obj: cl, pool: pool.Reference(), pools: map[string]types.ManagedObjectReference{}}
	for _, name := range cs.ResourcePools {
		rp, err := pool.Create(ctx, name, types.DefaultResourceConfigSpec())
		if err != nil {
			return fmt.Errorf("resource pool %s: %w", name, err)
		}
		ci.pools[name] = rp.Reference()
	}
	for _, hs := range cs.Hosts {
		task, err := cl.AddHost(ctx, types.HostConnectSpec{HostName: hs.Name}, true, nil, nil)
		if err != nil {
			return err
		}
		ref, err := b.app.taskResult(ctx, task)
		if err != nil {
			return fmt.Errorf("add host %s: %w", hs.Name, err)
		}
		h := &hostInfo{name: hs.Name, ref: ref, obj: object.NewHostSystem(b.c, ref), cluster: cs.Name, pool: ci.pool, maintenance: hs.Maintenance}
		b.addHostInfo(h)
		ci.hosts = append(ci.hosts, h)
	}
	b.clusters[cs.Name] = ci
	b.clList = append(b.clList, ci)
	return nil
}

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

func (b *dcBuilder) networkFolder() *simulator.Folder {
	return b.app.reg.Get(b.folders.NetworkFolder.Reference()).(*simulator.Folder)
}

func (b *dcBuilder) findNetwork(name string) types.ManagedObjectReference {
	f := b.networkFolder()
	if e := b.app.reg.FindByName(name, f.ChildEntity); e != nil {
		return e.Reference()
	}
	return types.ManagedObjectReference{}
}

func (b *dcBuilder) addNetworks(ctx context.Context) error {
	// "VM Network" exists in every simulator datacenter; other standard portgroups are
	// added to vSwitch0 of every host.
	b.nets["VM Network"] = &netInfo{kind: "standard", ref: b.findNetwork("VM Network")}
	for _, pg := range b.spec.Networks {
		if pg.Name == "VM Network" {
			continue
		}
		vs := pg.VSwitch
		if vs == "" {
			vs = "vSwitch0"
		}
		for i, h := range b.hostList {
			ns, err := h.obj.ConfigManager().NetworkSystem(ctx)
			if err != nil {
				return err
			}
			err = ns.AddPortGroup(ctx, types.HostPortGroupSpec{Name: pg.Name, VlanId: pg.VLAN, VswitchName: vs, Policy: types.HostNetworkPolicy{}})
			if err != nil && i == 0 {
				return fmt.Errorf("portgroup %s: %w", pg.Name, err)
			}
		}
		b.nets[pg.Name] = &netInfo{kind: "standard", ref: b.findNetwork(pg.Name)}
	}
	// Every host sees every standard network.
	for name, n := range b.nets {
		if n.kind != "standard" || n.ref.Value == "" {
			continue
		}
		b.nets[name].backing = &types.VirtualEthernetCardNetworkBackingInfo{
			VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: name},
			Network:                        types.NewReference(n.ref),
		}
		b.linkNetworkHosts(n.ref)
	}

	for _, ds := range b.spec.DVSwitches {
		if err := b.addDVS(ctx, ds); err != nil {
			return fmt.Errorf("dvs %s: %w", ds.Name, err)
		}
	}
	for _, on := range b.spec.OpaqueNetworks {
		summary := types.OpaqueNetworkSummary{
			NetworkSummary:    types.NetworkSummary{Name: on.Name},
			OpaqueNetworkId:   on.ID,
			OpaqueNetworkType: on.Type,
		}
		if summary.OpaqueNetworkId == "" {
			summary.OpaqueNetworkId = uuid.NewSHA1(uuid.NameSpaceURL, []byte("opaque/"+on.Name)).String()
		}
		if summary.OpaqueNetworkType == "" {
			summary.OpaqueNetworkType = "nsx.LogicalSwitch"
		}
		if err := b.networkFolder().AddOpaqueNetwork(b.app.newContext(), summary); err != nil {
			return fmt.Errorf("opaque network %s: %w", on.Name, err)
		}
		ref := b.findNetwork(on.Name)
		b.linkNetworkHosts(ref)
		s := summary
		b.nets[on.Name] = &netInfo{kind: "opaque", ref: ref, opaque: &s, backing: &types.VirtualEthernetCardOpaqueNetworkBackingInfo{
			OpaqueNetworkId:   summary.OpaqueNetworkId,
			OpaqueNetworkType: summary.OpaqueNetworkType,
		}}
	}
	return nil
}

// linkNetworkHosts makes network.host and host.network agree for a standard or opaque network.
func (b *dcBuilder) linkNetworkHosts(ref types.ManagedObjectReference) {
	sctx := b.app.newContext()
	netObj := b.app.reg.Get(ref)
	var hostRefs []types.ManagedObjectReference
	for _, h := range b.hostList {
		hostRefs = append(hostRefs, h.ref)
		hs := b.app.reg.Get(h.ref).(*simulator.HostSystem)
		sctx.WithLock(hs, func() {
			for _, r := range hs.Network {
				if r == ref {
					return
				}
			}
			sctx.Update(hs, []types.PropertyChange{{Name: "network", Val: append(append([]types.ManagedObjectReference(nil), hs.Network...), ref)}})
		})
	}
	sctx.WithLock(netObj, func() {
		sctx.Update(netObj, []types.PropertyChange{{Name: "host", Val: hostRefs}})
	})
}

func (b *dcBuilder) addDVS(ctx context.Context, spec DVSSpec) error {
	var cs types.DVSCreateSpec
	cfg := &types.VMwareDVSConfigSpec{}
	cfg.Name = spec.Name
	cs.ConfigSpec = cfg
	task, err := b.folders.NetworkFolder.CreateDVS(ctx, cs)
	if err != nil {
		return err
	}
	ref, err := b.app.taskResult(ctx, task)
	if err != nil {
		return err
	}
	dvs := object.NewDistributedVirtualSwitch(b.c, ref)
	hosts := spec.Hosts
	if len(hosts) == 0 {
		for _, h := range b.hostList {
			hosts = append(hosts, h.name)
		}
	}
	rc := &types.DVSConfigSpec{}
	for _, name := range hosts {
		h, ok := b.hosts[name]
		if !ok {
			return fmt.Errorf("unknown host %q", name)
		}
		rc.Host = append(rc.Host, types.DistributedVirtualSwitchHostMemberConfigSpec{
			Operation: string(types.ConfigSpecOperationAdd),
			Host:      h.ref,
		})
	}
	task, err = dvs.Reconfigure(ctx, rc)
	if err != nil {
		return err
	}
	if _, err := b.app.waitTask(ctx, task); err != nil {
		return err
	}
	for _, pg := range spec.Portgroups {
		n := pg.NumPorts
		if n == 0 {
			n = 8
		}
		pgSpec := types.DVPortgroupConfigSpec{
			Name:     pg.Name,
			Type:     string(types.DistributedVirtualPortgroupPortgroupTypeEarlyBinding),
			NumPorts: n,
			DefaultPortConfig: &types.VMwareDVSPortSetting{
				Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: pg.VLAN},
			},
		}
		task, err := dvs.AddPortgroup(ctx, []types.DVPortgroupConfigSpec{pgSpec})
		if err != nil {
			return err
		}
		if _, err := b.app.waitTask(ctx, task); err != nil {
			return fmt.Errorf("portgroup %s: %w", pg.Name, err)
		}
		pref := b.findNetwork(pg.Name)
		backing, err := object.NewDistributedVirtualPortgroup(b.c, pref).EthernetCardBackingInfo(ctx)
		if err != nil {
			return err
		}
		b.nets[pg.Name] = &netInfo{kind: "dvpg", ref: pref, backing: backing}
	}
	return nil
}

// folder returns (creating as needed) the VM folder at a slash-separated path below the
// datacenter's vm folder.
func (b *dcBuilder) folder(ctx context.Context, p string) (*object.Folder, error) {
	p = strings.Trim(path.Clean("/"+p), "/")
	if f, ok := b.vmFolder[p]; ok {
		return f, nil
	}
	parent, err := b.folder(ctx, path.Dir(p))
	if err != nil {
		return nil, err
	}
	f, err := parent.CreateFolder(ctx, path.Base(p))
	if err != nil {
		return nil, fmt.Errorf("folder %s: %w", p, err)
	}
	b.vmFolder[p] = f
	return f, nil
}

// entityName reads an entity's name from the registry.
func entityName(obj mo.Reference) string {
	if e, ok := obj.(mo.Entity); ok {
		return e.Entity().Name
	}
	return ""
}

// describeTaskError adds the fault's details (e.g. the file of a FileFault) to err.
func describeTaskError(err error) error {
	var te task.Error
	if errors.As(err, &te) && te.LocalizedMethodFault != nil && te.LocalizedMethodFault.Fault != nil {
		return fmt.Errorf("%w: %+v", err, te.LocalizedMethodFault.Fault)
	}
	return err
}
