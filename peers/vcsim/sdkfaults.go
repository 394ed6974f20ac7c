package main

// The /sdk side of fault injection: an http.Handler in front of the simulator's SOAP
// endpoint that peeks at the method name and _this of each request and, when a rule
// matches, answers with a vim fault (or a failed task, an HTTP status, a dropped
// connection) or delays the call and passes it on.

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
	vxml "github.com/vmware/govmomi/vim25/xml"
)

// soapCall is what the interceptor reads from a request.
type soapCall struct {
	method string
	this   types.ManagedObjectReference
}

// peekSOAP reads the method element name and its _this from a SOAP envelope.
func peekSOAP(body []byte) (soapCall, bool) {
	var call soapCall
	dec := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	inBody := false
	bodyDepth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return call, call.method != ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case !inBody && t.Name.Local == "Body":
				inBody = true
				bodyDepth = depth
			case inBody && depth == bodyDepth+1:
				call.method = t.Name.Local
			case inBody && depth == bodyDepth+2 && t.Name.Local == "_this":
				for _, a := range t.Attr {
					if a.Name.Local == "type" {
						call.this.Type = a.Value
					}
				}
				var v string
				if err := dec.DecodeElement(&v, &t); err == nil {
					call.this.Value = strings.TrimSpace(v)
				}
				return call, true
			}
		case xml.EndElement:
			depth--
		}
	}
}

// newFault makes a vim fault by type name ("InvalidLogin", "SystemError", ...), filling
// required references with this and the reason/file fields with msg.
func newFault(name string, this *types.ManagedObjectReference, msg string) (types.BaseMethodFault, error) {
	name = strings.TrimSuffix(strings.TrimPrefix(name, "vim.fault."), "Fault")
	if name == "" {
		name = "SystemError"
	}
	typ, ok := types.TypeFunc()(name)
	if !ok {
		// e.g. "SystemErrorFault" style names, or a name with "Fault" in the type itself.
		if typ, ok = types.TypeFunc()(name + "Fault"); !ok {
			return nil, fmt.Errorf("unknown fault type %q", name)
		}
	}
	v := reflect.New(typ)
	f, ok := v.Interface().(types.BaseMethodFault)
	if !ok {
		return nil, fmt.Errorf("%q is not a fault type", name)
	}
	ref := types.ManagedObjectReference{Type: "ServiceInstance", Value: "ServiceInstance"}
	if this != nil && this.Type != "" {
		ref = *this
	}
	fillFault(v.Elem(), ref, msg)
	if msg != "" {
		mf := f.GetMethodFault()
		mf.FaultMessage = append(mf.FaultMessage, types.LocalizableMessage{Key: "com.ferry.vcsim.injected", Message: msg})
	}
	return f, nil
}

var morType = reflect.TypeOf(types.ManagedObjectReference{})

// fillFault sets required fields that clients cannot parse empty: object references,
// power-state enums, and the usual text fields.
func fillFault(v reflect.Value, ref types.ManagedObjectReference, msg string) {
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		sf := t.Field(i)
		if !f.CanSet() {
			continue
		}
		switch {
		case sf.Type == morType:
			f.Set(reflect.ValueOf(refFor(sf.Name, ref)))
		case sf.Type == reflect.PointerTo(morType) && sf.Name == "Object":
			r := ref
			f.Set(reflect.ValueOf(&r))
		case sf.Anonymous && f.Kind() == reflect.Struct:
			fillFault(f, ref, msg)
		case f.Kind() == reflect.String && f.String() == "":
			switch sf.Name {
			case "Reason", "File", "Name", "Datastore", "Host":
				f.SetString(orDefault(msg, "injected by ferry-vcsim"))
			case "PrivilegeId":
				f.SetString("System.View")
			case "RequestedState":
				f.SetString("poweredOn")
			case "ExistingState":
				f.SetString("poweredOff")
			case "InvalidProperty":
				f.SetString("injected")
			}
		}
	}
}

// refFor picks a reference of the type clients expect for a fault's field (pyvmomi
// checks it): TaskInProgress.task must be a Task, and so on; generic fields get _this.
func refFor(field string, this types.ManagedObjectReference) types.ManagedObjectReference {
	switch field {
	case "Task":
		return types.ManagedObjectReference{Type: "Task", Value: "task-0"}
	case "Host":
		return types.ManagedObjectReference{Type: "HostSystem", Value: "host-0"}
	case "Datastore":
		return types.ManagedObjectReference{Type: "Datastore", Value: "datastore-0"}
	case "Vm":
		if this.Type == "VirtualMachine" {
			return this
		}
		return types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-0"}
	}
	return this
}

