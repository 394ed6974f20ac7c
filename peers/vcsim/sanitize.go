package main

// The simulator leaves some required enum properties empty (for example
// runtime.faultToleranceState and runtime.recordReplayState of a new VM). An empty enum
// value is not valid SOAP for the vim schema and pyvmomi fails to parse the whole
// property ("type object 'vim.VirtualMachine.FaultToleranceState' has no attribute ''").
// fillEnums walks an object and gives every empty, non-optional enum field vSphere's
// usual value.

import (
	"reflect"
	"strings"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// enumDefaults are the values vSphere shows for a plain VM/host; other enum types get
// their first declared value.
var enumDefaults = map[string]string{
	"VirtualMachineFaultToleranceState":         string(types.VirtualMachineFaultToleranceStateNotConfigured),
	"VirtualMachineRecordReplayState":           string(types.VirtualMachineRecordReplayStateInactive),
	"VirtualMachineConnectionState":             string(types.VirtualMachineConnectionStateConnected),
	"VirtualMachinePowerState":                  string(types.VirtualMachinePowerStatePoweredOff),
	"VirtualMachineToolsStatus":                 string(types.VirtualMachineToolsStatusToolsNotInstalled),
	"ManagedEntityStatus":                       string(types.ManagedEntityStatusGray),
	"HostSystemConnectionState":                 string(types.HostSystemConnectionStateConnected),
	"HostSystemPowerState":                      string(types.HostSystemPowerStatePoweredOn),
	"HostStandbyMode":                           string(types.HostStandbyModeNone),
	"VirtualMachineMovePriority":                string(types.VirtualMachineMovePriorityDefaultPriority),
	"VirtualMachineGuestState":                  string(types.VirtualMachineGuestStateUnknown),
	"VirtualMachineHtSharing":                   string(types.VirtualMachineHtSharingAny),
	"SharesLevel":                               string(types.SharesLevelNormal),
	"LatencySensitivitySensitivityLevel":        string(types.LatencySensitivitySensitivityLevelNormal),
	"VirtualMachineConfigInfoSwapPlacementType": string(types.VirtualMachineConfigInfoSwapPlacementTypeInherit),
	"VirtualMachineNeedSecondaryReason":         string(types.VirtualMachineNeedSecondaryReasonInitializing),
	"VirtualMachineToolsRunningStatus":          string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning),
	"VirtualMachineToolsVersionStatus":          string(types.VirtualMachineToolsVersionStatusGuestToolsNotInstalled),
	"HostCryptoState":                           string(types.HostCryptoStateIncapable),
	"DatastoreSummaryMaintenanceModeState":      string(types.DatastoreSummaryMaintenanceModeStateNormal),
}

var (
	stringType = reflect.TypeOf("")
	typesPkg   = reflect.TypeOf(types.ManagedObjectReference{}).PkgPath()
)

func enumDefault(t reflect.Type) (string, bool) {
	if v, ok := enumDefaults[t.Name()]; ok {
		return v, v != ""
	}
	m, ok := reflect.PointerTo(t).MethodByName("Strings")
	if !ok {
		m, ok = t.MethodByName("Strings")
		if !ok {
			return "", false
		}
		out := m.Func.Call([]reflect.Value{reflect.Zero(t)})
		if s, ok := out[0].Interface().([]string); ok && len(s) > 0 {
			return s[0], true
		}
		return "", false
	}
	out := m.Func.Call([]reflect.Value{reflect.New(t)})
	if s, ok := out[0].Interface().([]string); ok && len(s) > 0 {
		return s[0], true
	}
	return "", false
}

func isEnumType(t reflect.Type) bool {
	return t.Kind() == reflect.String && t != stringType && t.PkgPath() == typesPkg
}

// fillEnums fixes v (a pointer) in place and reports whether anything changed.
func fillEnums(v reflect.Value, depth int) bool {
	if depth > 40 || !v.IsValid() {
		return false
	}
	changed := false
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			changed = fillEnums(v.Elem(), depth+1)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			changed = fillEnums(v.Index(i), depth+1) || changed
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			if isEnumType(sf.Type) && f.String() == "" {
				tag := sf.Tag.Get("xml")
				if tag == "" || strings.Contains(tag, "omitempty") || !f.CanSet() {
					continue
				}
				if def, ok := enumDefault(sf.Type); ok {
					f.SetString(def)
					changed = true
				}
				continue
			}
			changed = fillEnums(f, depth+1) || changed
		}
	}
	return changed
}

// sanitizeAll fixes every entity and snapshot of the registry (at the end of the build).
func (a *App) sanitizeAll() {
	sctx := a.newContext()
	var objs []mo.Reference
	for _, e := range a.reg.All("") {
		objs = append(objs, e)
	}
	objs = append(objs, a.reg.AllReference("VirtualMachineSnapshot")...)
	for _, obj := range objs {
		sctx.WithLock(obj, func() {
			fillEnums(reflect.ValueOf(obj), 0)
		})
	}
}
