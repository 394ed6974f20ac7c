package main

// Changed Block Tracking: QueryChangedDiskAreas and change IDs, which the simulator lacks.
//
// A "checkpoint" records, for every disk of a VM, a hash of each block of its flat file
// (holes and all-zero blocks recorded as zero) under a new change ID, and writes that ID
// into the disk backing's changeId. Checkpoints are taken when CBT is enabled at build
// time, on every CreateSnapshot_Task / CreateSnapshotEx_Task of a VM with CBT enabled,
// and on demand through the control API.
//
// QueryChangedDiskAreas(changeId="*") answers the allocated, non-zero blocks of the disk
// now; with another change ID it answers the blocks whose content differs between that
// checkpoint and now (or the snapshot's checkpoint when a snapshot is given).
//
// Both methods are served through simulator.Registry.Handler: for these method names it
// hands the dispatcher a small object of ours (carrying the VM's Self reference, so the
// dispatcher takes the VM's own lock) instead of the simulator VM. The simulator's VM
// type stays in the registry, so PropertyCollector and ContainerView are unaffected.

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	seekData = 3 // SEEK_DATA (Linux)
	seekHole = 4 // SEEK_HOLE (Linux)
)

type diskState struct {
	changeID  string
	vm        types.ManagedObjectReference
	key       int32
	capacity  int64
	blockSize int64
	hashes    []uint64 // per block; 0 = hole or all zeros
}

// CBTStore keeps the recorded disk states, by change ID.
type CBTStore struct {
	app       *App
	blockSize int64
	maxSpan   int64
	seed      maphash.Seed

	mu     sync.Mutex
	states map[string]*diskState
	seq    map[string]int // per VM/disk sequence number
}

func NewCBTStore(app *App, blockSize, maxSpan int64) *CBTStore {
	if blockSize <= 0 {
		blockSize = 64 << 10
	}
	return &CBTStore{
		app:       app,
		blockSize: blockSize,
		maxSpan:   maxSpan,
		seed:      maphash.MakeSeed(),
		states:    map[string]*diskState{},
		seq:       map[string]int{},
	}
}

func (s *CBTStore) state(id string) *diskState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.states[id]
}

// ChangeIDs lists the recorded change IDs of a VM's disk, oldest first.
func (s *CBTStore) ChangeIDs(vm types.ManagedObjectReference, key int32) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, st := range s.states {
		if st.vm == vm && st.key == key {
			out = append(out, id)
		}
	}
	return out
}

// DiskChange is one disk's new change ID after a checkpoint.
type DiskChange struct {
	Key      int32  `json:"key"`
	ChangeID string `json:"change_id"`
	File     string `json:"file"`
}

func cbtEnabled(vm *simulator.VirtualMachine) bool {
	return vm.Config != nil && vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
}

// Checkpoint records the current state of every disk of the VM (taking the VM lock with
// sctx, which may already hold it) and sets the new change IDs in the VM's config.
func (s *CBTStore) Checkpoint(sctx *simulator.Context, ref types.ManagedObjectReference) ([]DiskChange, error) {
	vm, ok := s.app.reg.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return nil, fmt.Errorf("no VM %s", ref)
	}
	var out []DiskChange
	var err error
	sctx.WithLock(vm, func() {
		out, err = s.checkpointLocked(sctx, vm)
	})
	return out, err
}

func (s *CBTStore) checkpointLocked(sctx *simulator.Context, vm *simulator.VirtualMachine) ([]DiskChange, error) {
	if !cbtEnabled(vm) {
		return nil, fmt.Errorf("changeTrackingEnabled is false for VM %s", vm.Name)
	}
	var out []DiskChange
	devices := vm.Config.Hardware.Device
	for i, dev := range devices {
		disk, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		info := s.app.diskInfos([]types.BaseVirtualDevice{disk})[0]
		hashes, err := s.hashFile(info.PathOnDisk, info.Capacity)
		if err != nil {
			return nil, fmt.Errorf("disk %d: %w", disk.Key, err)
		}
		id := s.newChangeID(vm.Self, disk.Key)
		s.mu.Lock()
		s.states[id] = &diskState{changeID: id, vm: vm.Self, key: disk.Key, capacity: info.Capacity, blockSize: s.blockSize, hashes: hashes}
		s.mu.Unlock()
		// Replace the device with a copy that carries the new change ID, so that earlier
		// readers (snapshot configs) keep theirs.
		nd := *disk
		switch b := disk.Backing.(type) {
		case *types.VirtualDiskFlatVer2BackingInfo:
			nb := *b
			nb.ChangeId = id
			nd.Backing = &nb
		case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
			nb := *b
			nb.ChangeId = id
			nd.Backing = &nb
		case *types.VirtualDiskSeSparseBackingInfo:
			nb := *b
			nb.ChangeId = id
			nd.Backing = &nb
		}
		devices[i] = &nd
		out = append(out, DiskChange{Key: disk.Key, ChangeID: id, File: info.File})
	}
	sctx.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
	return out, nil
}