// soapFaultXML renders a SOAP fault envelope in the shape the simulator (and vSphere) use.
func soapFaultXML(msg string, fault types.BaseMethodFault) []byte {
	kind := reflect.TypeOf(fault).Elem().Name()
	var detail bytes.Buffer
	enc := vxml.NewEncoder(&detail)
	start := vxml.StartElement{
		Name: vxml.Name{Local: kind + "Fault"},
		Attr: []vxml.Attr{
			{Name: vxml.Name{Local: "xmlns"}, Value: "urn:vim25"},
			{Name: vxml.Name{Local: "xsi:type"}, Value: kind},
		},
	}
	if err := enc.EncodeElement(fault, start); err != nil {
		detail.Reset()
	}
	_ = enc.Flush()
	var out bytes.Buffer
	out.WriteString(xml.Header)
	out.WriteString(`<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`)
	out.WriteString(`<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>`)
	_ = xml.EscapeText(&out, []byte(msg))
	out.WriteString(`</faultstring><detail>`)
	out.Write(detail.Bytes())
	out.WriteString(`</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`)
	return out.Bytes()
}

func taskResponseXML(method string, task types.ManagedObjectReference) []byte {
	var out bytes.Buffer
	out.WriteString(xml.Header)
	out.WriteString(`<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`)
	fmt.Fprintf(&out, `<soapenv:Body><%sResponse xmlns="urn:vim25"><returnval type="Task">%s</returnval></%sResponse></soapenv:Body></soapenv:Envelope>`, method, task.Value, method)
	return out.Bytes()
}

// sdkInterceptor wraps the simulator's mux: SOAP POSTs are checked against the sdk rules.
func (a *App) sdkInterceptor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/sdk") || !a.faults.has("sdk") {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		call, ok := peekSOAP(body)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		var objName string
		nameLoaded := false
		rule := a.faults.match("sdk", func(fr *FaultRule) bool {
			if fr.Method != "*" && fr.Method != call.method {
				return false
			}
			if fr.Moref != "" && fr.Moref != call.this.Value {
				return false
			}
			if fr.Object != "" {
				if !nameLoaded {
					objName = a.objectName(call.this)
					nameLoaded = true
				}
				if fr.Object != objName {
					return false
				}
			}
			return true
		})
		if rule == nil {
			next.ServeHTTP(w, r)
			return
		}
		a.logf("fault %s fired on %s %s", rule.ID, call.method, call.this.Value)
		rule.delay()
		switch {
		case rule.Drop:
			dropConnection(w)
			return
		case rule.HTTPStatus != 0:
			w.WriteHeader(rule.HTTPStatus)
			return
		case rule.Fault == "":
			next.ServeHTTP(w, r) // delay only
			return
		}
		msg := rule.Message
		if msg == "" {
			msg = fmt.Sprintf("%s (injected by ferry-vcsim rule %s)", rule.Fault, rule.ID)
		}
		fault, err := newFault(rule.Fault, &call.this, msg)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if rule.InTask {
			if ref, ok := a.failingTask(call, fault, msg); ok {
				w.Header().Set("Content-Type", "text/xml; charset=utf-8")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(taskResponseXML(call.method, ref))
				return
			}
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(soapFaultXML(msg, fault))
	})
}

// objectName is the entity name of ref, or "".
func (a *App) objectName(ref types.ManagedObjectReference) string {
	obj := a.reg.Get(ref)
	if obj == nil {
		return ""
	}
	var name string
	a.newContext().WithLock(obj, func() { name = entityName(obj) })
	return name
}

// failingTask registers a task for call.this that has already failed with fault (its
// info.error.localizedMessage is msg).
func (a *App) failingTask(call soapCall, fault types.BaseMethodFault, msg string) (types.ManagedObjectReference, bool) {
	obj := a.reg.Get(call.this)
	if obj == nil {
		return types.ManagedObjectReference{}, false
	}
	task := simulator.CreateTask(obj, strings.TrimSuffix(call.method, "_Task"), nil)
	now := time.Now()
	task.Info.Name = call.method
	task.Info.State = types.TaskInfoStateError
	task.Info.StartTime = &now
	task.Info.CompleteTime = &now
	task.Info.Error = &types.LocalizedMethodFault{Fault: fault, LocalizedMessage: msg}
	a.reg.Put(task)
	task.Info.Key = task.Self.Value
	task.Info.Task = task.Self
	return task.Self, true
}

// dropConnection closes the client connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
