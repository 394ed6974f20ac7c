package main

// Disk content: every disk's -flat.vmdk is a real file of exactly the disk's capacity,
// created sparse, then filled according to its ContentSpec.
//
// The pseudo-random stream (documented in README.md, "Disk content"): for seed S, the
// 8-byte little-endian word number i (bytes 8i..8i+7 of the disk) is SplitMix64's
// (i+1)-th output when started from state S:
//
//	z = S + (i+1)*0x9E3779B97F4A7C15     (mod 2^64)
//	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//	word = z ^ (z >> 31)
//
// Byte b of the disk is byte (b mod 8) of word b/8. It depends only on S and b, so
// "extents" content holds exactly the bytes that "random" content would have there.

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"runtime"
	"sort"
	"sync"
)

const splitmixGamma = 0x9E3779B97F4A7C15

func streamWord(seed, i uint64) uint64 {
	z := seed + (i+1)*splitmixGamma
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// FillStream writes bytes [off, off+len(buf)) of the stream for seed into buf.
func FillStream(seed uint64, off int64, buf []byte) {
	i := uint64(off) / 8
	pos := 0
	if skip := int(off % 8); skip != 0 {
		var tmp [8]byte
		binary.LittleEndian.PutUint64(tmp[:], streamWord(seed, i))
		pos = copy(buf, tmp[skip:])
		i++
	}
	for ; pos+8 <= len(buf); pos += 8 {
		binary.LittleEndian.PutUint64(buf[pos:], streamWord(seed, i))
		i++
	}
	if pos < len(buf) {
		var tmp [8]byte
		binary.LittleEndian.PutUint64(tmp[:], streamWord(seed, i))
		copy(buf[pos:], tmp[:])
	}
}

// DefaultSeed is the seed used when a random/extents content has none: FNV-1a 64 of
// "<vm name>/<disk index>".
func DefaultSeed(vmName string, diskIndex int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", vmName, diskIndex)
	return h.Sum64()
}

// Extent is a byte range of a disk.
type Extent struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// contentExtents returns the data extents a content spec writes, clipped to capacity,
// sorted and merged. nil for zero content.
func contentExtents(c *ContentSpec, capacity int64) []Extent {
	if c == nil {
		return nil
	}
	var ext []Extent
	switch c.Kind {
	case "random":
		return []Extent{{0, capacity}}
	case "extents":
		for _, e := range c.Extents {
			ext = append(ext, Extent{int64(e.Offset), int64(e.Length)})
		}
		if p := c.Pattern; p != nil && p.Stride > 0 && p.Length > 0 {
			for off := int64(p.Offset); off < capacity; off += int64(p.Stride) {
				ext = append(ext, Extent{off, int64(p.Length)})
			}
		}
	default:
		return nil
	}
	var out []Extent
	for _, e := range ext {
		if e.Offset < 0 || e.Length <= 0 || e.Offset >= capacity {
			continue
		}
		if e.Offset+e.Length > capacity {
			e.Length = capacity - e.Offset
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return mergeExtents(out)
}

func mergeExtents(in []Extent) []Extent {
	var out []Extent
	for _, e := range in {
		if n := len(out); n > 0 && out[n-1].Offset+out[n-1].Length >= e.Offset {
			if end := e.Offset + e.Length; end > out[n-1].Offset+out[n-1].Length {
				out[n-1].Length = end - out[n-1].Offset
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

const fillChunk = 8 << 20

// WriteDiskContent makes path a sparse file of exactly capacity bytes and writes the
// content's data extents with the seeded stream, in parallel chunks.
func WriteDiskContent(path string, capacity int64, c *ContentSpec, seed uint64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil {
		return err
	}
	if err := f.Truncate(capacity); err != nil {
		return err
	}
	if c != nil && c.Seed != nil {
		seed = *c.Seed
	}
	type chunk struct{ off, n int64 }
	var chunks []chunk
	for _, e := range contentExtents(c, capacity) {
		for off := e.Offset; off < e.Offset+e.Length; off += fillChunk {
			n := min(int64(fillChunk), e.Offset+e.Length-off)
			chunks = append(chunks, chunk{off, n})
		}
	}
	if len(chunks) == 0 {
		return nil
	}
	workers := min(runtime.GOMAXPROCS(0), len(chunks))
	work := make(chan chunk)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, fillChunk)
			for ch := range work {
				b := buf[:ch.n]
				FillStream(seed, ch.off, b)
				if _, err := f.WriteAt(b, ch.off); err != nil {
					errs <- err
					for range work {
					}
					return
				}
			}
		}()
	}
	for _, ch := range chunks {
		work <- ch
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}
