package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

func TestStreamMatchesDocumentedSplitMix64(t *testing.T) {
	// SplitMix64 from state 0: its first two outputs are well known.
	buf := make([]byte, 16)
	FillStream(0, 0, buf)
	if a, b := binary.LittleEndian.Uint64(buf), binary.LittleEndian.Uint64(buf[8:]); a != 0xe220a8397b1dcdaf || b != 0x6e789e6aa1b965f4 {
		t.Errorf("stream(0) = %x %x", a, b)
	}
	// Word 7 for seed 12345, as computed by the README's Python snippet.
	FillStream(12345, 56, buf[:8])
	if w := binary.LittleEndian.Uint64(buf); w != 0x6e7411b06820371c {
		t.Errorf("word 7 of seed 12345 = %x", w)
	}
	// Any offset gives the same bytes as the aligned stream.
	all := make([]byte, 4096)
	FillStream(99, 0, all)
	for _, off := range []int64{1, 7, 8, 13, 1000} {
		part := make([]byte, 333)
		FillStream(99, off, part)
		if !bytes.Equal(part, all[off:off+333]) {
			t.Errorf("offset %d differs", off)
		}
	}
}

func TestWriteDiskContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d-flat.vmdk")
	seed := uint64(42)
	spec := &ContentSpec{Kind: "extents", Seed: &seed, Extents: []ExtentSpec{{Offset: 3, Length: 10}, {Offset: 9 << 20, Length: 20 << 20}}}
	if err := WriteDiskContent(p, 16<<20, spec, 0); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil || len(data) != 16<<20 {
		t.Fatalf("size %d err %v", len(data), err)
	}
	full := make([]byte, 16<<20)
	FillStream(seed, 0, full)
	for i := range data {
		in := (i >= 3 && i < 13) || i >= 9<<20
		if in && data[i] != full[i] || !in && data[i] != 0 {
			t.Fatalf("byte %d = %x", i, data[i])
		}
	}
	// Zero content: a hole of the full size.
	if err := WriteDiskContent(p, 1<<30, nil, 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Size() != 1<<30 {
		t.Errorf("zero disk size %d", st.Size())
	}
}
