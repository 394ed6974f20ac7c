package main

// The VirtualMachineConfigSpec of a model VM: hardware, firmware, controllers, disks
// (flat and RDM), NICs (standard, DVPG, opaque, SR-IOV), PCI passthrough, USB, CD-ROMs,
// vTPM, with vSphere's device labels.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// ctrlKey identifies a controller by kind and bus number.
type ctrlKey struct {
	kind string
	bus  int32
}

func controllerKind(name string) (string, error) {
	switch strings.ToLower(name) {
	case "", "pvscsi":
		return "pvscsi", nil
	case "lsilogic", "lsilogic-sas", "buslogic":
		return strings.ToLower(name), nil
	case "sata", "ahci":
		return "sata", nil
	case "nvme":
		return "nvme", nil
	case "ide":
		return "ide", nil
	}
	return "", fmt.Errorf("unknown controller %q", name)
}

type deviceBuilder struct {
	list        object.VirtualDeviceList
	controllers map[ctrlKey]types.BaseVirtualController
}

func (d *deviceBuilder) controller(kind string, bus int32) (types.BaseVirtualController, error) {
	k := ctrlKey{kind, bus}
	if c, ok := d.controllers[k]; ok {
		return c, nil
	}
	var dev types.BaseVirtualDevice
	var err error
	switch kind {
	case "sata":
		dev, err = d.list.CreateSATAController()
	case "nvme":
		dev, err = d.list.CreateNVMEController()
	case "ide":
		dev, err = d.list.CreateIDEController()
	default:
		dev, err = d.list.CreateSCSIController(kind)
	}
	if err != nil {
		return nil, err
	}
	c := dev.(types.BaseVirtualController)
	c.GetVirtualController().BusNumber = bus
	d.list = append(d.list, dev)
	d.controllers[k] = c
	return c, nil
}

