package main

// Fault injection rules, switched on and off at runtime through the control API.
//
// SOAP rules are applied by an http.Handler in front of /sdk (see sdkInterceptor), not
// with the simulator's own Service.AddFaultRule: that one only fires after session and
// method checks, cannot delay without failing, cannot fail a *_Task asynchronously
// (task.info.error), cannot answer at the HTTP level (status, dropped connection), and
// matches object names of entities only. Folder rules are applied by the /folder handler.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultRule is the JSON a test posts to /faults.
type FaultRule struct {
	ID     string `json:"id,omitempty"`
	Target string `json:"target,omitempty"` // "sdk" (default when method is set) or "folder"

	// SOAP (/sdk) matching and actions.
	Method     string `json:"method,omitempty"` // SOAP method name, "*" for any
	Object     string `json:"object,omitempty"` // entity name of _this (e.g. a VM name)
	Moref      string `json:"moref,omitempty"`  // _this value, e.g. "vm-42"
	Fault      string `json:"fault,omitempty"`  // vim fault type name, e.g. "InvalidLogin"
	Message    string `json:"message,omitempty"`
	InTask     bool   `json:"in_task,omitempty"`     // *_Task methods: return a task that fails with the fault
	HTTPStatus int    `json:"http_status,omitempty"` // answer with this HTTP status and no SOAP body

	// Folder (/folder) matching and actions.
	Path       string         `json:"path,omitempty"`        // substring of the URL path after /folder/
	HTTPMethod string         `json:"http_method,omitempty"` // default GET
	Range      string         `json:"range,omitempty"`       // substring of the Range header ("" = any)
	Status     int            `json:"status,omitempty"`      // answer with this status instead of the file
	Corrupt    *CorruptAction `json:"corrupt,omitempty"`     // flip bytes of the body
	DropAfter  *int64         `json:"drop_after,omitempty"`  // close the connection after this many body bytes

	// Both.
	Drop    bool  `json:"drop,omitempty"` // close the connection without an answer
	DelayMS int64 `json:"delay_ms,omitempty"`
	Times   int64 `json:"times,omitempty"` // fire this many times, then stop (0 = always)

	// Read-only, in GET /faults.
	Fired int64 `json:"fired"`
}

// CorruptAction flips (XOR 0xFF) Count bytes starting at body offset Offset.
type CorruptAction struct {
	Offset int64 `json:"offset"`
	Count  int64 `json:"count,omitempty"` // default 1
}

type FaultStore struct {
	mu    sync.Mutex
	next  int
	rules []*FaultRule
}

func (s *FaultStore) Add(r *FaultRule) (*FaultRule, error) {
	if r.Target == "" {
		if r.Path != "" || r.Status != 0 || r.Corrupt != nil || r.DropAfter != nil {
			r.Target = "folder"
		} else {
			r.Target = "sdk"
		}
	}
	switch r.Target {
	case "sdk":
		if r.Method == "" {
			return nil, fmt.Errorf("sdk rule needs a method (or \"*\")")
		}
		if r.Fault == "" && r.DelayMS == 0 && r.HTTPStatus == 0 && !r.Drop {
			return nil, fmt.Errorf("sdk rule needs fault, delay_ms, http_status or drop")
		}
		if r.Fault != "" {
			if _, err := newFault(r.Fault, nil, r.Message); err != nil {
				return nil, err
			}
		}
		if r.InTask && !strings.HasSuffix(r.Method, "_Task") {
			return nil, fmt.Errorf("in_task needs a *_Task method")
		}
	case "folder":
		if r.HTTPMethod == "" {
			r.HTTPMethod = "GET"
		}
		if r.Status == 0 && r.Corrupt == nil && r.DropAfter == nil && !r.Drop && r.DelayMS == 0 {
			return nil, fmt.Errorf("folder rule needs status, corrupt, drop_after, drop or delay_ms")
		}
		if r.Corrupt != nil && r.Corrupt.Count <= 0 {
			r.Corrupt.Count = 1
		}
	default:
		return nil, fmt.Errorf("unknown target %q", r.Target)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	r.ID = "f" + strconv.Itoa(s.next)
	r.Fired = 0
	s.rules = append(s.rules, r)
	return r, nil
}

func (s *FaultStore) Remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.rules {
		if r.ID == id {
			s.rules = append(s.rules[:i], s.rules[i+1:]...)
			return true
		}
	}
	return false
}

func (s *FaultStore) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// List returns copies of the rules, with their fired counts.
func (s *FaultStore) List() []FaultRule {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FaultRule, 0, len(s.rules))
	for _, r := range s.rules {
		out = append(out, *r)
	}
	return out
}

func (s *FaultStore) has(target string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if r.Target == target && (r.Times == 0 || r.Fired < r.Times) {
			return true
		}
	}
	return false
}

// match finds the first live rule of target that pred accepts, counts it as fired and
// returns a copy of it.
func (s *FaultStore) match(target string, pred func(*FaultRule) bool) *FaultRule {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if r.Target != target || (r.Times > 0 && r.Fired >= r.Times) {
			continue
		}
		if pred(r) {
			r.Fired++
			c := *r
			return &c
		}
	}
	return nil
}

func (r *FaultRule) delay() {
	if r.DelayMS > 0 {
		time.Sleep(time.Duration(r.DelayMS) * time.Millisecond)
	}
}

func (r FaultRule) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}
