package main

// The datastore file endpoint /folder/<path>?dcPath=..&dsName=..: the simulator's own
// handler (Go's file server: GET/HEAD with Range, PUT), wrapped with the per-connection
// bandwidth cap and the folder fault rules.

import (
	"net/http"
	"strings"
)

func (a *App) serveFolder(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/folder/")
	var rule *FaultRule
	if a.faults.has("folder") {
		rng := r.Header.Get("Range")
		rule = a.faults.match("folder", func(fr *FaultRule) bool {
			return (fr.HTTPMethod == "*" || strings.EqualFold(fr.HTTPMethod, r.Method)) &&
				strings.Contains(p, fr.Path) &&
				(fr.Range == "" || strings.Contains(rng, fr.Range))
		})
	}
	if rule != nil {
		a.logf("fault %s fired on %s /folder/%s (Range %q)", rule.ID, r.Method, p, r.Header.Get("Range"))
		rule.delay()
		switch {
		case rule.Drop:
			dropConnection(w)
			return
		case rule.Status != 0:
			http.Error(w, "injected by ferry-vcsim rule "+rule.ID, rule.Status)
			return
		}
	}
	if r.Method != http.MethodGet && rule == nil {
		a.svc.ServeDatastore(w, r)
		return
	}
	cs := connFrom(r.Context())
	if cs != nil && r.Method == http.MethodGet && cs.used.CompareAndSwap(false, true) {
		a.bw.folderConns.Add(1)
	}
	fw := &folderWriter{ResponseWriter: w, app: a, r: r, conn: cs, rule: rule}
	a.svc.ServeDatastore(fw, r)
}

// folderWriter throttles, corrupts or cuts the response body.
type folderWriter struct {
	http.ResponseWriter
	app  *App
	r    *http.Request
	conn *connState
	rule *FaultRule
	n    int64 // body bytes written so far
}

const throttleChunk = 32 << 10

func (fw *folderWriter) Write(p []byte) (int, error) {
	if fw.rule != nil && fw.rule.Corrupt != nil {
		c := fw.rule.Corrupt
		lo, hi := max(c.Offset, fw.n), min(c.Offset+c.Count, fw.n+int64(len(p)))
		if lo < hi {
			q := make([]byte, len(p))
			copy(q, p)
			for i := lo; i < hi; i++ {
				q[i-fw.n] ^= 0xFF
			}
			p = q
		}
	}
	cut := false
	if fw.rule != nil && fw.rule.DropAfter != nil {
		if left := *fw.rule.DropAfter - fw.n; int64(len(p)) > left {
			p = p[:max(left, 0)]
			cut = true
		}
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), throttleChunk)
		if fw.conn != nil && fw.r.Method == http.MethodGet {
			if err := fw.conn.bucket.wait(fw.r.Context(), n, fw.app.bw.rate.Load()); err != nil {
				return written, err
			}
		}
		m, err := fw.ResponseWriter.Write(p[:n])
		written += m
		fw.n += int64(m)
		fw.app.bw.folderBytes.Add(int64(m))
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	if cut {
		if f, ok := fw.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	return written, nil
}

func (fw *folderWriter) Flush() {
	if f, ok := fw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (fw *folderWriter) Unwrap() http.ResponseWriter { return fw.ResponseWriter }