func (b *dcBuilder) configSpec(vm *VMSpec) (types.VirtualMachineConfigSpec, []int32, error) {
	dss := b.vmDatastores(vm)
	guestID := vm.GuestID
	if guestID == "" {
		guestID = "otherGuest64"
	}
	spec := types.VirtualMachineConfigSpec{
		Name:                  vm.Name,
		GuestId:               guestID,
		Files:                 &types.VirtualMachineFileInfo{VmPathName: "[" + dss[0] + "]"},
		NumCPUs:               max(vm.NumCPU, 1),
		NumCoresPerSocket:     types.NewInt32(max(vm.CoresPerSock, 1)),
		MemoryMB:              vm.MemoryMB,
		Annotation:            vm.Annotation,
		CpuHotAddEnabled:      types.NewBool(vm.CPUHotAdd),
		MemoryHotAddEnabled:   types.NewBool(vm.MemoryHotAdd),
		ChangeTrackingEnabled: types.NewBool(vm.CBT),
		Uuid:                  vm.BIOSUUID,
		InstanceUuid:          vm.InstanceUUID,
		Version:               vm.HWVersion,
		Firmware:              vm.Firmware,
	}
	if spec.MemoryMB == 0 {
		spec.MemoryMB = 1024
	}
	if spec.Version == "" {
		spec.Version = defaultHWVersion
	}
	if spec.Firmware == "" {
		spec.Firmware = string(types.GuestOsDescriptorFirmwareTypeBios)
	}
	if spec.Firmware == string(types.GuestOsDescriptorFirmwareTypeEfi) {
		spec.BootOptions = &types.VirtualMachineBootOptions{EfiSecureBootEnabled: types.NewBool(vm.SecureBoot)}
	} else if vm.SecureBoot {
		return spec, nil, fmt.Errorf("secure_boot needs firmware efi")
	}
	for k, v := range vm.ExtraConfig {
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: v})
	}

	db := &deviceBuilder{controllers: map[ctrlKey]types.BaseVirtualController{}}
	var diskKeys []int32
	for i, ds := range vm.Disks {
		kind, err := controllerKind(ds.Controller)
		if err != nil {
			return spec, nil, fmt.Errorf("disk %d: %w", i, err)
		}
		c, err := db.controller(kind, ds.Bus)
		if err != nil {
			return spec, nil, fmt.Errorf("disk %d: %w", i, err)
		}
		dsName := ds.Datastore
		if dsName == "" {
			dsName = dss[0]
		}
		dsRef := b.ds[dsName]
		disk := db.list.CreateDisk(c, dsRef, "["+dsName+"]")
		if disk.UnitNumber == nil {
			return spec, nil, fmt.Errorf("disk %d: controller %s bus %d is full", i, kind, ds.Bus)
		}
		capacity := ds.bytes()
		disk.CapacityInBytes = capacity
		disk.CapacityInKB = capacity / 1024
		mode := ds.DiskMode
		if mode == "" {
			mode = string(types.VirtualDiskModePersistent)
		}
		if ds.RDM != nil {
			compat := ds.RDM.Compatibility
			if compat == "" {
				compat = string(types.VirtualDiskCompatibilityModePhysicalMode)
			}
			dev := ds.RDM.Device
			if dev == "" {
				dev = fmt.Sprintf("/vmfs/devices/disks/naa.6000c29%025x", DefaultSeed(vm.Name, i)&0xffffffffffff)
			}
			lun := ds.RDM.LunUUID
			if lun == "" {
				lun = "0200000000" + strings.TrimPrefix(dev, "/vmfs/devices/disks/naa.") + "566972747561"
			}
			rdm := &types.VirtualDiskRawDiskMappingVer1BackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[" + dsName + "]", Datastore: &dsRef},
				CompatibilityMode:            compat,
				DeviceName:                   dev,
				LunUuid:                      lun,
				Sharing:                      ds.Sharing,
			}
			if compat == string(types.VirtualDiskCompatibilityModeVirtualMode) {
				rdm.DiskMode = mode
			} else {
				rdm.DiskMode = string(types.VirtualDiskModeIndependent_persistent)
			}
			disk.Backing = rdm
		} else {
			back := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			// CreateDisk appends ".vmdk" to the name; an empty path lets the simulator
			// choose "<vm>/<vm>.vmdk", "<vm>/<vm>_1.vmdk", ... like vSphere.
			back.FileName = "[" + dsName + "]"
			back.DiskMode = mode
			switch strings.ToLower(ds.Provisioning) {
			case "", "thin":
				back.ThinProvisioned = types.NewBool(true)
			case "thick", "lazyzeroedthick":
				back.ThinProvisioned = types.NewBool(false)
				back.EagerlyScrub = types.NewBool(false)
			case "eagerzeroedthick", "eager":
				back.ThinProvisioned = types.NewBool(false)
				back.EagerlyScrub = types.NewBool(true)
			default:
				return spec, nil, fmt.Errorf("disk %d: unknown provisioning %q", i, ds.Provisioning)
			}
			if ds.Sharing != "" {
				back.Sharing = ds.Sharing
			}
		}
		db.list = append(db.list, disk)
		diskKeys = append(diskKeys, disk.Key)
	}

	for i, cd := range vm.CDROMs {
		kind := "ide"
		if strings.ToLower(cd.Controller) == "sata" {
			kind = "sata"
		}
		c, err := db.controller(kind, 0)
		if err != nil {
			return spec, nil, fmt.Errorf("cdrom %d: %w", i, err)
		}
		var dev *types.VirtualCdrom
		if ide, ok := c.(*types.VirtualIDEController); ok {
			dev, err = db.list.CreateCdrom(ide)
			if err != nil {
				return spec, nil, err
			}
		} else {
			dev = &types.VirtualCdrom{}
			dev.Key = db.list.NewKey()
			db.list.AssignController(dev, c)
			dev.Backing = &types.VirtualCdromRemotePassthroughBackingInfo{}
		}
		if cd.ISO != "" {
			dev.Backing = &types.VirtualCdromIsoBackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: cd.ISO}}
		}
		dev.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: cd.Connected, Connected: cd.Connected, AllowGuestControl: true}
		db.list = append(db.list, dev)
	}

	for i, n := range vm.NICs {
		ni := b.nets[n.Network]
		if ni == nil {
			return spec, nil, fmt.Errorf("nic %d: unknown network %q", i, n.Network)
		}
		backing := ni.backing
		if ni.kind == "opaque" {
			// The simulator only accepts NSX opaque backings bound to an NSX DVPG; the NIC is
			// created on "VM Network" and rebacked after creation (see fixOpaqueNICs).
			backing = b.nets["VM Network"].backing
		}
		adapter := strings.ToLower(n.Adapter)
		if adapter == "" {
			adapter = "vmxnet3"
		}
		dev, err := db.list.CreateEthernetCard(adapter, backing)
		if err != nil {
			return spec, nil, fmt.Errorf("nic %d: %w", i, err)
		}
		card := dev.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		card.Key = db.list.NewKey()
		if n.MAC != "" {
			card.AddressType = string(types.VirtualEthernetCardMacTypeManual)
			card.MacAddress = n.MAC
		} else {
			card.AddressType = string(types.VirtualEthernetCardMacTypeAssigned)
		}
		connected := n.Connected == nil || *n.Connected
		card.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: connected, Connected: connected, AllowGuestControl: true}
		if sr, ok := dev.(*types.VirtualSriovEthernetCard); ok {
			pf := n.PhysicalFunction
			if pf == "" {
				pf = "0000:3b:00.0"
			}
			sr.AllowGuestOSMtuChange = types.NewBool(false)
			sr.SriovBacking = &types.VirtualSriovEthernetCardSriovBackingInfo{
				PhysicalFunctionBacking: &types.VirtualPCIPassthroughDeviceBackingInfo{
					VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "Intel Corporation Ethernet Controller X710"},
					Id:                             pf,
					DeviceId:                       "1572",
					SystemId:                       "5f0f1c1e-0000-0000-0000-000000000000",
					VendorId:                       vendorID16(0x8086),
				},
			}
		}
		db.list = append(db.list, dev)
	}

	for i, p := range vm.PCI {
		dev := &types.VirtualPCIPassthrough{}
		dev.Key = db.list.NewKey()
		if p.VGPU != "" {
			dev.Backing = &types.VirtualPCIPassthroughVmiopBackingInfo{Vgpu: p.VGPU}
		} else {
			vendor, err := strconv.ParseUint(strings.TrimPrefix(orDefault(p.VendorID, "10de"), "0x"), 16, 16)
			if err != nil {
				return spec, nil, fmt.Errorf("pci %d: bad vendor_id %q", i, p.VendorID)
			}
			dev.Backing = &types.VirtualPCIPassthroughDeviceBackingInfo{
				VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: orDefault(p.DeviceName, "NVIDIA Corporation GV100GL [Tesla V100 PCIe 32GB]")},
				Id:                             orDefault(p.ID, fmt.Sprintf("0000:%02x:00.0", 0x3b+i)),
				DeviceId:                       strings.TrimPrefix(orDefault(p.DeviceID, "1db6"), "0x"),
				SystemId:                       orDefault(p.SystemID, "5f0f1c1e-0000-0000-0000-000000000000"),
				VendorId:                       vendorID16(uint16(vendor)),
			}
		}
		db.list = append(db.list, dev)
	}

	switch strings.ToLower(vm.USB) {
	case "":
	case "usb2", "ehci", "true":
		dev := &types.VirtualUSBController{AutoConnectDevices: types.NewBool(true), EhciEnabled: types.NewBool(true)}
		dev.Key = db.list.NewKey()
		db.list = append(db.list, dev)
	case "usb3", "xhci":
		dev := &types.VirtualUSBXHCIController{AutoConnectDevices: types.NewBool(true)}
		dev.Key = db.list.NewKey()
		db.list = append(db.list, dev)
	default:
		return spec, nil, fmt.Errorf("unknown usb %q", vm.USB)
	}

	if vm.VTPM {
		dev := &types.VirtualTPM{}
		dev.Key = db.list.NewKey()
		db.list = append(db.list, dev)
	}

	setLabels(db.list)
	changes, err := db.list.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return spec, nil, err
	}
	for _, ch := range changes {
		cs := ch.GetVirtualDeviceConfigSpec()
		if _, ok := cs.Device.(*types.VirtualDisk); ok {
			cs.FileOperation = types.VirtualDeviceConfigSpecFileOperationCreate
		}
	}
	spec.DeviceChange = changes
	return spec, diskKeys, nil
}

