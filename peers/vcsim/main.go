// Command ferry-vcsim runs govmomi's vCenter simulator with an inventory built from a
// JSON model, real disk files, Changed Block Tracking (QueryChangedDiskAreas), a
// per-connection bandwidth cap on datastore downloads, and runtime fault injection,
// for Ferry's Python integration tests. See README.md.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		modelFile = flag.String("model", "", "model JSON file (default: built-in default model)")
		stateDir  = flag.String("state-dir", "", "state directory (datastores, server.pem); required")
		readyFile = flag.String("ready-file", "", "write this JSON file (atomically) when ready")
		useTLS    = flag.Bool("tls", true, "serve https (false: plain http)")
		username  = flag.String("username", "user", "the only accepted login user name")
		password  = flag.String("password", "pass", "the only accepted login password")
		listen    = flag.String("listen", "127.0.0.1:0", "SOAP/datastore listen address")
		ctlListen = flag.String("control-listen", "127.0.0.1:0", "control API listen address")
		bandwidth = flag.Int64("bandwidth-per-conn", 0, "GET /folder bytes/second per TCP connection (0 = unlimited)")
		blockSize = flag.Int64("cbt-block-size", 64<<10, "QueryChangedDiskAreas block size in bytes")
		maxSpan   = flag.Int64("cbt-max-span", 0, "largest DiskChangeInfo.length answered by one QueryChangedDiskAreas call (0 = to the end of the disk)")
		apiVer    = flag.String("api-version", "8.0.3.0", "vCenter API version to report (about.apiVersion, vimServiceVersions.xml)")
		verbose   = flag.Bool("verbose", false, "log simulator and fault-injection events to stderr")
	)
	flag.Parse()
	if *stateDir == "" {
		fmt.Fprintln(os.Stderr, "ferry-vcsim: --state-dir is required")
		return 2
	}
	if err := os.MkdirAll(*stateDir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "ferry-vcsim: %v\n", err)
		return 1
	}
	model := DefaultModel()
	if *modelFile != "" {
		m, err := LoadModel(*modelFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ferry-vcsim: %v\n", err)
			return 1
		}
		model = m
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	start := time.Now()
	app, err := Start(Options{
		Model:            model,
		StateDir:         *stateDir,
		TLS:              *useTLS,
		Username:         *username,
		Password:         *password,
		Listen:           *listen,
		ControlListen:    *ctlListen,
		BandwidthPerConn: *bandwidth,
		CBTBlockSize:     *blockSize,
		CBTMaxSpan:       *maxSpan,
		APIVersion:       *apiVer,
		Verbose:          *verbose,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferry-vcsim: %v\n", err)
		return 1
	}
	ready := app.Ready()
	if *readyFile != "" {
		data, _ := json.MarshalIndent(ready, "", "  ")
		if err := writeFileAtomic(*readyFile, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "ferry-vcsim: ready file: %v\n", err)
			app.Close()
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "ferry-vcsim: ready in %.2fs (model %.2fs): sdk %s control %s\n",
		time.Since(start).Seconds(), app.BuildTime.Seconds(), ready.SDKURL, ready.ControlURL)

	sig := <-sigs
	fmt.Fprintf(os.Stderr, "ferry-vcsim: %s, shutting down\n", sig)
	app.Close()
	return 0
}
