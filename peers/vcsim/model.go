package main

// The model file: a JSON description of the inventory that ferry-vcsim builds at start.
// See README.md ("Model file") for the documented schema.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Size is a byte count that unmarshals from a JSON number (bytes) or a string with a
// unit suffix: "4GiB", "512MiB", "64KiB", "1TiB" (binary), "100MB", "2GB" (decimal),
// "4G"/"512M"/"64K" (binary), "123" or "123B" (bytes).
type Size int64

func (s *Size) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := ParseSize(str)
		if err != nil {
			return err
		}
		*s = Size(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("size: %w", err)
	}
	v, err := n.Int64()
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil {
			return fmt.Errorf("size: %w", err)
		}
		v = int64(f)
	}
	*s = Size(v)
	return nil
}

// ParseSize parses "4GiB"-style sizes (see Size).
func ParseSize(str string) (int64, error) {
	str = strings.TrimSpace(str)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
	}
	for _, u := range units {
		if strings.HasSuffix(str, u.suffix) {
			num := strings.TrimSpace(strings.TrimSuffix(str, u.suffix))
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("bad size %q", str)
			}
			return int64(f * float64(u.mult)), nil
		}
	}
	v, err := strconv.ParseInt(str, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q", str)
	}
	return v, nil
}

// ModelSpec is the top level of a model file.
type ModelSpec struct {
	Datacenters []DatacenterSpec `json:"datacenters"`
}

type DatacenterSpec struct {
	Name           string          `json:"name"`
	Datastores     []DatastoreSpec `json:"datastores,omitempty"`
	Networks       []PortgroupSpec `json:"networks,omitempty"`
	OpaqueNetworks []OpaqueSpec    `json:"opaque_networks,omitempty"`
	DVSwitches     []DVSSpec       `json:"dvswitches,omitempty"`
	Clusters       []ClusterSpec   `json:"clusters,omitempty"`
	Hosts          []HostSpec      `json:"hosts,omitempty"` // standalone hosts
	Folders        []string        `json:"folders,omitempty"`
	VMs            []VMSpec        `json:"vms,omitempty"`
	Generate       []GenerateSpec  `json:"generate,omitempty"`
}

type DatastoreSpec struct {
	Name     string   `json:"name"`
	Type     string   `json:"type,omitempty"` // VMFS (default), NFS, NFS41, vsan, OTHER
	Capacity Size     `json:"capacity,omitempty"`
	Free     *Size    `json:"free,omitempty"`
	Hosts    []string `json:"hosts,omitempty"` // hosts that mount it; default all hosts of the DC
}

type PortgroupSpec struct {
	Name    string `json:"name"`
	VLAN    int32  `json:"vlan,omitempty"`
	VSwitch string `json:"vswitch,omitempty"` // default vSwitch0
}

type OpaqueSpec struct {
	Name string `json:"name"`
	ID   string `json:"id,omitempty"`   // opaqueNetworkId, generated if empty
	Type string `json:"type,omitempty"` // default nsx.LogicalSwitch
}

type DVSSpec struct {
	Name       string     `json:"name"`
	Portgroups []DVPGSpec `json:"portgroups,omitempty"`
	Hosts      []string   `json:"hosts,omitempty"` // member hosts; default all hosts of the DC
}

type DVPGSpec struct {
	Name     string `json:"name"`
	VLAN     int32  `json:"vlan,omitempty"`
	NumPorts int32  `json:"num_ports,omitempty"`
}

type ClusterSpec struct {
	Name          string     `json:"name"`
	Hosts         []HostSpec `json:"hosts,omitempty"`
	DRS           bool       `json:"drs,omitempty"`
	HA            bool       `json:"ha,omitempty"`
	ResourcePools []string   `json:"resource_pools,omitempty"`
}

type HostSpec struct {
	Name        string `json:"name"`
	Maintenance bool   `json:"maintenance,omitempty"`
}