// vendorID16 stores a PCI vendor ID the way vSphere does (a signed 16-bit short).
func vendorID16(v uint16) int16 { return int16(v) }

// setLabels gives devices vSphere's labels ("Hard disk 1", "Network adapter 1", ...).
func setLabels(list object.VirtualDeviceList) {
	count := map[string]int{}
	for _, dev := range list {
		var kind string
		switch dev.(type) {
		case *types.VirtualDisk:
			kind = "Hard disk"
		case types.BaseVirtualEthernetCard:
			kind = "Network adapter"
		case types.BaseVirtualSCSIController:
			kind = "SCSI controller"
		case *types.VirtualAHCIController:
			kind = "SATA controller"
		case *types.VirtualNVMEController:
			kind = "NVME controller"
		case *types.VirtualCdrom:
			kind = "CD/DVD drive"
		case *types.VirtualPCIPassthrough:
			kind = "PCI device"
		case *types.VirtualUSBController:
			kind = "USB controller"
		case *types.VirtualUSBXHCIController:
			kind = "USB xHCI controller"
		case *types.VirtualTPM:
			kind = "Virtual TPM"
		default:
			continue
		}
		label := kind
		switch kind {
		case "SCSI controller", "SATA controller", "NVME controller":
			label = fmt.Sprintf("%s %d", kind, dev.(types.BaseVirtualController).GetVirtualController().BusNumber)
		case "PCI device":
			label = fmt.Sprintf("%s %d", kind, count[kind])
		case "Hard disk", "Network adapter", "CD/DVD drive":
			label = fmt.Sprintf("%s %d", kind, count[kind]+1)
		}
		count[kind]++
		d := dev.GetVirtualDevice()
		d.DeviceInfo = &types.Description{Label: label}
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