// newChangeID makes an ID in vSphere's shape: "52 xx xx xx xx xx xx xx-xx xx xx xx xx xx xx xx/N".
func (s *CBTStore) newChangeID(vm types.ManagedObjectReference, key int32) string {
	k := fmt.Sprintf("%s/%d", vm.Value, key)
	s.mu.Lock()
	s.seq[k]++
	n := s.seq[k]
	s.mu.Unlock()
	u := uuid.NewSHA1(uuid.NameSpaceOID, []byte(k))
	var b bytes.Buffer
	b.WriteString("52")
	for i := 1; i < 16; i++ {
		if i == 8 {
			b.WriteByte('-')
		} else {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%02x", u[i])
	}
	fmt.Fprintf(&b, "/%d", n)
	return b.String()
}

// scanData calls fn for every block that lies in a data region of the file (not in a
// hole), from block `from` on, with the block's bytes. Blocks in holes are skipped.
func scanData(path string, capacity, blockSize, from int64, fn func(block int64, data []byte)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	const bufBlocks = 64
	buf := make([]byte, blockSize*bufBlocks)
	off := from * blockSize
	for off < capacity {
		ds, err := f.Seek(off, seekData)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) {
				return nil // no data after off
			}
			if errors.Is(err, syscall.EINVAL) {
				ds = off // SEEK_DATA unsupported: treat everything as data
			} else {
				return err
			}
		}
		if ds >= capacity {
			return nil
		}
		de, err := f.Seek(ds, seekHole)
		if err != nil {
			de = capacity
		}
		de = min(de, capacity)
		start := ds / blockSize * blockSize
		end := (de + blockSize - 1) / blockSize * blockSize
		end = min(end, (capacity+blockSize-1)/blockSize*blockSize)
		for pos := start; pos < end; {
			n := min(int64(len(buf)), end-pos)
			got, err := f.ReadAt(buf[:n], pos)
			if err != nil && err != io.EOF {
				return err
			}
			// Past EOF (file shorter than capacity) reads as zeros.
			clear(buf[got:n])
			for b := int64(0); b < n; b += blockSize {
				fn((pos+b)/blockSize, buf[b:min(b+blockSize, n)])
			}
			pos += n
		}
		off = end
	}
	return nil
}

var zeroBlock = make([]byte, 1<<20)

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

func (s *CBTStore) blockHash(data []byte) uint64 {
	if isZero(data) {
		return 0
	}
	h := maphash.Bytes(s.seed, data)
	if h == 0 {
		h = 1
	}
	return h
}

func (s *CBTStore) hashFile(path string, capacity int64) ([]uint64, error) {
	nblocks := (capacity + s.blockSize - 1) / s.blockSize
	hashes := make([]uint64, nblocks)
	err := scanData(path, capacity, s.blockSize, 0, func(block int64, data []byte) {
		if block < nblocks {
			hashes[block] = s.blockHash(data)
		}
	})
	return hashes, err
}