type GuestSpec struct {
	HostName    string   `json:"hostname,omitempty"`
	IPAddresses []string `json:"ip_addresses,omitempty"`
	// Tools: "running", "notRunning", "notInstalled". Default: running when the VM is
	// powered on, notRunning otherwise.
	Tools        string `json:"tools,omitempty"`
	ToolsVersion string `json:"tools_version,omitempty"`
}

type SnapshotSpec struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Memory      bool   `json:"memory,omitempty"`
	Quiesce     bool   `json:"quiesce,omitempty"`
}

// UnmarshalJSON accepts "name" or {"name":..}.
func (s *SnapshotSpec) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &s.Name)
	}
	type plain SnapshotSpec
	return json.Unmarshal(b, (*plain)(s))
}

type RDMSpec struct {
	Compatibility string `json:"compatibility,omitempty"` // physicalMode (default) | virtualMode
	Device        string `json:"device,omitempty"`        // deviceName, e.g. /vmfs/devices/disks/naa.600...
	LunUUID       string `json:"lun_uuid,omitempty"`
}

type ContentSpec struct {
	Kind    string       `json:"kind"` // zero (default) | random | extents
	Seed    *uint64      `json:"seed,omitempty"`
	Extents []ExtentSpec `json:"extents,omitempty"`
	// Pattern generates extents: one extent of Length every Stride bytes, starting at Offset.
	Pattern *PatternSpec `json:"pattern,omitempty"`
}

type ExtentSpec struct {
	Offset Size `json:"offset"`
	Length Size `json:"length"`
}

type PatternSpec struct {
	Offset Size `json:"offset,omitempty"`
	Stride Size `json:"stride"`
	Length Size `json:"length"`
}

type DiskSpec struct {
	Capacity     Size         `json:"capacity,omitempty"`
	CapacityMB   int64        `json:"capacity_mb,omitempty"`
	Datastore    string       `json:"datastore,omitempty"`
	Provisioning string       `json:"provisioning,omitempty"` // thin (default) | thick | eagerZeroedThick
	Sharing      string       `json:"sharing,omitempty"`      // sharingNone (default) | sharingMultiWriter
	DiskMode     string       `json:"disk_mode,omitempty"`    // persistent (default) | independent_persistent | ...
	RDM          *RDMSpec     `json:"rdm,omitempty"`
	Controller   string       `json:"controller,omitempty"` // pvscsi (default) | lsilogic | lsilogic-sas | buslogic | sata | nvme | ide
	Bus          int32        `json:"bus,omitempty"`
	Content      *ContentSpec `json:"content,omitempty"`
}

func (d DiskSpec) bytes() int64 {
	if d.Capacity > 0 {
		return int64(d.Capacity)
	}
	if d.CapacityMB > 0 {
		return d.CapacityMB << 20
	}
	return 16 << 20
}

type NICSpec struct {
	Network     string   `json:"network"`
	MAC         string   `json:"mac,omitempty"`
	Adapter     string   `json:"adapter,omitempty"` // vmxnet3 (default) | e1000e | e1000 | vmxnet2 | pcnet32 | sriov
	Connected   *bool    `json:"connected,omitempty"`
	IPAddresses []string `json:"ip_addresses,omitempty"`
	// SR-IOV only: physical function id, e.g. "0000:3b:00.0".
	PhysicalFunction string `json:"physical_function,omitempty"`
}

type PCISpec struct {
	ID         string `json:"id,omitempty"` // e.g. 0000:3b:00.0
	DeviceID   string `json:"device_id,omitempty"`
	VendorID   string `json:"vendor_id,omitempty"`
	SystemID   string `json:"system_id,omitempty"`
	DeviceName string `json:"device_name,omitempty"`
	VGPU       string `json:"vgpu,omitempty"` // vGPU profile: uses a VmiopBackingInfo instead
}

type CDROMSpec struct {
	ISO        string `json:"iso,omitempty"`        // "[LocalDS_0] iso/x.iso"; empty = client device
	Controller string `json:"controller,omitempty"` // ide (default) | sata
	Connected  bool   `json:"connected,omitempty"`
}

