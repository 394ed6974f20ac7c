package main

// The App: the simulator service, the inventory built from the model, and the HTTP
// servers (SOAP + /folder, and the control API).

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Options configure an App.
type Options struct {
	Model            *ModelSpec
	StateDir         string
	TLS              bool
	Username         string
	Password         string
	Listen           string
	ControlListen    string
	BandwidthPerConn int64
	CBTBlockSize     int64
	CBTMaxSpan       int64
	APIVersion       string // ServiceContent.about.apiVersion, default 8.0.3.0
	Verbose          bool
}

// setAbout presents the simulator as a vCenter of the given API version (the simulator's
// own default is 6.5, which current pyvmomi no longer talks to properly).
func setAbout(about *types.AboutInfo, apiVersion string) {
	if apiVersion == "" {
		apiVersion = "8.0.3.0"
	}
	version := apiVersion
	if parts := strings.Split(apiVersion, "."); len(parts) > 3 {
		version = strings.Join(parts[:3], ".")
	}
	about.ApiVersion = apiVersion
	about.Version = version
	about.Build = "24322831"
	about.FullName = fmt.Sprintf("VMware vCenter Server %s build-%s", version, about.Build)
	about.LicenseProductVersion = strings.SplitN(version, ".", 2)[0] + ".0"
}

type App struct {
	opts   Options
	model  *simulator.Model
	svc    *simulator.Service
	reg    *simulator.Registry
	client *vim25.Client
	dsRoot string

	cbt    *CBTStore
	faults *FaultStore
	bw     *Bandwidth

	mu     sync.Mutex
	dsDirs map[string]string

	cert       *serverCert
	sdkURL     *url.URL
	controlURL string
	sdkLn      net.Listener
	ctlLn      net.Listener
	sdkSrv     *http.Server
	ctlSrv     *http.Server

	BuildTime time.Duration
}

// stderrLog is ours; the std logger belongs to the simulator (silenced unless --verbose).
var stderrLog = log.New(os.Stderr, "ferry-vcsim: ", log.LstdFlags)

func (a *App) logf(format string, args ...any) {
	if a.opts.Verbose {
		stderrLog.Printf(format, args...)
	}
}

func warnf(format string, args ...any) { stderrLog.Printf(format, args...) }

// newContext is a simulator context for in-process work (own lock ownership).
func (a *App) newContext() *simulator.Context {
	return &simulator.Context{Context: context.Background(), Map: a.reg}
}

