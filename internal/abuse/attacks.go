package abuse

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Conn is a raw Kafka connection: requests encoded with kmsg, one at a time
// or pipelined.
type Conn struct {
	c    net.Conn
	corr int32
	f    *kmsg.RequestFormatter
}

// Dial opens a raw connection to addr.
func Dial(ctx context.Context, addr string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("abuse"))}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Send writes req and returns its correlation ID.
func (c *Conn) Send(req kmsg.Request) (int32, error) {
	c.corr++
	c.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := c.c.Write(c.f.AppendRequest(nil, req, c.corr))
	return c.corr, err
}

// Recv reads the response to corr into resp (whose version must match the
// request's).
func (c *Conn) Recv(corr int32, resp kmsg.Response) error {
	c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.c, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.c, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return fmt.Errorf("abuse: response correlation ID %d, want %d", got, corr)
	}
	body = body[4:]
	if resp.IsFlexible() && resp.Key() != 18 {
		body = body[1:]
	}
	return resp.ReadFrom(body)
}

// RoundTrip sends req and reads its response.
func (c *Conn) RoundTrip(req kmsg.Request) (kmsg.Response, error) {
	corr, err := c.Send(req)
	if err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	return resp, c.Recv(corr, resp)
}

// Closed reports whether the broker closes the connection (EOF or reset)
// within wait, without answering.
func (c *Conn) Closed(wait time.Duration) bool {
	c.c.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	_, err := c.c.Read(b[:])
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// Produce sends one batch to topic/partition (Produce v9, acks=all) and
// returns the partition's error code and base offset.
func (c *Conn) Produce(topic string, partition int32, batch []byte) (int16, int64, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := c.RoundTrip(req)
	if err != nil {
		return 0, 0, err
	}
	p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset, nil
}

// Connections opens n connections that send nothing and reports how many
// the broker kept open (the rest it closed at once, over its connection
// limits). They are closed when ctx ends or release is called.
func Connections(ctx context.Context, addr string, n int) (kept int, release func(), err error) {
	conns := make([]net.Conn, 0, n)
	release = func() {
		for _, c := range conns {
			c.Close()
		}
	}
	var d net.Dialer
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			release()
			return 0, nil, err
		}
		conns = append(conns, c)
	}
	// A refused connection is closed by the broker right after accept; a
	// kept one answers ApiVersions.
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, nc := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c := &Conn{c: nc, f: kmsg.NewRequestFormatter()}
			if _, err := c.RoundTrip(kmsg.NewPtrApiVersionsRequest()); err == nil {
				mu.Lock()
				kept++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return kept, release, nil
}

// StalledFrames opens n connections that each announce a frame of size
// bytes, send sent bytes of it and stall. release closes them.
func StalledFrames(ctx context.Context, addr string, n, size, sent int) (release func(), err error) {
	var conns []net.Conn
	release = func() {
		for _, c := range conns {
			c.Close()
		}
	}
	var d net.Dialer
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			release()
			return nil, err
		}
		conns = append(conns, c)
		frame := binary.BigEndian.AppendUint32(nil, uint32(size))
		frame = append(frame, 0, 0, 0, 9, 0, 0, 0, 1) // Produce v9 header start
		frame = append(frame, make([]byte, max(0, sent-8))...)
		if _, err := c.Write(frame); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

// GarbageFrames sends n frames that are truncated (the connection closes
// for writing mid-frame), or well framed but garbage, or announce a
// negative or oversized size, each on its own connection, and returns how
// many the broker answered (it should answer none: each is closed).
func GarbageFrames(ctx context.Context, addr string, n int, seed uint64) (answered int, err error) {
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range n {
		c, err := Dial(ctx, addr)
		if err != nil {
			return answered, err
		}
		body := make([]byte, 1+rng.IntN(200))
		for j := range body {
			body[j] = byte(rng.UintN(256))
		}
		var frame []byte
		switch i % 4 {
		case 0: // truncated: announces more than it sends
			frame = append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+100)), body...)
		case 1: // garbage body, any header
			frame = append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
		case 2: // negative size
			frame = binary.BigEndian.AppendUint32(nil, 0x80000000|uint32(rng.UintN(1<<31)))
		case 3: // a valid header for Metadata v12 and a garbage body
			frame = append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+10)), 0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff)
			frame = append(frame, body...)
		}
		c.c.Write(frame)
		if i%4 == 0 {
			c.c.(*net.TCPConn).CloseWrite()
		}
		if !c.Closed(30 * time.Second) {
			answered++
		}
		c.Close()
	}
	return answered, nil
}

