package main

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func addFault(t *testing.T, app *App, rule map[string]any) string {
	t.Helper()
	var res map[string]string
	if code := control(t, app, "POST", "/faults", rule, &res); code != 200 {
		t.Fatalf("POST /faults %v: %d %v", rule, code, res)
	}
	return res["id"]
}

func TestSOAPFaults(t *testing.T) {
	app := startApp(t, nil)
	c := login(t, app)
	ctx := context.Background()
	var info VMInfo
	control(t, app, "GET", "/vms/vm-bios", nil, &info)
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: info.Moref}
	vm := object.NewVirtualMachine(c.Client, ref)
	readName := func() error {
		var m mo.VirtualMachine
		return c.RetrieveOne(ctx, ref, []string{"name"}, &m)
	}

	// Fires once, then the call works again.
	id := addFault(t, app, map[string]any{"method": "RetrievePropertiesEx", "fault": "NotAuthenticated", "times": 1})
	if err := readName(); !isFault[*types.NotAuthenticated](err) {
		t.Fatalf("want NotAuthenticated, got %v", err)
	}
	if err := readName(); err != nil {
		t.Fatalf("after the rule was used up: %v", err)
	}
	var rules []FaultRule
	control(t, app, "GET", "/faults", nil, &rules)
	if len(rules) != 1 || rules[0].ID != id || rules[0].Fired != 1 {
		t.Errorf("rules %+v", rules)
	}

	// Matches by object name; other VMs are untouched. Fails inside the task.
	id = addFault(t, app, map[string]any{"method": "PowerOffVM_Task", "object": "vm-bios", "fault": "InvalidState", "in_task": true, "message": "host busy"})
	var other VMInfo
	control(t, app, "GET", "/vms/vm-efi", nil, &other)
	task, err := vm.PowerOff(ctx)
	if err != nil {
		t.Fatalf("PowerOff call: %v", err)
	}
	if err := task.Wait(ctx); !isFault[*types.InvalidState](err) {
		t.Errorf("want a task failing with InvalidState, got %v", err)
	}
	otherVM := object.NewVirtualMachine(c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: other.Moref})
	if task, err := otherVM.PowerOff(ctx); err != nil || task.Wait(ctx) != nil {
		t.Errorf("power off of another VM failed: %v", err)
	}
	// Removed: the call works.
	if code := control(t, app, "DELETE", "/faults/"+id, nil, nil); code != 200 {
		t.Fatalf("DELETE: %d", code)
	}
	if code := control(t, app, "DELETE", "/faults/"+id, nil, nil); code != 404 {
		t.Errorf("second DELETE: %d", code)
	}
	if task, err := vm.PowerOff(ctx); err != nil || task.Wait(ctx) != nil {
		t.Errorf("power off after removal failed: %v", err)
	}

	// A fault on the call itself, by moref, with its message.
	addFault(t, app, map[string]any{"method": "PowerOnVM_Task", "moref": info.Moref, "fault": "TaskInProgress", "message": "another task is running"})
	if _, err := vm.PowerOn(ctx); !isFault[*types.TaskInProgress](err) {
		t.Errorf("want TaskInProgress, got %v", err)
	} else if err.Error() != "ServerFaultCode: another task is running" {
		t.Errorf("message: %v", err)
	} else if tip := vimFault(err).(*types.TaskInProgress); tip.Task.Type != "Task" {
		t.Errorf("TaskInProgress.task is a %s (pyvmomi wants a Task)", tip.Task.Type)
	}
	control(t, app, "DELETE", "/faults", nil, nil)
	if task, err := vm.PowerOn(ctx); err != nil || task.Wait(ctx) != nil {
		t.Errorf("power on after clearing: %v", err)
	}

	// Other named faults decode to their types.
	for _, name := range []string{"InvalidLogin", "HostCommunication", "FileNotFound", "SystemError", "NoPermission", "InvalidPowerState", "ManagedObjectNotFound"} {
		addFault(t, app, map[string]any{"method": "CurrentTime", "fault": name, "times": 1})
		_, err := methods.GetCurrentTime(ctx, c.Client)
		f := vimFault(err)
		if f == nil || typeName(f) != name {
			t.Errorf("%s: got %T (%v)", name, f, err)
		}
	}

	// Delay only: the call succeeds, late.
	addFault(t, app, map[string]any{"method": "CurrentTime", "delay_ms": 300, "times": 1})
	start := time.Now()
	if _, err := methods.GetCurrentTime(ctx, c.Client); err != nil || time.Since(start) < 300*time.Millisecond {
		t.Errorf("delayed call: %v after %v", err, time.Since(start))
	}
	// HTTP status.
	addFault(t, app, map[string]any{"method": "*", "http_status": 503, "times": 1})
	if _, err := methods.GetCurrentTime(ctx, c.Client); err == nil {
		t.Errorf("503 not seen")
	}
	if _, err := methods.GetCurrentTime(ctx, c.Client); err != nil {
		t.Errorf("after 503: %v", err)
	}
	// Bad rules are refused.
	if code := control(t, app, "POST", "/faults", map[string]any{"method": "X", "fault": "NoSuchFault"}, nil); code != 400 {
		t.Errorf("unknown fault accepted: %d", code)
	}
}

func typeName(f types.BaseMethodFault) string {
	return reflect.TypeOf(f).Elem().Name()
}

func TestFolderFaults(t *testing.T) {
	app := startApp(t, nil)
	var info VMInfo
	control(t, app, "GET", "/vms/vm-bios", nil, &info)
	d := info.Disks[0]
	want, _ := os.ReadFile(d.PathOnDisk)
	url := folderURL(app, d)

	addFault(t, app, map[string]any{"path": "vm-bios-flat.vmdk", "status": 503, "times": 1})
	if _, err := get(t, app, url, ""); err == nil || err.Error() != "status 503" {
		t.Errorf("want 503, got %v", err)
	}
	if got, err := get(t, app, url, ""); err != nil || !bytes.Equal(got, want) {
		t.Errorf("after 503: %v", err)
	}

	// Corrupt two bytes of the next GET of a given range.
	addFault(t, app, map[string]any{"path": "vm-bios-flat.vmdk", "range": "bytes=1048576-", "corrupt": map[string]int64{"offset": 100, "count": 2}, "times": 1})
	got, err := get(t, app, url, "bytes=1048576-2097151")
	if err != nil {
		t.Fatal(err)
	}
	exp := append([]byte(nil), want[1<<20:2<<20]...)
	exp[100] ^= 0xFF
	exp[101] ^= 0xFF
	if !bytes.Equal(got, exp) {
		t.Errorf("corrupted range differs from expectation")
	}
	if got, _ := get(t, app, url, "bytes=1048576-2097151"); !bytes.Equal(got, want[1<<20:2<<20]) {
		t.Errorf("second read still corrupt")
	}

	// Drop the connection after 1000 body bytes.
	addFault(t, app, map[string]any{"path": "vm-bios-flat.vmdk", "drop_after": 1000, "times": 1})
	got, err = get(t, app, url, "")
	if err == nil || len(got) > 1000 {
		t.Errorf("dropped download: %d bytes, err %v", len(got), err)
	}
	if got, err := get(t, app, url, ""); err != nil || !bytes.Equal(got, want) {
		t.Errorf("after drop: %v", err)
	}
}
