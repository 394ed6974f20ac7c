package main

// Builds the inventory (datacenters, hosts, clusters, datastores, networks) through the
// simulator's own API, with an in-process vim25 client, so that every later SOAP answer
// (PropertyCollector, ContainerView, ...) sees a consistent inventory.

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

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
