package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/semaphore"

	"github.com/spoolmq/spool/auth"
)

// Connection handling. Each connection has three goroutines:
//
//   - read decodes frames into requests and queues them on reqs (so the
//     next request is decoded while the current one is handled);
//   - handle (the serve goroutine) runs each request's handler, one at a
//     time, in arrival order, and queues the request on answers;
//   - write takes the requests off answers in the same order, waits until
//     each may be answered (request.finish: a produce's durability) and
//     writes its response.
//
// Why this keeps every guarantee (DESIGN.md invariants 7 and 12):
//   - Handlers run one at a time in request order, and a produce handler
//     returns only after storage has written (and ordered) all of its
//     batches: so the appends of consecutive requests on a connection happen
//     in request order, which an idempotent producer's sequence numbers rely
//     on. Only the durability wait is left to the writer, so the next
//     request's appends join the next group-commit fsync while this one's
//     fsync runs, instead of waiting for it.
//   - answers is a FIFO and write is its only reader: responses go out in
//     request order, as Kafka requires, whatever order the fsyncs finish in.
//   - write calls finish before encoding the response, and a produce's
//     finish returns only once every batch of the request is durable per
//     the fsync mode (or failed, and then says so): no acknowledgement
//     precedes durability.
//   - Bounded: at most maxPendingAnswers requests are handled but not yet
//     answered per connection; then handle blocks, then read.
//
// A request that cannot be decoded, names an unknown API key or an
// unsupported version, or panics closes its connection only, after the
// responses to the requests before it were written.
//
// Memory: a frame is read incrementally, its buffer growing with the bytes
// that arrive, at most frameGrowth times what arrived (a frame announcing
// 100 MiB and sending 10 bytes costs about 64 KiB), and every byte of it is
// reserved against the connection's and the broker's queued-bytes bounds
// (Config.ConnQueuedMaxBytes, QueuedMaxRequestBytes) before it is read,
// until its response is written: requests alias their frame, so the
// reservation covers the request too.
// At a bound, read waits, which is TCP backpressure on the client. A frame
// whose size was read must arrive whole within Config.FrameTimeout; a
// connection with nothing in flight that sends nothing for
// Config.IdleTimeout is closed.

// requestQueue bounds how many decoded requests wait per connection.
const requestQueue = 16

// maxPendingAnswers bounds the requests handled but not yet answered per
// connection (produces waiting for their fsync). Clients keep at most 5
// produce requests in flight per connection with idempotence.
const maxPendingAnswers = 8

// maxKeptResponseBuffer is the largest response buffer a connection keeps
// for its next response; larger ones (big fetches) are dropped after use so
// that idle connections do not pin them.
const maxKeptResponseBuffer = 16 << 20

// frameChunk is the first buffer size of a frame being read, and how much
// of the queued-bytes bounds read reserves at first.
const frameChunk = 64 << 10

// frameGrowth is the factor by which a frame's buffer (and its
// reservation) grows each time it is full: a frame holds at most
// frameGrowth times the bytes that arrived. Each growth zeroes a new buffer
// and copies the old one into it, so a small factor costs CPU on every
// large produce request (with 2, clearing and copying grown buffers was a
// fifth of the broker's CPU at 1 MiB requests); 8 reads a 1 MiB frame in
// three buffers instead of five.
const frameGrowth = 8

// shutdownWriteTimeout bounds how long Close waits for a client to read the
// responses to its in-flight requests.
const shutdownWriteTimeout = 10 * time.Second

type conn struct {
	b      *Broker
	nc     net.Conn
	remote string
	ip     string        // the client's IP, for Config.MaxConnectionsPerIP
	reqs   chan *request // read -> handle
	done   chan struct{} // closed when handle stops taking requests

	// ctx is cancelled when the read side ends (client gone, bad frame or
	// broker shutdown), so long polls return early.
	ctx    context.Context
	cancel context.CancelFunc

	stopOnce sync.Once
	stopping atomic.Bool // set by stop before it moves the read deadline
	buf      []byte      // response encoding buffer, reused

	// queued bounds the bytes of this connection's requests read but not
	// answered; held is what it reserved of queued and of the broker's
	// bound (released per request as answered, the rest when it ends).
	queued *semaphore.Weighted
	held   atomic.Int64
	// inFlight counts requests read but not answered: a connection with
	// one is not idle while the client waits for the answer.
	inFlight atomic.Int32

	// Security (security.go, sasl.go). lis is set before serve starts;
	// the rest is read and written only by the handle goroutine (and by
	// serve before it starts it), so it needs no lock.
	lis       *listener
	principal auth.Principal
	authed    bool         // the listener needs no SASL, or SASL succeeded
	sasl      auth.Session // the exchange in progress after SaslHandshake
	reauthAt  time.Time    // zero, or when the SASL session expires (KIP-368)
}