// blocksToAreas merges changed block numbers (ascending) into extents within [lo, hi).
func blocksToAreas(blocks []int64, blockSize, lo, hi int64) []types.DiskChangeExtent {
	var out []types.DiskChangeExtent
	for _, b := range blocks {
		start := max(b*blockSize, lo)
		end := min((b+1)*blockSize, hi)
		if end <= start {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Start+out[n-1].Length == start {
			out[n-1].Length += end - start
			continue
		}
		out = append(out, types.DiskChangeExtent{Start: start, Length: end - start})
	}
	return out
}

// cbtFault is a fault with its message, for the SOAP answer.
type cbtFault struct {
	msg   string
	fault types.BaseMethodFault
}

func invalidArg(prop, msg string) *cbtFault {
	return &cbtFault{msg: msg, fault: &types.InvalidArgument{InvalidProperty: prop}}
}

// QueryChangedDiskAreas answers the CBT query for a VM; the caller holds the VM lock.
func (s *CBTStore) QueryChangedDiskAreas(sctx *simulator.Context, vm *simulator.VirtualMachine, req *types.QueryChangedDiskAreas) (*types.DiskChangeInfo, *cbtFault) {
	var disk *DiskInfo
	for _, d := range s.app.diskInfos(vm.Config.Hardware.Device) {
		if d.Key == req.DeviceKey {
			d := d
			disk = &d
		}
	}
	if disk == nil {
		return nil, invalidArg("deviceKey", fmt.Sprintf("A specified parameter was not correct: deviceKey (%d is not a virtual disk of %s)", req.DeviceKey, vm.Name))
	}
	if !cbtEnabled(vm) {
		return nil, &cbtFault{
			msg:   fmt.Sprintf("Error caused by file %s: change tracking is not enabled for virtual machine %s (config.changeTrackingEnabled is false)", disk.File, vm.Name),
			fault: &types.FileFault{File: disk.File},
		}
	}
	if req.StartOffset < 0 || req.StartOffset > disk.Capacity {
		return nil, invalidArg("startOffset", fmt.Sprintf("A specified parameter was not correct: startOffset %d (disk capacity %d)", req.StartOffset, disk.Capacity))
	}

	// "now": the snapshot's recorded state if a snapshot is given and recorded, else the file.
	var now *diskState
	if req.Snapshot != nil {
		snap, ok := s.app.reg.Get(*req.Snapshot).(*simulator.VirtualMachineSnapshot)
		if !ok || snap.Vm != vm.Self {
			return nil, invalidArg("snapshot", fmt.Sprintf("A specified parameter was not correct: snapshot %s", req.Snapshot.Value))
		}
		var snapID string
		sctx.WithLock(snap, func() {
			for _, d := range s.app.diskInfos(snap.Config.Hardware.Device) {
				if d.Key == req.DeviceKey {
					snapID = d.ChangeID
				}
			}
		})
		if snapID != "" {
			now = s.state(snapID)
		}
	}

	length := disk.Capacity - req.StartOffset
	if s.maxSpan > 0 {
		length = min(length, s.maxSpan)
	}
	lo, hi := req.StartOffset, req.StartOffset+length
	bs := s.blockSize
	first := lo / bs
	var changed []int64

	switch {
	case req.ChangeId == "*" && now == nil:
		err := scanData(disk.PathOnDisk, disk.Capacity, bs, first, func(block int64, data []byte) {
			if block*bs < hi && !isZero(data) {
				changed = append(changed, block)
			}
		})
		if err != nil {
			return nil, &cbtFault{msg: err.Error(), fault: &types.FileFault{File: disk.File}}
		}
	default:
		var old *diskState
		if req.ChangeId != "*" {
			old = s.state(req.ChangeId)
			if old == nil || old.vm != vm.Self || old.key != req.DeviceKey {
				return nil, invalidArg("changeId", fmt.Sprintf("A specified parameter was not correct: changeId %q is not a change ID of disk %d of %s", req.ChangeId, req.DeviceKey, vm.Name))
			}
			bs = old.blockSize
			first = lo / bs
		}
		var cur []uint64
		if now != nil {
			cur = now.hashes
		} else {
			var err error
			cur, err = s.hashFile(disk.PathOnDisk, disk.Capacity)
			if err != nil {
				return nil, &cbtFault{msg: err.Error(), fault: &types.FileFault{File: disk.File}}
			}
		}
		at := func(h []uint64, i int64) uint64 {
			if i < int64(len(h)) {
				return h[i]
			}
			return 0
		}
		nblocks := (hi + bs - 1) / bs
		for i := first; i < nblocks; i++ {
			var was uint64
			if old != nil {
				was = at(old.hashes, i)
			}
			if at(cur, i) != was {
				changed = append(changed, i)
			}
		}
	}
	return &types.DiskChangeInfo{
		StartOffset: req.StartOffset,
		Length:      length,
		ChangedArea: blocksToAreas(changed, bs, lo, hi),
	}, nil
}

// cbtVM stands in for a VM in the dispatcher for the methods below only.
type cbtVM struct {
	Self types.ManagedObjectReference
	vm   *simulator.VirtualMachine
	app  *App
}

func (c *cbtVM) Reference() types.ManagedObjectReference { return c.Self }

func (c *cbtVM) QueryChangedDiskAreas(ctx *simulator.Context, req *types.QueryChangedDiskAreas) soap.HasFault {
	body := &methods.QueryChangedDiskAreasBody{}
	info, f := c.app.cbt.QueryChangedDiskAreas(ctx, c.vm, req)
	if f != nil {
		body.Fault_ = simulator.Fault(f.msg, f.fault)
		return body
	}
	body.Res = &types.QueryChangedDiskAreasResponse{Returnval: *info}
	return body
}

func (c *cbtVM) snapshotCheckpoint(ctx *simulator.Context) {
	if !cbtEnabled(c.vm) {
		return
	}
	if _, err := c.app.cbt.checkpointLocked(ctx, c.vm); err != nil {
		warnf("cbt: checkpoint of %s at snapshot: %v", c.vm.Name, err)
	}
}

func (c *cbtVM) CreateSnapshotTask(ctx *simulator.Context, req *types.CreateSnapshot_Task) soap.HasFault {
	c.snapshotCheckpoint(ctx)
	return c.vm.CreateSnapshotTask(ctx, req)
}

func (c *cbtVM) CreateSnapshotExTask(ctx *simulator.Context, req *types.CreateSnapshotEx_Task) soap.HasFault {
	c.snapshotCheckpoint(ctx)
	return c.vm.CreateSnapshotExTask(ctx, req)
}
