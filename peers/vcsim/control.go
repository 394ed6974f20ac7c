package main

// The control API: HTTP + JSON on --control-listen, for tests. See README.md.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, http.StatusBadRequest, "bad JSON: %v", err)
		return false
	}
	return true
}

func (a *App) controlHandler() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})

	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Ready())
	})

	mux.HandleFunc("GET /datastores", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		out := map[string]string{}
		for k, v := range a.dsDirs {
			out[k] = v
		}
		a.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	})

	mux.HandleFunc("GET /vms", func(w http.ResponseWriter, r *http.Request) {
		sctx := a.newContext()
		out := []VMInfo{}
		for _, vm := range a.allVMs() {
			out = append(out, a.vmInfo(sctx, vm))
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		writeJSON(w, http.StatusOK, out)
	})

	mux.HandleFunc("GET /vms/{name}", func(w http.ResponseWriter, r *http.Request) {
		vm := a.findVM(r.PathValue("name"))
		if vm == nil {
			writeErr(w, http.StatusNotFound, "no VM %q", r.PathValue("name"))
			return
		}
		writeJSON(w, http.StatusOK, a.vmInfo(a.newContext(), vm))
	})

	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.faults.List())
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var rule FaultRule
		if !readJSON(w, r, &rule) {
			return
		}
		added, err := a.faults.Add(&rule)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": added.ID})
	})
	mux.HandleFunc("DELETE /faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !a.faults.Remove(r.PathValue("id")) {
			writeErr(w, http.StatusNotFound, "no fault rule %q", r.PathValue("id"))
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"removed": true})
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		a.faults.Clear()
		writeJSON(w, http.StatusOK, map[string]bool{"removed": true})
	})

	bandwidth := func(w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, map[string]int64{"bytes_per_second": a.bw.rate.Load()})
	}
	mux.HandleFunc("GET /bandwidth", func(w http.ResponseWriter, r *http.Request) { bandwidth(w) })
	mux.HandleFunc("PUT /bandwidth", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			BytesPerSecond int64 `json:"bytes_per_second"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if req.BytesPerSecond < 0 {
			writeErr(w, http.StatusBadRequest, "bytes_per_second must be >= 0")
			return
		}
		a.bw.rate.Store(req.BytesPerSecond)
		bandwidth(w)
	})

	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int64{
			"connections":        a.bw.nextConn.Load(),
			"folder_connections": a.bw.folderConns.Load(),
			"folder_bytes_sent":  a.bw.folderBytes.Load(),
			"bandwidth_per_conn": a.bw.rate.Load(),
			"cbt_block_size":     a.cbt.blockSize,
			"cbt_max_span":       a.cbt.maxSpan,
		})
	})

	mux.HandleFunc("POST /cbt/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			VM string `json:"vm"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		vm := a.findVM(req.VM)
		if vm == nil {
			writeErr(w, http.StatusNotFound, "no VM %q", req.VM)
			return
		}
		disks, err := a.cbt.Checkpoint(a.newContext(), vm.Self)
		if err != nil {
			writeErr(w, http.StatusConflict, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"vm": req.VM, "moref": vm.Self.Value, "disks": disks})
	})

	return mux
}
