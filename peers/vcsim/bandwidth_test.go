package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// get downloads url (optionally a byte range) with its own client, i.e. its own TCP
// connection.
func get(t *testing.T, app *App, url string, rng string) ([]byte, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	res, err := folderClient(app).Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusPartialContent {
		return nil, fmt.Errorf("status %d", res.StatusCode)
	}
	return io.ReadAll(res.Body)
}

func TestBandwidthPerConnection(t *testing.T) {
	app := startApp(t, nil)
	var info VMInfo
	control(t, app, "GET", "/vms/vm-bios", nil, &info)
	d := info.Disks[0] // 4 MiB of random content
	want, err := os.ReadFile(d.PathOnDisk)
	if err != nil {
		t.Fatal(err)
	}
	url := folderURL(app, d)

	// Unlimited: fast.
	start := time.Now()
	got, err := get(t, app, url, "")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("unlimited download: %v (equal %v)", err, bytes.Equal(got, want))
	}
	unlimited := time.Since(start)

	const rate = 2 << 20 // 2 MiB/s per connection
	var bw map[string]int64
	control(t, app, "PUT", "/bandwidth", map[string]int64{"bytes_per_second": rate}, &bw)
	if bw["bytes_per_second"] != rate {
		t.Fatalf("bandwidth %v", bw)
	}

	// One connection: 4 MiB at 2 MiB/s, less the initial burst (rate/10).
	start = time.Now()
	got, err = get(t, app, url, "")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("limited download: %v", err)
	}
	one := time.Since(start)

	// Two connections, half each: about twice the throughput.
	start = time.Now()
	var wg sync.WaitGroup
	parts := make([][]byte, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo := int64(i) * 2 << 20
			parts[i], errs[i] = get(t, app, url, fmt.Sprintf("bytes=%d-%d", lo, lo+2<<20-1))
		}()
	}
	wg.Wait()
	two := time.Since(start)
	if errs[0] != nil || errs[1] != nil || !bytes.Equal(append(parts[0], parts[1]...), want) {
		t.Fatalf("parallel download: %v %v", errs[0], errs[1])
	}
	t.Logf("4 MiB: unlimited %v, 1 connection at 2 MiB/s %v, 2 connections %v", unlimited, one, two)
	if one < 1500*time.Millisecond || one > 3*time.Second {
		t.Errorf("one connection took %v, want about 1.9s", one)
	}
	if two > one*7/10 {
		t.Errorf("two connections took %v, one took %v: per-connection cap not per connection", two, one)
	}
	var stats map[string]int64
	control(t, app, "GET", "/stats", nil, &stats)
	if stats["folder_connections"] < 4 {
		t.Errorf("stats %v", stats)
	}

	// Back to unlimited.
	control(t, app, "PUT", "/bandwidth", map[string]int64{"bytes_per_second": 0}, nil)
	start = time.Now()
	if _, err := get(t, app, url, ""); err != nil || time.Since(start) > time.Second {
		t.Errorf("unlimited again: %v in %v", err, time.Since(start))
	}
}
