package main

// Per-connection bandwidth cap for datastore file downloads (GET /folder/...), to mimic
// vSphere's per-stream (NFC) throughput limit: every TCP connection has its own token
// bucket, so N parallel connections get about N times the throughput of one.

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

type connKey struct{}

// connState is stored in each connection's context by http.Server.ConnContext.
type connState struct {
	id     int64
	bucket tokenBucket
	used   atomic.Bool // served a /folder GET
}

func connFrom(ctx context.Context) *connState {
	c, _ := ctx.Value(connKey{}).(*connState)
	return c
}

// Bandwidth holds the current cap (bytes/second per connection, 0 = unlimited) and
// download statistics.
type Bandwidth struct {
	rate        atomic.Int64
	nextConn    atomic.Int64
	folderConns atomic.Int64
	folderBytes atomic.Int64
}

func (b *Bandwidth) connContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{id: b.nextConn.Add(1)})
}

// tokenBucket lets a connection send `rate` bytes per second on average, with a burst
// of max(rate/10, 64 KiB). Tokens may go negative; the writer then sleeps off the debt.
type tokenBucket struct {
	mu    sync.Mutex
	avail float64
	last  time.Time
}

func (tb *tokenBucket) wait(ctx context.Context, n int, rate int64) error {
	if rate <= 0 || n <= 0 {
		return nil
	}
	burst := float64(max(rate/10, 64<<10))
	tb.mu.Lock()
	now := time.Now()
	if tb.last.IsZero() {
		tb.avail = burst
	} else {
		tb.avail = min(burst, tb.avail+now.Sub(tb.last).Seconds()*float64(rate))
	}
	tb.last = now
	tb.avail -= float64(n)
	var d time.Duration
	if tb.avail < 0 {
		d = time.Duration(-tb.avail / float64(rate) * float64(time.Second))
	}
	tb.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