// Start builds the model and starts both servers.
func Start(opts Options) (*App, error) {
	if opts.Model == nil {
		opts.Model = DefaultModel()
	}
	if err := opts.Model.Validate(); err != nil {
		return nil, err
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.ControlListen == "" {
		opts.ControlListen = "127.0.0.1:0"
	}
	if opts.Username == "" {
		opts.Username = "user"
	}
	if opts.Password == "" {
		opts.Password = "pass"
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, err
	}
	a := &App{
		opts:   opts,
		dsRoot: filepath.Join(stateDir, "datastores"),
		faults: &FaultStore{},
		bw:     &Bandwidth{},
		dsDirs: map[string]string{},
	}
	a.bw.rate.Store(opts.BandwidthPerConn)
	a.cbt = NewCBTStore(a, opts.CBTBlockSize, opts.CBTMaxSpan)
	// Datastores start empty on every run.
	if err := os.RemoveAll(a.dsRoot); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(a.dsRoot, 0o755); err != nil {
		return nil, err
	}
	if !opts.Verbose {
		// The simulator logs routine events (e.g. ManagedObjectNotFound) with the std logger.
		log.SetOutput(io.Discard)
	}

	start := time.Now()
	// Building makes a lot of short-lived garbage (the simulator deep-copies via XML).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	m := simulator.VPX()
	m.Datacenter, m.Portgroup, m.Host, m.Cluster, m.ClusterHost = 0, 0, 0, 0, 0
	m.Datastore, m.Machine, m.Autostart = 0, 0, false
	setAbout(&m.ServiceContent.About, opts.APIVersion)
	if err := m.Create(); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	a.model = m
	a.svc = m.Service
	a.reg = m.Service.Context.Map
	a.reg.Handler = a.registryHandler
	ctx := context.Background()
	if a.client, err = vim25.NewClient(ctx, a.svc); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.buildInventory(ctx, opts.Model); err != nil {
		a.Close()
		return nil, err
	}
	a.BuildTime = time.Since(start)

	if err := a.startServers(stateDir); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) startServers(stateDir string) error {
	var err error
	if a.sdkLn, err = net.Listen("tcp", a.opts.Listen); err != nil {
		return err
	}
	if a.ctlLn, err = net.Listen("tcp", a.opts.ControlListen); err != nil {
		return err
	}
	host := a.sdkLn.Addr().String()
	scheme := "http"
	var tlsConf *tls.Config
	if a.opts.TLS {
		scheme = "https"
		if a.cert, err = loadOrCreateCert(stateDir); err != nil {
			return err
		}
		tlsConf = &tls.Config{
			Certificates: []tls.Certificate{a.cert.tls},
			NextProtos:   []string{"http/1.1"},
			ClientAuth:   tls.RequestClientCert, // for LoginExtensionByCertificate
		}
	}
	sdkPath := a.reg.Path // "/sdk"
	a.sdkURL = &url.URL{Scheme: scheme, Host: host, Path: sdkPath}
	a.svc.Listen = &url.URL{Scheme: scheme, Host: host, Path: sdkPath, User: url.UserPassword(a.opts.Username, a.opts.Password)}
	a.svc.TLS = tlsConf

	// The same registrations as simulator.Service.NewServer, on a server of ours (so
	// that it can have a per-connection context and our /folder and /sdk wrappers).
	a.svc.RegisterSDK(a.reg, sdkPath+"/vimService")
	mux := a.svc.ServeMux
	mux.HandleFunc(sdkPath+"/vimServiceVersions.xml", a.svc.ServiceVersions)
	mux.HandleFunc(sdkPath+"/vsanServiceVersions.xml", a.svc.ServiceVersionsVsan)
	mux.HandleFunc("/folder/", a.serveFolder)
	mux.HandleFunc("/guestFile/", simulator.ServeGuest)
	mux.HandleFunc("/nfc/", simulator.ServeNFC)
	mux.HandleFunc("/about", a.svc.About)

	sm := a.reg.SessionManager()
	sm.ServiceHostName = host
	if tlsConf != nil {
		sm.TLS = func() *tls.Config { return tlsConf }
	}
	a.reg.OptionManager().UpdateOptions(&types.UpdateOptions{ChangedValue: []types.BaseOptionValue{
		&types.OptionValue{Key: "vcsim.server.url", Value: a.sdkURL.String()},
	}})

	errLog := log.New(io.Discard, "", 0)
	if a.opts.Verbose {
		errLog = log.New(os.Stderr, "http: ", log.LstdFlags)
	}
	a.sdkSrv = &http.Server{
		Handler:      a.sdkInterceptor(mux),
		ConnContext:  a.bw.connContext,
		TLSConfig:    tlsConf,
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
		ErrorLog:     errLog,
		IdleTimeout:  5 * time.Minute,
	}
	a.ctlSrv = &http.Server{Handler: a.controlHandler(), ErrorLog: errLog}
	a.controlURL = "http://" + a.ctlLn.Addr().String()

	go func() {
		var err error
		if tlsConf != nil {
			err = a.sdkSrv.ServeTLS(a.sdkLn, "", "")
		} else {
			err = a.sdkSrv.Serve(a.sdkLn)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "sdk server: %v\n", err)
		}
	}()
	go func() {
		if err := a.ctlSrv.Serve(a.ctlLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "control server: %v\n", err)
		}
	}()
	return nil
}

// SDKURL is the /sdk URL clients connect to (without credentials).
func (a *App) SDKURL() *url.URL { u := *a.sdkURL; return &u }

// Close stops the servers and removes the simulator's temporary files.
func (a *App) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, s := range []*http.Server{a.sdkSrv, a.ctlSrv} {
		if s != nil {
			if err := s.Shutdown(ctx); err != nil {
				_ = s.Close()
			}
		}
	}
	if a.sdkSrv == nil && a.sdkLn != nil {
		_ = a.sdkLn.Close()
	}
	if a.ctlSrv == nil && a.ctlLn != nil {
		_ = a.ctlLn.Close()
	}
	if a.model != nil {
		a.model.Remove()
	}
}

// ReadyInfo is the content of the ready file.
type ReadyInfo struct {
	SDKURL           string  `json:"sdk_url"`
	ControlURL       string  `json:"control_url"`
	ThumbprintSHA256 string  `json:"thumbprint_sha256"`
	ThumbprintSHA1   string  `json:"thumbprint_sha1"`
	CertFile         string  `json:"cert_file"` // "" without TLS
	Username         string  `json:"username"`
	Password         string  `json:"password"`
	PID              int     `json:"pid"`
	BuildSeconds     float64 `json:"build_seconds"`
}

func (a *App) Ready() ReadyInfo {
	r := ReadyInfo{
		SDKURL:       a.sdkURL.String(),
		ControlURL:   a.controlURL,
		Username:     a.opts.Username,
		Password:     a.opts.Password,
		PID:          os.Getpid(),
		BuildSeconds: a.BuildTime.Seconds(),
	}
	if a.cert != nil {
		r.ThumbprintSHA256 = a.cert.sha256
		r.ThumbprintSHA1 = a.cert.sha1
		r.CertFile = a.cert.file
	}
	return r
}