type VMSpec struct {
	Name          string            `json:"name"`
	Folder        string            `json:"folder,omitempty"`
	Cluster       string            `json:"cluster,omitempty"`
	Host          string            `json:"host,omitempty"`
	ResourcePool  string            `json:"resource_pool,omitempty"`
	Datastore     string            `json:"datastore,omitempty"` // home (vmx) datastore
	PowerState    string            `json:"power_state,omitempty"`
	Template      bool              `json:"template,omitempty"`
	GuestID       string            `json:"guest_id,omitempty"`
	GuestFullName string            `json:"guest_full_name,omitempty"`
	Firmware      string            `json:"firmware,omitempty"`
	SecureBoot    bool              `json:"secure_boot,omitempty"`
	VTPM          bool              `json:"vtpm,omitempty"`
	NumCPU        int32             `json:"num_cpu,omitempty"`
	CoresPerSock  int32             `json:"cores_per_socket,omitempty"`
	MemoryMB      int64             `json:"memory_mb,omitempty"`
	CPUHotAdd     bool              `json:"cpu_hot_add,omitempty"`
	MemoryHotAdd  bool              `json:"memory_hot_add,omitempty"`
	InstanceUUID  string            `json:"instance_uuid,omitempty"`
	BIOSUUID      string            `json:"bios_uuid,omitempty"`
	Annotation    string            `json:"annotation,omitempty"`
	HWVersion     string            `json:"hw_version,omitempty"`
	CBT           bool              `json:"cbt,omitempty"`
	Guest         *GuestSpec        `json:"guest,omitempty"`
	Snapshots     []SnapshotSpec    `json:"snapshots,omitempty"`
	Disks         []DiskSpec        `json:"disks,omitempty"`
	NICs          []NICSpec         `json:"nics,omitempty"`
	PCI           []PCISpec         `json:"pci_passthrough,omitempty"`
	USB           string            `json:"usb,omitempty"` // "" | usb2 | usb3
	CDROMs        []CDROMSpec       `json:"cdroms,omitempty"`
	ExtraConfig   map[string]string `json:"extra_config,omitempty"`
}

type GenerateSpec struct {
	Count    int    `json:"count"`
	Prefix   string `json:"prefix"`
	Start    int    `json:"start,omitempty"`
	Digits   int    `json:"digits,omitempty"`
	Template VMSpec `json:"template"`
}

func (g GenerateSpec) name(i int) string {
	return fmt.Sprintf("%s%0*d", g.Prefix, g.Digits, g.Start+i)
}

// LoadModel reads a model file; unknown fields are an error, so typos show up.
func LoadModel(path string) (*ModelSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseModel(data)
}

func ParseModel(data []byte) (*ModelSpec, error) {
	var m ModelSpec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return &m, m.Validate()
}

func ptr[T any](v T) *T { return &v }