// request is one decoded request.
type request struct {
	conn     *conn
	ctx      context.Context // cancelled when the connection's read side ends
	api      *api
	key      int16
	version  int16
	corr     int32
	clientID string
	kreq     kmsg.Request // nil for an ApiVersions request of an unsupported version
	reserved int64        // bytes of the queued bounds the frame holds

	// Set by handle, read by write after the hand-off through answers
	// (the channel orders the accesses).
	start time.Time
	resp  kmsg.Response // nil: nothing to answer (acks=0 produce)
	err   error         // the handler failed: close the connection instead
	// closeAfter closes the connection once resp is written (a failed
	// SASL authentication is answered, then the connection ends).
	closeAfter bool
	finish     func() error // if set, write calls it before encoding resp: it waits until resp may be sent and completes it
}

func newConn(b *Broker, nc net.Conn) *conn {
	c := &conn{b: b, nc: nc, remote: nc.RemoteAddr().String(), reqs: make(chan *request, requestQueue), done: make(chan struct{}),
		queued: semaphore.NewWeighted(b.cfg.ConnQueuedMaxBytes)}
	c.ip = c.remote
	if host, _, err := net.SplitHostPort(c.remote); err == nil {
		c.ip = host
	}
	c.ctx, c.cancel = context.WithCancel(b.ctx)
	return c
}

// stop makes the read side end; requests already read are still answered.
func (c *conn) stop() {
	c.stopOnce.Do(func() {
		c.stopping.Store(true)
		c.nc.SetReadDeadline(time.Now())
		c.nc.SetWriteDeadline(time.Now().Add(shutdownWriteTimeout))
	})
}

func (c *conn) serve() {
	defer c.b.wg.Done()
	defer c.b.removeConn(c)
	c.b.metrics.connections.Inc()
	defer c.b.metrics.connections.Dec()
	if err := c.startSecurity(); err != nil {
		c.b.cfg.Logger.Warn("broker: closing connection", "remote", c.remote, "listener", c.lis.cfg.Name, "err", err)
		c.nc.Close()
		c.cancel()
		return
	}

	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		c.read()
	}()
	// Capacity maxPendingAnswers-1 plus the one request write holds.
	answers := make(chan *request, maxPendingAnswers-1)
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		c.writeAll(answers)
	}()
	c.handleAll(answers, writeDone)
	close(answers)
	<-writeDone // every handled request answered, or the connection failed
	for range answers {
		c.b.metrics.inFlight.Dec() // not answered: the connection failed
	}
	c.nc.Close()
	c.cancel()
	<-readDone
	left := c.held.Swap(0) // requests never answered, a frame cut short
	c.b.queued.Release(left)
	c.b.metrics.queuedBytes.Sub(float64(left))
}

// reserve takes n bytes of the connection's and the broker's queued bounds,
// waiting while either is exhausted; false when the connection ends first.
func (c *conn) reserve(n int64) bool {
	if err := c.queued.Acquire(c.ctx, n); err != nil {
		return false
	}
	if err := c.b.queued.Acquire(c.ctx, n); err != nil {
		c.queued.Release(n)
		return false
	}
	c.held.Add(n)
	c.b.metrics.queuedBytes.Add(float64(n))
	return true
}

// unreserve gives back n bytes reserved by reserve.
func (c *conn) unreserve(n int64) {
	if n == 0 {
		return
	}
	c.held.Add(-n)
	c.b.metrics.queuedBytes.Sub(float64(n))
	c.b.queued.Release(n)
	c.queued.Release(n)
}

// setReadDeadline sets the read deadline to d from now, unless stop has
// moved it (then false: the read side must end). stop sets stopping before
// its deadline, and this checks it after setting its own, so one of the
// two sees the other.
func (c *conn) setReadDeadline(d time.Duration) bool {
	var t time.Time
	if d > 0 {
		t = time.Now().Add(d)
	}
	c.nc.SetReadDeadline(t)
	return !c.stopping.Load()
}

