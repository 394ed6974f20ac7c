package main

// Methods served in-process through simulator.Registry.Handler: QueryChangedDiskAreas
// and the CreateSnapshot hooks (cbt.go), and a fix for PropertyCollector.Fetch.

import (
	"reflect"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// handlerType is the type given to Method.This for calls that our handlers serve (see
// registryHandler).
const handlerType = "FerryVcsimHandler"

// registryHandler is installed as simulator.Registry.Handler. The dispatcher
// (simulator.Service.call, govmomi v0.56.0) asks it for a handler object before its
// session check, but then, for a logged-in session, replaces the handler with the
// session's view of Method.This, which is the registry's object again. Giving
// Method.This a type that no registry knows makes that lookup come back empty, so our
// handler stays. The request body (req.This) keeps the real reference; the dispatcher
// locks our handler through its Self field, i.e. with the real object's lock.
func (a *App) registryHandler(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	var h mo.Reference
	switch m.Name {
	case "QueryChangedDiskAreas", "CreateSnapshot_Task", "CreateSnapshotEx_Task":
		if vm, ok := a.reg.Get(m.This).(*simulator.VirtualMachine); ok {
			h = &cbtVM{Self: m.This, vm: vm, app: a}
		}
	case "Fetch":
		if pc := a.reg.Get(m.This); pc != nil {
			h = &fetchFix{Self: m.This, pc: pc}
		}
	}
	if h == nil {
		return nil, nil
	}
	m.This = types.ManagedObjectReference{Type: handlerType, Value: m.This.Value}
	return h, nil
}

// fetchFix wraps PropertyCollector.Fetch, which pyvmomi uses for every property read
// (vm.snapshot, vm.parentVApp, ...). For an unset property the simulator answers with a
// RetrievePropertiesExResponse, which pyvmomi cannot map to the call (AttributeError);
// vCenter answers with an empty FetchResponse.
type fetchFix struct {
	Self types.ManagedObjectReference
	pc   mo.Reference
}

func (f *fetchFix) Reference() types.ManagedObjectReference { return f.Self }

type fetchResponse struct {
	Returnval types.AnyType `xml:"returnval,omitempty,typeattr"`
}

type fetchBody struct {
	Res    *fetchResponse `xml:"FetchResponse,omitempty"`
	Fault_ *soap.Fault    `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *fetchBody) Fault() *soap.Fault { return b.Fault_ }

// Fetch takes the simulator's own request type (internal to the simulator) as any.
func (f *fetchFix) Fetch(ctx *simulator.Context, req any) soap.HasFault {
	pc := f.pc
	if ctx.Session != nil {
		if s := ctx.Session.Get(f.Self); s != nil {
			pc = s
		}
	}
	out := reflect.ValueOf(pc).MethodByName("Fetch").Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
	res := out[0].Interface().(soap.HasFault)
	if body, ok := res.(*methods.RetrievePropertiesExBody); ok && body.Fault() == nil {
		return &fetchBody{Res: &fetchResponse{}}
	}
	return res
}