// Validate checks names and references that the builder relies on.
func (m *ModelSpec) Validate() error {
	if len(m.Datacenters) == 0 {
		return fmt.Errorf("model: no datacenters")
	}
	dsNames := map[string]bool{}
	vmNames := map[string]bool{}
	for _, dc := range m.Datacenters {
		if dc.Name == "" {
			return fmt.Errorf("model: datacenter without a name")
		}
		if len(dc.Datastores) == 0 {
			return fmt.Errorf("model: datacenter %s has no datastores", dc.Name)
		}
		hosts := map[string]bool{}
		for _, c := range dc.Clusters {
			for _, h := range c.Hosts {
				hosts[h.Name] = true
			}
		}
		for _, h := range dc.Hosts {
			hosts[h.Name] = true
		}
		if len(hosts) == 0 {
			return fmt.Errorf("model: datacenter %s has no hosts", dc.Name)
		}
		localDS := map[string]bool{}
		for _, ds := range dc.Datastores {
			if ds.Name == "" || strings.ContainsAny(ds.Name, "/[]") {
				return fmt.Errorf("model: bad datastore name %q", ds.Name)
			}
			if dsNames[ds.Name] {
				return fmt.Errorf("model: datastore name %q used twice (names must be unique across datacenters)", ds.Name)
			}
			dsNames[ds.Name] = true
			localDS[ds.Name] = true
			for _, h := range ds.Hosts {
				if !hosts[h] {
					return fmt.Errorf("model: datastore %s: unknown host %q", ds.Name, h)
				}
			}
		}
		nets := map[string]bool{"VM Network": true}
		addNet := func(name string) error {
			if name == "" {
				return fmt.Errorf("model: network without a name in %s", dc.Name)
			}
			if nets[name] && name != "VM Network" {
				return fmt.Errorf("model: network name %q used twice in %s", name, dc.Name)
			}
			nets[name] = true
			return nil
		}
		for _, n := range dc.Networks {
			if err := addNet(n.Name); err != nil {
				return err
			}
		}
		for _, n := range dc.OpaqueNetworks {
			if err := addNet(n.Name); err != nil {
				return err
			}
		}
		for _, d := range dc.DVSwitches {
			for _, pg := range d.Portgroups {
				if err := addNet(pg.Name); err != nil {
					return err
				}
			}
		}
		check := func(vm *VMSpec) error {
			if vm.Name == "" {
				return fmt.Errorf("model: VM without a name in %s", dc.Name)
			}
			// vSphere allows one name per folder; the same name in two folders is legal
			// (and plans must then name such a VM by its id).
			if vmNames[vm.Folder+"/"+vm.Name] {
				return fmt.Errorf("model: VM name %q used twice in folder %q", vm.Name, vm.Folder)
			}
			vmNames[vm.Folder+"/"+vm.Name] = true
			if vm.Host != "" && !hosts[vm.Host] {
				return fmt.Errorf("model: VM %s: unknown host %q", vm.Name, vm.Host)
			}
			if vm.Datastore != "" && !localDS[vm.Datastore] {
				return fmt.Errorf("model: VM %s: unknown datastore %q", vm.Name, vm.Datastore)
			}
			for i, n := range vm.NICs {
				if !nets[n.Network] {
					return fmt.Errorf("model: VM %s nic %d: unknown network %q", vm.Name, i, n.Network)
				}
			}
			for i, d := range vm.Disks {
				if d.Datastore != "" && !localDS[d.Datastore] {
					return fmt.Errorf("model: VM %s disk %d: unknown datastore %q", vm.Name, i, d.Datastore)
				}
				if d.Content != nil {
					switch d.Content.Kind {
					case "", "zero", "random", "extents":
					default:
						return fmt.Errorf("model: VM %s disk %d: unknown content kind %q", vm.Name, i, d.Content.Kind)
					}
				}
			}
			return nil
		}
		for i := range dc.VMs {
			if err := check(&dc.VMs[i]); err != nil {
				return err
			}
		}
		for _, g := range dc.Generate {
			if g.Count < 0 || g.Prefix == "" {
				return fmt.Errorf("model: generate needs a prefix and a count >= 0")
			}
			tmpl := g.Template
			tmpl.Name = g.name(0) + "(template)"
			if err := check(&tmpl); err != nil {
				return err
			}
			delete(vmNames, tmpl.Folder+"/"+tmpl.Name)
			for i := 0; i < g.Count; i++ {
				name := g.name(i)
				if vmNames[tmpl.Folder+"/"+name] {
					return fmt.Errorf("model: generated VM name %q used twice", name)
				}
				vmNames[tmpl.Folder+"/"+name] = true
			}
		}
	}
	return nil
}

