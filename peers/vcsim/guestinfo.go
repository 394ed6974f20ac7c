package main

// Fix-ups after CreateVM_Task: guest full name, VMware Tools guest info (hostname, IPs,
// guest.net), enum defaults, and opaque network NIC backings.

import (
	"reflect"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// fixupVM sets what CreateVM_Task cannot: guest full name, VMware Tools guest info and
// opaque network backings.
func (b *dcBuilder) fixupVM(simVM *simulator.VirtualMachine, vm *VMSpec) {
	sctx := b.app.newContext()
	sctx.WithLock(simVM, func() {
		var changes []types.PropertyChange
		on := simVM.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
		// Enum properties the simulator leaves empty, which pyvmomi cannot parse.
		fillEnums(reflect.ValueOf(simVM), 0)
		changes = append(changes,
			types.PropertyChange{Name: "runtime", Val: simVM.Runtime},
			types.PropertyChange{Name: "summary.runtime", Val: simVM.Summary.Runtime})
		full := vm.GuestFullName
		if full == "" {
			full = simVM.Config.GuestId
		}
		simVM.Config.GuestFullName = full
		simVM.Summary.Config.GuestFullName = full
		changes = append(changes,
			types.PropertyChange{Name: "config.guestFullName", Val: full},
			types.PropertyChange{Name: "summary.config.guestFullName", Val: full})

		g := simVM.Guest
		gs := vm.Guest
		if gs == nil {
			gs = &GuestSpec{}
		}
		tools := gs.Tools
		if tools == "" {
			tools = "notRunning"
			if on {
				tools = "running"
			}
		}
		g.GuestId = simVM.Config.GuestId
		g.GuestFullName = full
		g.ToolsVersion = orDefault(gs.ToolsVersion, "12352")
		switch tools {
		case "running":
			g.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
			g.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
			g.ToolsVersionStatus2 = string(types.VirtualMachineToolsVersionStatusGuestToolsCurrent)
			g.GuestState = "running"
		case "notInstalled":
			g.ToolsStatus = types.VirtualMachineToolsStatusToolsNotInstalled
			g.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)
			g.ToolsVersionStatus2 = string(types.VirtualMachineToolsVersionStatusGuestToolsNotInstalled)
			g.ToolsVersion = "0"
			g.GuestState = "notRunning"
		default:
			g.ToolsStatus = types.VirtualMachineToolsStatusToolsNotRunning
			g.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)
			g.ToolsVersionStatus2 = string(types.VirtualMachineToolsVersionStatusGuestToolsCurrent)
			g.GuestState = "notRunning"
		}
		g.HostName = gs.HostName
		if len(gs.IPAddresses) > 0 {
			g.IpAddress = gs.IPAddresses[0]
		}
		// guest.net: one entry per NIC, in device order.
		var nets []types.GuestNicInfo
		nicIdx := 0
		for _, d := range simVM.Config.Hardware.Device {
			card, ok := d.(types.BaseVirtualEthernetCard)
			if !ok {
				continue
			}
			c := card.GetVirtualEthernetCard()
			var ns NICSpec
			if nicIdx < len(vm.NICs) {
				ns = vm.NICs[nicIdx]
			}
			ips := ns.IPAddresses
			if len(ips) == 0 && nicIdx == 0 {
				ips = gs.IPAddresses
			}
			connected := c.Connectable != nil && c.Connectable.Connected
			info := types.GuestNicInfo{
				Network:        ns.Network,
				MacAddress:     c.MacAddress,
				Connected:      connected,
				DeviceConfigId: c.Key,
			}
			if tools == "running" {
				info.IpAddress = ips
				if len(ips) > 0 {
					cfg := &types.NetIpConfigInfo{}
					for _, ip := range ips {
						plen := int32(24)
						if strings.Contains(ip, ":") {
							plen = 64
						}
						cfg.IpAddress = append(cfg.IpAddress, types.NetIpConfigInfoIpAddress{IpAddress: ip, PrefixLength: plen, State: "preferred"})
					}
					info.IpConfig = cfg
				}
			}
			nets = append(nets, info)
			nicIdx++
		}
		g.Net = nets
		if tools != "running" {
			g.IpAddress = ""
		}
		simVM.Summary.Guest = &types.VirtualMachineGuestSummary{
			GuestId:             g.GuestId,
			GuestFullName:       g.GuestFullName,
			ToolsStatus:         g.ToolsStatus,
			ToolsVersionStatus2: g.ToolsVersionStatus2,
			ToolsRunningStatus:  g.ToolsRunningStatus,
			HostName:            g.HostName,
			IpAddress:           g.IpAddress,
		}
		changes = append(changes,
			types.PropertyChange{Name: "guest", Val: g},
			types.PropertyChange{Name: "summary.guest", Val: simVM.Summary.Guest})

		if b.fixOpaqueNICs(simVM, vm) {
			changes = append(changes,
				types.PropertyChange{Name: "config.hardware.device", Val: simVM.Config.Hardware.Device},
				types.PropertyChange{Name: "network", Val: simVM.Network})
		}
		sctx.Update(simVM, changes)
	})
}

// fixOpaqueNICs rebacks NICs of opaque networks (see configSpec). Caller holds the VM lock.
func (b *dcBuilder) fixOpaqueNICs(simVM *simulator.VirtualMachine, vm *VMSpec) bool {
	changed := false
	nicIdx := 0
	var nets []types.ManagedObjectReference
	for _, d := range simVM.Config.Hardware.Device {
		card, ok := d.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		if nicIdx < len(vm.NICs) {
			ni := b.nets[vm.NICs[nicIdx].Network]
			if ni != nil {
				if ni.kind == "opaque" {
					c := card.GetVirtualEthernetCard()
					c.Backing = &types.VirtualEthernetCardOpaqueNetworkBackingInfo{
						OpaqueNetworkId:   ni.opaque.OpaqueNetworkId,
						OpaqueNetworkType: ni.opaque.OpaqueNetworkType,
					}
					if c.DeviceInfo != nil {
						c.DeviceInfo.GetDescription().Summary = "nsx.LogicalSwitch: " + ni.opaque.OpaqueNetworkId
					}
					changed = true
				}
				nets = append(nets, ni.ref)
			}
		}
		nicIdx++
	}
	if changed {
		seen := map[types.ManagedObjectReference]bool{}
		var uniq []types.ManagedObjectReference
		for _, r := range nets {
			if !seen[r] {
				seen[r] = true
				uniq = append(uniq, r)
			}
		}
		simVM.Network = uniq
	}
	return changed
}