// StreamBomb returns a batch of one record whose value is size zero bytes,
// compressed with codec (gzip, lz4 or zstd) without ever holding the value
// in memory.
func StreamBomb(codec int16, firstTimestamp int64, size int) Batch {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch codec {
	case 1:
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestCompression)
	case 3:
		w = lz4.NewWriter(&buf)
	case 4:
		w, _ = zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	default:
		panic("abuse: StreamBomb: codec must be gzip, lz4 or zstd")
	}
	// The record: length, attributes, timestamp and offset deltas, key -1,
	// value length, value, no headers.
	var body []byte
	body = append(body, 0)
	body = binary.AppendVarint(body, 0)
	body = binary.AppendVarint(body, 0)
	body = binary.AppendVarint(body, -1)
	body = binary.AppendVarint(body, int64(size))
	head := binary.AppendVarint(nil, int64(len(body)+size+1))
	w.Write(append(head, body...))
	zeros := make([]byte, 1<<20)
	for left := size; left > 0; left -= len(zeros) {
		w.Write(zeros[:min(left, len(zeros))])
	}
	w.Write([]byte{0})
	w.Close()
	return Batch{Attributes: codec, FirstTimestamp: firstTimestamp, NumRecords: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: buf.Bytes()}
}

// JoinFlood sends n JoinGroup requests (v5, pipelined) with no member ID
// to groups named prefix-0 .. prefix-(groups-1), then n with made-up member
// IDs, and counts the error codes of the answers.
func JoinFlood(ctx context.Context, addr, prefix string, groups, n int) (map[int16]int, error) {
	c, err := Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	codes := map[int16]int{}
	const window = 100
	var pending []int32
	recv := func() error {
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.Version = 5
		if err := c.Recv(pending[0], resp); err != nil {
			return err
		}
		pending = pending[1:]
		codes[resp.ErrorCode]++
		return nil
	}
	for i := range 2 * n {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version, req.Group, req.ProtocolType = 5, fmt.Sprintf("%s-%d", prefix, i%groups), "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 30000
		if i >= n {
			req.MemberID = fmt.Sprintf("made-up-%d", i)
		}
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0}
		req.Protocols = append(req.Protocols, p)
		corr, err := c.Send(req)
		if err != nil {
			return codes, err
		}
		pending = append(pending, corr)
		if len(pending) == window {
			if err := recv(); err != nil {
				return codes, err
			}
		}
	}
	for len(pending) > 0 {
		if err := recv(); err != nil {
			return codes, err
		}
	}
	return codes, nil
}

// MadeUpProducerIDs produces n idempotent batches with random producer IDs
// (never allocated by InitProducerId) to topic/0 and counts the error codes.
func MadeUpProducerIDs(ctx context.Context, addr, topic string, n int, seed uint64) (map[int16]int, error) {
	c, err := Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(seed, seed))
	codes := map[int16]int{}
	now := time.Now().UnixMilli()
	for range n {
		b := Plain(now, 1, 10)
		b.ProducerID, b.ProducerEpoch, b.BaseSequence = int64(rng.Uint64N(1<<62)), 0, 0
		code, _, err := c.Produce(topic, 0, b.Encode())
		if err != nil {
			return codes, err
		}
		codes[code]++
	}
	return codes, nil
}

// HugeFetch fetches topic/0 from offset 0 asking for 2 GiB (request and
// partition maximum) and returns the bytes of records in the answer.
func HugeFetch(ctx context.Context, addr, topic string) (int, int16, error) {
	c, err := Dial(ctx, addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.SessionEpoch, req.MaxWaitMillis = 12, 1<<31-1, -1, 100
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1<<31 - 1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := c.RoundTrip(req)
	if err != nil {
		return 0, 0, err
	}
	p := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	return len(p.RecordBatches), p.ErrorCode, nil
}

// ErrName is the Kafka name of an error code ("none" for 0).
func ErrName(code int16) string {
	if code == 0 {
		return "none"
	}
	return kerr.ErrorForCode(code).Error()
}
