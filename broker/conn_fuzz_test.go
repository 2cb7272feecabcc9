package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecodeRequest feeds arbitrary frames to the request decoding path:
// it must never panic, and a frame it accepts must re-encode (kmsg) to a
// frame that decodes to the same request.
func FuzzDecodeRequest(f *testing.F) {
	apis := buildAPIs(apiTable())
	fm := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for _, a := range apis {
		if a.handle == nil {
			continue
		}
		for _, v := range []int16{a.min, a.max} {
			req := kmsg.RequestForKey(a.key)
			req.SetVersion(v)
			f.Add(fm.AppendRequest(nil, req, 1)[4:])
		}
	}
	produce := kmsg.NewPtrProduceRequest()
	produce.Version = 9
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = []byte("records")
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	f.Add(fm.AppendRequest(nil, produce, 2)[4:])
	f.Add([]byte{})
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := decodeRequest(apis, bytes.Clone(frame))
		if err != nil || req.kreq == nil {
			return
		}
		again := fm.AppendRequest(nil, req.kreq, req.corr)[4:]
		req2, err := decodeRequest(apis, again)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if req2.key != req.key || req2.version != req.version || req2.corr != req.corr {
			t.Fatalf("header changed: %d/%d/%d -> %d/%d/%d", req.key, req.version, req.corr, req2.key, req2.version, req2.corr)
		}
		if a, b := req.kreq.AppendTo(nil), req2.kreq.AppendTo(nil); !bytes.Equal(a, b) {
			t.Fatalf("parse-encode-parse not stable for key %d v%d", req.key, req.version)
		}
	})
}
