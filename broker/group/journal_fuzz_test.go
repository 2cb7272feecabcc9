package group

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzJournalFrames feeds the journal reader arbitrary bytes, and arbitrary
// payloads in well-formed frames (so the fuzzer gets past the checksum to
// the JSON and the image): no panic, the good prefix is within the input,
// and the image it builds encodes to frames that read back to the same
// image.
func FuzzJournalFrames(f *testing.F) {
	var seed []byte
	for _, e := range []*entry{
		{Group: "g", Topic: "t", Partition: 1, Offset: &offsetRecord{Offset: 5, LeaderEpoch: -1, Metadata: "m", CommitMs: 7}},
		{Group: "g", Meta: &groupRecord{ProtocolType: "consumer", Protocol: "range", Generation: 3}},
		{Group: "g", Topic: "t", Partition: 1, Delete: true},
		{Group: "g", Delete: true},
	} {
		seed = appendFrame(seed, e)
	}
	f.Add(seed, []byte(`{"g":"x","t":"y","p":-1,"o":{"offset":-5}}`))
	f.Add([]byte{0, 0, 0, 1}, []byte(`{"g":"","d":true}`))
	f.Fuzz(func(t *testing.T, data, payload []byte) {
		im := image{}
		good, err := readFrames(data, im.apply)
		if good < 0 || good > int64(len(data)) || (err == nil && good != int64(len(data))) {
			t.Fatalf("good prefix %d of %d bytes (err %v)", good, len(data), err)
		}
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
		frame = binary.BigEndian.AppendUint32(frame, crc32.Checksum(payload, crcTable))
		readFrames(append(frame, payload...), im.apply)

		var again []byte
		for _, e := range im {
			again = appendFrame(again, e)
		}
		im2 := image{}
		if n, err := readFrames(again, im2.apply); err != nil || n != int64(len(again)) {
			t.Fatalf("re-encoded image does not read back: %d of %d bytes, %v", n, len(again), err)
		}
		if len(im2) != len(im) {
			t.Fatalf("image of %d entries reads back as %d", len(im), len(im2))
		}
		for k, e := range im {
			if !bytes.Equal(appendFrame(nil, e), appendFrame(nil, im2[k])) {
				t.Fatalf("entry %+v read back as %+v", e, im2[k])
			}
		}
	})
}
