package main

// Networks: standard portgroups on every host, opaque (NSX) networks, and distributed
// switches with their portgroups and member hosts.

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

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