// read decodes frames until the connection ends or a frame is bad.
func (c *conn) read() {
	defer close(c.reqs)
	defer c.cancel()
	defer func() {
		if r := recover(); r != nil {
			c.b.cfg.Logger.Error("broker: panic decoding request; closing connection", "remote", c.remote, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	br := bufio.NewReaderSize(c.nc, 32<<10)
	var size [4]byte
	for {
		if !c.setReadDeadline(c.b.cfg.IdleTimeout) {
			return
		}
		got, err := io.ReadFull(br, size[:])
		if err != nil {
			var ne net.Error
			if got == 0 && errors.As(err, &ne) && ne.Timeout() && !c.stopping.Load() {
				if c.inFlight.Load() > 0 {
					continue // waiting for an answer is not idle
				}
				c.b.cfg.Logger.Debug("broker: idle connection closed", "remote", c.remote, "idle", c.b.cfg.IdleTimeout)
				return
			}
			if !isClosedErr(err) || got > 0 {
				c.b.cfg.Logger.Debug("broker: read", "remote", c.remote, "err", err)
			}
			return
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 0 || n > c.b.cfg.MaxFrameBytes {
			c.b.cfg.Logger.Warn("broker: request frame larger than the maximum; closing connection", "remote", c.remote, "size", uint32(n), "max", c.b.cfg.MaxFrameBytes)
			return
		}
		if !c.setReadDeadline(c.b.cfg.FrameTimeout) {
			return
		}
		frame, reserved, err := c.readFrame(br, int(n))
		if err != nil {
			c.unreserve(reserved)
			c.b.cfg.Logger.Warn("broker: truncated or stalled request frame; closing connection", "remote", c.remote, "size", n, "err", err)
			return
		}
		c.b.metrics.bytesIn.Add(float64(n + 4))
		req, err := decodeRequest(c.b.apis, frame)
		if err != nil {
			c.unreserve(reserved)
			c.b.cfg.Logger.Warn("broker: bad request; closing connection", "remote", c.remote, "err", err)
			return
		}
		req.conn, req.ctx, req.reserved = c, c.ctx, reserved
		c.inFlight.Add(1)
		select {
		case c.reqs <- req:
		case <-c.done:
			return
		}
	}
}

// readFrame reads an n-byte frame, growing its buffer (and its reservation
// of the queued bounds) as the bytes arrive. It returns the bytes reserved
// also on error, for the caller to give back.
func (c *conn) readFrame(br *bufio.Reader, n int) ([]byte, int64, error) {
	var reserved int64
	first := min(n, frameChunk)
	if !c.reserve(int64(first)) {
		return nil, 0, errors.New("connection closed while waiting for queued requests to be answered")
	}
	reserved = int64(first)
	frame := make([]byte, 0, first)
	for len(frame) < n {
		if int64(len(frame)) == reserved {
			target := min(int64(n), frameGrowth*reserved)
			if !c.reserve(target - reserved) {
				return nil, reserved, errors.New("connection closed while waiting for queued requests to be answered")
			}
			frame = slices.Grow(frame, int(target)-len(frame))
			reserved = target
		}
		// Read only into what is reserved (cap may be rounded up).
		m, err := br.Read(frame[len(frame):reserved])
		frame = frame[:len(frame)+m]
		if err != nil && len(frame) < n {
			return nil, reserved, fmt.Errorf("%d of %d bytes: %w", len(frame), n, err)
		}
	}
	return frame, reserved, nil
}

// handleAll handles queued requests in order and passes them to writeAll,
// until the queue closes (read ended; Close), a handler fails, or writeAll
// stopped.
func (c *conn) handleAll(answers chan<- *request, writeDone <-chan struct{}) {
	defer close(c.done)
	for {
		var req *request
		select {
		case r, ok := <-c.reqs:
			if !ok {
				return
			}
			req = r
		case <-writeDone:
			return
		}
		c.handle(req)
		select {
		case answers <- req: // blocks while maxPendingAnswers are pending
		case <-writeDone:
			c.b.metrics.inFlight.Dec()
			return
		}
		if req.err != nil {
			return // writeAll logs it and closes the connection
		}
		if req.closeAfter {
			return // writeAll answers it; then the connection closes
		}
	}
}

// handle runs one request's handler; the response (or error) is left in
// req for writeAll. A panic is recovered and reported as an error: the
// connection closes, the broker and every other connection carry on.
func (c *conn) handle(req *request) {
	defer func() {
		if r := recover(); r != nil {
			c.b.metrics.panics.Inc()
			c.b.cfg.Logger.Error("broker: panic handling request", "remote", c.remote, "api_key", req.key, "version", req.version, "panic", r, "stack", string(debug.Stack()))
			req.resp, req.finish = nil, nil
			req.err = fmt.Errorf("broker: panic handling request: %v", r)
		}
	}()
	req.start = time.Now()
	c.b.metrics.inFlight.Inc() // until writeAll is done with it
	if h := c.b.hooks.Load(); h != nil && h.handling != nil {
		h.handling(req.key)
	}
	if err := c.checkAuthenticated(req); err != nil {
		req.err = err
		return
	}
	if req.kreq == nil {
		req.resp = unsupportedApiVersions(req)
	} else {
		req.resp, req.err = req.api.handle(c.b, req)
	}
}

// writeAll answers handled requests in order until answers closes (after
// handleAll ended: every handled request is answered) or the connection
// fails.
func (c *conn) writeAll(answers <-chan *request) {
	for req := range answers {
		if err := c.answer(req); err != nil {
			level := slog.LevelWarn
			if isClosedErr(err) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
				level = slog.LevelDebug // the client went away first
			}
			c.b.cfg.Logger.Log(c.ctx, level, "broker: closing connection", "remote", c.remote, "api_key", req.key, "version", req.version, "err", err)
			return
		}
	}
}

// answer waits until req may be answered and writes its response.
func (c *conn) answer(req *request) (err error) {
	defer c.b.metrics.inFlight.Dec()
	defer func() {
		c.inFlight.Add(-1)
		c.unreserve(req.reserved)
	}()
	defer func() {
		if r := recover(); r != nil {
			c.b.metrics.panics.Inc()
			c.b.cfg.Logger.Error("broker: panic completing request", "remote", c.remote, "api_key", req.key, "version", req.version, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("broker: panic completing request: %v", r)
		}
	}()
	err = req.err
	if err == nil && req.finish != nil {
		err = req.finish()
	}
	c.b.metrics.observe(req.key, time.Since(req.start), err)
	if err != nil || req.resp == nil { // nil: nothing to answer (acks=0 produce)
		return err
	}
	resp := req.resp
	c.buf = append(c.buf[:0], 0, 0, 0, 0)
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(req.corr))
	// Flexible responses have header v1 (tagged fields), except
	// ApiVersions, whose response header is always v0 so that a client
	// can parse it before it knows our versions.
	if resp.IsFlexible() && resp.Key() != 18 {
		c.buf = append(c.buf, 0)
	}
	c.buf = resp.AppendTo(c.buf)
	binary.BigEndian.PutUint32(c.buf, uint32(len(c.buf)-4))
	if _, err := c.nc.Write(c.buf); err != nil {
		return fmt.Errorf("broker: write response: %w", err)
	}
	c.b.metrics.bytesOut.Add(float64(len(c.buf)))
	if cap(c.buf) > maxKeptResponseBuffer {
		c.buf = nil // do not pin a large fetch's buffer to an idle connection
	}
	return nil
}

// decodeRequest parses a request frame (without its size prefix): the
// request header, then the body with kmsg at the header's version. Strings
// and byte slices in the request alias frame.
func decodeRequest(apis []api, frame []byte) (*request, error) {
	r := kbin.Reader{Src: frame}
	req := &request{key: r.Int16(), version: r.Int16(), corr: r.Int32()}
	clientID := r.NullableString()
	if !r.Ok() {
		return nil, fmt.Errorf("broker: truncated request header (%d bytes)", len(frame))
	}
	if clientID != nil {
		req.clientID = *clientID
	}
	if req.key < 0 || int(req.key) >= len(apis) || apis[req.key].handle == nil {
		return nil, fmt.Errorf("broker: unknown API key %d", req.key)
	}
	req.api = &apis[req.key]
	if req.version < req.api.min || req.version > req.api.max {
		if req.key == 18 {
			// Answered with UNSUPPORTED_VERSION and our range (KIP-511);
			// the body is in a format we may not know, so it is not read.
			return req, nil
		}
		return nil, fmt.Errorf("broker: API key %d version %d not supported (we serve %d-%d)", req.key, req.version, req.api.min, req.api.max)
	}
	kreq := kmsg.RequestForKey(req.key)
	if kreq == nil {
		return nil, fmt.Errorf("broker: unknown API key %d", req.key)
	}
	kreq.SetVersion(req.version)
	if kreq.IsFlexible() {
		// kmsg.SkipTags loops once per announced tag even after the input
		// ran out: a 5-byte count of 4 billion would burn CPU for seconds.
		// Each tag takes at least two bytes, so a larger count is invalid.
		if peek := r; uint64(peek.Uvarint()) > uint64(len(r.Src)/2) {
			return nil, errors.New("broker: request header announces more tagged fields than it has bytes")
		}
		kmsg.SkipTags(&r)
		if !r.Ok() {
			return nil, errors.New("broker: truncated request header tags")
		}
	}
	var err error
	if u, ok := kreq.(interface{ UnsafeReadFrom([]byte) error }); ok {
		err = u.UnsafeReadFrom(r.Src)
	} else {
		err = kreq.ReadFrom(r.Src)
	}
	if err != nil {
		return nil, fmt.Errorf("broker: decode API key %d version %d: %w", req.key, req.version, err)
	}
	req.kreq = kreq
	return req, nil
}

func isClosedErr(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) && ne.Timeout()
}
