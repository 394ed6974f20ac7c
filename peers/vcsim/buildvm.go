package main

// Builds VMs: CreateVM_Task with a full VirtualMachineConfigSpec through the simulator's
// API, then disk content, power state, guest info, CBT change IDs and snapshots.

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const defaultHWVersion = "vmx-19"

func (b *dcBuilder) buildVMs(ctx context.Context) error {
	var jobs []*VMSpec
	for i := range b.spec.VMs {
		jobs = append(jobs, &b.spec.VMs[i])
	}
	for _, g := range b.spec.Generate {
		for i := 0; i < g.Count; i++ {
			s := g.Template
			s.Name = g.name(i)
			// Copies of the slices, so that per-VM edits never touch the template.
			s.Disks = append([]DiskSpec(nil), g.Template.Disks...)
			s.NICs = append([]NICSpec(nil), g.Template.NICs...)
			jobs = append(jobs, &s)
		}
	}
	// Serially: morefs and placement come out the same on every run, and the simulator
	// is not free of data races under concurrent CreateVM_Task (it was not faster either:
	// the time goes into file creation and the simulator's locks).
	for _, vm := range jobs {
		h, pool, err := b.place(vm)
		if err != nil {
			return fmt.Errorf("vm %s: %w", vm.Name, err)
		}
		if err := b.buildVM(ctx, vm, h, pool); err != nil {
			return fmt.Errorf("vm %s: %w", vm.Name, err)
		}
	}
	return nil
}

// vmDatastores lists the datastores a VM needs (home first).
func (b *dcBuilder) vmDatastores(vm *VMSpec) []string {
	home := vm.Datastore
	if home == "" {
		for _, d := range vm.Disks {
			if d.Datastore != "" {
				home = d.Datastore
				break
			}
		}
	}
	if home == "" {
		home = b.spec.Datastores[0].Name
	}
	out := []string{home}
	for _, d := range vm.Disks {
		if d.Datastore != "" && d.Datastore != home {
			out = append(out, d.Datastore)
		}
	}
	return out
}

// place picks the host and resource pool: the named host, or a round-robin choice among
// the cluster's hosts (not in maintenance mode) that mount all the VM's datastores.
func (b *dcBuilder) place(vm *VMSpec) (*hostInfo, types.ManagedObjectReference, error) {
	need := b.vmDatastores(vm)
	mounts := func(h *hostInfo) bool {
		for _, ds := range need {
			if !h.datastores[ds] {
				return false
			}
		}
		return true
	}
	if vm.Host != "" {
		h := b.hosts[vm.Host]
		if !mounts(h) {
			return nil, types.ManagedObjectReference{}, fmt.Errorf("host %s does not mount %v", h.name, need)
		}
		pool := h.pool
		if ci := b.clusters[h.cluster]; ci != nil && vm.ResourcePool != "" {
			p, ok := ci.pools[vm.ResourcePool]
			if !ok {
				return nil, pool, fmt.Errorf("unknown resource pool %q", vm.ResourcePool)
			}
			pool = p
		}
		return h, pool, nil
	}
	var ci *clusterInfo
	if vm.Cluster != "" {
		ci = b.clusters[vm.Cluster]
		if ci == nil {
			return nil, types.ManagedObjectReference{}, fmt.Errorf("unknown cluster %q", vm.Cluster)
		}
	} else if len(b.clList) > 0 {
		ci = b.clList[0]
	}
	if ci == nil {
		for _, h := range b.hostList {
			if !h.maintenance && mounts(h) {
				return h, h.pool, nil
			}
		}
		return nil, types.ManagedObjectReference{}, fmt.Errorf("no host mounts %v", need)
	}
	pool := ci.pool
	if vm.ResourcePool != "" {
		p, ok := ci.pools[vm.ResourcePool]
		if !ok {
			return nil, pool, fmt.Errorf("unknown resource pool %q", vm.ResourcePool)
		}
		pool = p
	}
	for i := 0; i < len(ci.hosts); i++ {
		h := ci.hosts[(ci.next+i)%len(ci.hosts)]
		if !h.maintenance && mounts(h) {
			ci.next = (ci.next + i + 1) % len(ci.hosts)
			return h, pool, nil
		}
	}
	return nil, pool, fmt.Errorf("no usable host in cluster %s mounts %v", ci.name, need)
}

func (b *dcBuilder) buildVM(ctx context.Context, vm *VMSpec, host *hostInfo, pool types.ManagedObjectReference) error {
	spec, _, err := b.configSpec(vm)
	if err != nil {
		return err
	}
	folder, err := b.folder(ctx, vm.Folder)
	if err != nil {
		return err
	}
	hostRef := host.obj
	task, err := folder.CreateVM(ctx, spec, object.NewResourcePool(b.c, pool), hostRef)
	if err != nil {
		return err
	}
	ref, err := b.app.taskResult(ctx, task)
	if err != nil {
		return fmt.Errorf("CreateVM: %w", err)
	}
	simVM := b.app.reg.Get(ref).(*simulator.VirtualMachine)

	// Disk content.
	disks := b.app.vmDisks(b.app.newContext(), simVM)
	if len(disks) != len(vm.Disks) {
		return fmt.Errorf("created %d disks, model has %d", len(disks), len(vm.Disks))
	}
	for i, d := range disks {
		seed := DefaultSeed(vm.Name, i)
		if err := WriteDiskContent(d.PathOnDisk, d.Capacity, vm.Disks[i].Content, seed); err != nil {
			return fmt.Errorf("disk %d content: %w", i, err)
		}
	}

	obj := object.NewVirtualMachine(b.c, ref)
	state := vm.PowerState
	if vm.Template {
		state = "poweredOff"
	}
	switch state {
	case "", "poweredOff", "off":
	case "poweredOn", "on", "suspended":
		t, err := obj.PowerOn(ctx)
		if err != nil {
			return err
		}
		if _, err := b.app.waitTask(ctx, t); err != nil {
			return fmt.Errorf("power on: %w", err)
		}
		if state == "suspended" {
			t, err := obj.Suspend(ctx)
			if err != nil {
				return err
			}
			if _, err := b.app.waitTask(ctx, t); err != nil {
				return fmt.Errorf("suspend: %w", err)
			}
		}
	default:
		return fmt.Errorf("unknown power_state %q", vm.PowerState)
	}

	b.fixupVM(simVM, vm)

	if vm.CBT {
		if _, err := b.app.cbt.Checkpoint(b.app.newContext(), ref); err != nil {
			return fmt.Errorf("cbt: %w", err)
		}
	}
	for _, s := range vm.Snapshots {
		t, err := obj.CreateSnapshot(ctx, s.Name, s.Description, s.Memory, s.Quiesce)
		if err != nil {
			return err
		}
		if _, err := b.app.waitTask(ctx, t); err != nil {
			return fmt.Errorf("snapshot %s: %w", s.Name, err)
		}
	}
	if vm.Template {
		if err := obj.MarkAsTemplate(ctx); err != nil {
			return fmt.Errorf("mark as template: %w", err)
		}
	}
	return nil
}
