package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// startApp runs ferry-vcsim in-process with the given model (nil = default).
func startApp(t testing.TB, m *ModelSpec, opts ...func(*Options)) *App {
	t.Helper()
	o := Options{Model: m, StateDir: t.TempDir(), TLS: true}
	for _, f := range opts {
		f(&o)
	}
	app, err := Start(o)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(app.Close)
	return app
}

// login connects a govmomi client over the app's real HTTPS endpoint.
func login(t testing.TB, app *App) *govmomi.Client {
	t.Helper()
	u := app.SDKURL()
	u.User = url.UserPassword(app.opts.Username, app.opts.Password)
	c, err := govmomi.NewClient(context.Background(), u, true)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	t.Cleanup(func() { _ = c.Logout(context.Background()) })
	return c
}

// vmByName reads a VM's properties the way pyvmomi would: a ContainerView plus the
// PropertyCollector.
func vmByName(t testing.TB, c *govmomi.Client, name string) mo.VirtualMachine {
	t.Helper()
	ctx := context.Background()
	m := view.NewManager(c.Client)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Destroy(ctx)
	var vms []mo.VirtualMachine
	props := []string{"name", "config", "guest", "runtime", "summary", "network", "snapshot", "datastore", "resourcePool", "parent", "capability"}
	if err := v.RetrieveWithFilter(ctx, []string{"VirtualMachine"}, props, &vms, property.Match{"name": name}); err != nil {
		t.Fatalf("retrieve %s: %v", name, err)
	}
	if len(vms) != 1 {
		t.Fatalf("found %d VMs named %s", len(vms), name)
	}
	return vms[0]
}

// vimFault extracts the vim fault from a SOAP or task error.
func vimFault(err error) types.BaseMethodFault {
	if err == nil {
		return nil
	}
	if soap.IsSoapFault(err) {
		v := soap.ToSoapFault(err).VimFault()
		if f, ok := v.(types.BaseMethodFault); ok {
			return f
		}
		// Decoded faults are values; their methods have pointer receivers.
		rv := reflect.ValueOf(v)
		p := reflect.New(rv.Type())
		p.Elem().Set(rv)
		if f, ok := p.Interface().(types.BaseMethodFault); ok {
			return f
		}
	}
	if soap.IsVimFault(err) {
		return soap.ToVimFault(err)
	}
	var te task.Error
	if errors.As(err, &te) && te.LocalizedMethodFault != nil {
		return te.LocalizedMethodFault.Fault
	}
	return nil
}

// control calls the control API and decodes the JSON answer into out (if not nil).
func control(t testing.TB, app *App, method, path string, in, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, app.controlURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return res.StatusCode
}

// folderClient is an HTTPS client for /folder downloads (self-signed certificate).
func folderClient(app *App) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(app.cert.pem())
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return &http.Client{Transport: tr}
}

func folderURL(app *App, d DiskInfo) string {
	rel := d.PathOnDisk[len(app.dsDirs[d.Datastore])+1:]
	u := app.SDKURL()
	u.Path = "/folder/" + rel
	u.RawQuery = url.Values{"dcPath": {"DC0"}, "dsName": {d.Datastore}}.Encode()
	return u.String()
}