// DefaultModel is used when no --model is given.
func DefaultModel() *ModelSpec {
	return &ModelSpec{Datacenters: []DatacenterSpec{{
		Name: "DC0",
		Datastores: []DatastoreSpec{
			{Name: "LocalDS_0", Type: "VMFS", Capacity: 2 << 40},
			{Name: "LocalDS_1", Type: "NFS", Capacity: 1 << 40},
		},
		Networks: []PortgroupSpec{{Name: "VM Network"}},
		DVSwitches: []DVSSpec{{
			Name:       "DVS0",
			Portgroups: []DVPGSpec{{Name: "DC0_DVPG0", VLAN: 100}},
		}},
		Clusters: []ClusterSpec{{
			Name:  "C0",
			Hosts: []HostSpec{{Name: "DC0_C0_H0"}, {Name: "DC0_C0_H1"}},
		}},
		VMs: []VMSpec{
			{
				Name:          "vm-bios",
				Cluster:       "C0",
				PowerState:    "poweredOn",
				GuestID:       "rhel8_64Guest",
				GuestFullName: "Red Hat Enterprise Linux 8 (64-bit)",
				Firmware:      "bios",
				NumCPU:        2,
				CoresPerSock:  1,
				MemoryMB:      2048,
				Annotation:    "BIOS VM with one random-filled disk",
				CBT:           true,
				Guest:         &GuestSpec{HostName: "vm-bios.example.com", IPAddresses: []string{"192.168.10.11"}},
				Disks: []DiskSpec{{
					Capacity:   4 << 20,
					Datastore:  "LocalDS_0",
					Controller: "lsilogic",
					Content:    &ContentSpec{Kind: "random", Seed: ptr[uint64](1)},
				}},
				NICs: []NICSpec{{Network: "VM Network", Adapter: "vmxnet3", MAC: "00:50:56:aa:00:01"}},
			},
			{
				Name:          "vm-efi",
				Cluster:       "C0",
				PowerState:    "poweredOn",
				GuestID:       "windows2019srv_64Guest",
				GuestFullName: "Microsoft Windows Server 2019 (64-bit)",
				Firmware:      "efi",
				SecureBoot:    true,
				VTPM:          true,
				NumCPU:        4,
				CoresPerSock:  2,
				MemoryMB:      4096,
				CPUHotAdd:     true,
				MemoryHotAdd:  true,
				CBT:           true,
				Annotation:    "EFI + secure boot + vTPM, two disks on two datastores, two NICs",
				Guest:         &GuestSpec{HostName: "vm-efi", IPAddresses: []string{"192.168.10.12"}},
				Disks: []DiskSpec{
					{
						Capacity: 8 << 20, Datastore: "LocalDS_0", Controller: "pvscsi",
						Content: &ContentSpec{Kind: "extents", Seed: ptr[uint64](2), Extents: []ExtentSpec{
							{Offset: 0, Length: 1 << 20}, {Offset: 5 << 20, Length: 512 << 10},
						}},
					},
					{
						Capacity: 6 << 20, Datastore: "LocalDS_1", Controller: "pvscsi", Provisioning: "thick",
						Content: &ContentSpec{Kind: "random", Seed: ptr[uint64](3)},
					},
				},
				NICs: []NICSpec{
					{Network: "VM Network", Adapter: "vmxnet3"},
					{Network: "DC0_DVPG0", Adapter: "e1000e"},
				},
			},
			{
				Name:          "vm-sata-off",
				Cluster:       "C0",
				PowerState:    "poweredOff",
				GuestID:       "ubuntu64Guest",
				GuestFullName: "Ubuntu Linux (64-bit)",
				Firmware:      "efi",
				NumCPU:        1,
				MemoryMB:      1024,
				Snapshots:     []SnapshotSpec{{Name: "before-upgrade"}},
				Disks: []DiskSpec{{
					Capacity: 2 << 20, Datastore: "LocalDS_1", Controller: "sata",
					Content: &ContentSpec{Kind: "extents", Seed: ptr[uint64](4), Extents: []ExtentSpec{{Offset: 64 << 10, Length: 128 << 10}}},
				}},
				NICs: []NICSpec{{Network: "DC0_DVPG0", Adapter: "e1000", Connected: ptr(false)}},
			},
		},
	}}}
}
