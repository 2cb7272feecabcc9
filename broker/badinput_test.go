package broker_test

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/spooltest"
)

// Every bad frame closes its own connection only: another connection,
// opened before and used after, is still served, and so are new ones.
func TestBadFramesCloseOnlyTheirConnection(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) { c.MaxFrameBytes = 1 << 20 }))
	bystander := dialRaw(t, srv.Addr())
	bystander.roundTrip(kmsg.NewPtrApiVersionsRequest())

	frame := func(body []byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	metadataFrame := kmsg.NewRequestFormatter().AppendRequest(nil, func() kmsg.Request {
		r := kmsg.NewPtrMetadataRequest()
		r.Version = 9
		return r
	}(), 1)
	cases := map[string][]byte{
		"oversized frame":          binary.BigEndian.AppendUint32(nil, 1<<20+1),
		"negative frame size":      binary.BigEndian.AppendUint32(nil, 0xfffffff0),
		"empty frame":              frame(nil),
		"truncated header":         frame([]byte{0, 3, 0}),
		"unknown api key":          frame([]byte{0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0, 0}),
		"negative api key":         frame([]byte{0xff, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0}),
		"unsupported version":      frame([]byte{0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff}),
		"fetch below served range": frame([]byte{0, 1, 0, 0, 0, 0, 0, 1, 0xff, 0xff}),
		"truncated body":           frame(metadataFrame[4 : len(metadataFrame)-1]),
		"garbage body":             frame(append([]byte{0, 3, 0, 9, 0, 0, 0, 1, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)),
		"frame cut short then EOF": binary.BigEndian.AppendUint32(nil, 100),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			rc := dialRaw(t, srv.Addr())
			rc.write(b)
			if name == "frame cut short then EOF" {
				rc.c.(interface{ CloseWrite() error }).CloseWrite()
			}
			rc.expectClosed()
			checkServing(t, srv.Addr())
			if r := bystander.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
				t.Fatalf("bystander: %s", errName(r.ErrorCode))
			}
		})
	}
}

// A valid request pipelined after several others on one connection is
// answered in order.
func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	srv := spooltest.Start(t)
	rc := dialRaw(t, srv.Addr())
	var corrs []int32
	for i := range 50 {
		if i%2 == 0 {
			corrs = append(corrs, rc.send(kmsg.NewPtrApiVersionsRequest()))
		} else {
			md := kmsg.NewPtrMetadataRequest()
			md.Version = 12
			corrs = append(corrs, rc.send(md))
		}
	}
	for i, corr := range corrs {
		var resp kmsg.Response
		if i%2 == 0 {
			resp = kmsg.NewPtrApiVersionsResponse()
		} else {
			r := kmsg.NewPtrMetadataResponse()
			r.Version = 12
			resp = r
		}
		rc.recv(corr, resp)
	}
}

func TestBadInputErrorsKeepConnection(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithoutAutoCreate())
	adm, _ := newAdmin(t, srv)
	createTopic(t, adm, "t", 1, nil)
	rc := dialRaw(t, srv.Addr())
	other := dialRaw(t, srv.Addr())

	// Corrupt CRC: CORRUPT_MESSAGE, nothing written.
	bad := makeBatch(1, "a")
	bad[30] ^= 1
	if sp := produceRaw(t, rc, "t", 0, bad); sp.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("corrupt CRC: %s", errName(sp.ErrorCode))
	}
	// Unknown topic with auto-create off.
	if sp := produceRaw(t, rc, "missing", 0, makeBatch(1, "a")); sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %s", errName(sp.ErrorCode))
	}
	// Invalid topic names in Metadata and CreateTopics.
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	md.AllowAutoTopicCreation = true
	for _, n := range []string{"", "a b", "..", "ü"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(n)
		md.Topics = append(md.Topics, mt)
	}
	for _, tp := range rc.roundTrip(md).(*kmsg.MetadataResponse).Topics {
		if tp.ErrorCode != kerr.InvalidTopicException.Code {
			t.Errorf("metadata for invalid name %q: %s", *tp.Topic, errName(tp.ErrorCode))
		}
	}
	// Out-of-range fetch offsets, below and above.
	for _, off := range []int64{-5, 1} {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 12
		req.MaxBytes, req.SessionEpoch, req.MaxWaitMillis = 1<<20, -1, 10
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "t"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes = off, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		if p := rc.roundTrip(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Errorf("fetch offset %d: %s", off, errName(p.ErrorCode))
		}
	}
	checkServing(t, srv.Addr())
	if r := other.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("other connection: %s", errName(r.ErrorCode))
	}
}
