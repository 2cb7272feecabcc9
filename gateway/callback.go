package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/spoolmq/spool/internal/httpapi"
)

// CallbackConfig configures result callbacks, signed per Standard Webhooks
// (https://www.standardwebhooks.com): headers webhook-id,
// webhook-timestamp and webhook-signature "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>".
type CallbackConfig struct {
	// Allow lists the callback targets a submit may name: URL prefixes
	// (scheme, host and port exact, path a prefix), such as
	// "https://hooks.example.com/spool/". Default none: callbacks are
	// refused. Redirects are never followed.
	Allow []string
	// Secret signs the callbacks: "whsec_" and base64 of at least 24
	// bytes. Required when Allow is set.
	Secret string
	// Schedule is the delay before each attempt (the first is usually 0).
	// Default Standard Webhooks': 0, 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h,
	// 24h (10 attempts over about 75 hours).
	Schedule []time.Duration
	// Timeout bounds one attempt. Default 15s.
	Timeout time.Duration
	// DeadLetterTopic receives a callback after its last attempt failed.
	// Default "spool.gateway.callbacks.dlq".
	DeadLetterTopic string
	// Poll is how often the store is checked for due callbacks (completions
	// on this instance are delivered at once). Default 1s.
	Poll time.Duration
	// Client sends the callbacks. Default: an http.Client with Timeout
	// that follows no redirects.
	Client *http.Client
}

// DefaultSchedule is Standard Webhooks' retry schedule.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}

func (c CallbackConfig) withDefaults() CallbackConfig {
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultSchedule
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = "spool.gateway.callbacks.dlq"
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	return c
}

func (c CallbackConfig) validate() error {
	for _, a := range c.Allow {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("gateway: callback allow-list entry %q: want an http(s) URL prefix such as https://hooks.example.com/", a)
		}
	}
	if len(c.Allow) > 0 {
		if _, err := secretKey(c.Secret); err != nil {
			return err
		}
	}
	return nil
}

// secretKey decodes a whsec_ secret.
func secretKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || !strings.HasPrefix(s, "whsec_") || len(k) < 24 {
		return nil, fmt.Errorf("gateway: callback secret: want whsec_ and base64 of at least 24 random bytes")
	}
	return k, nil
}

// check refuses a callback URL outside the allow-list (SSRF guard).
func (c CallbackConfig) check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return httpapi.Errorf(http.StatusBadRequest, "callback %q is not an absolute http(s) URL without credentials", raw)
	}
	for _, a := range c.Allow {
		p, _ := url.Parse(a)
		if strings.EqualFold(p.Scheme, u.Scheme) && strings.EqualFold(p.Host, u.Host) && strings.HasPrefix(u.EscapedPath(), p.EscapedPath()) {
			return nil
		}
	}
	if len(c.Allow) == 0 {
		return httpapi.Errorf(http.StatusBadRequest, "callbacks are off on this gateway (no callback allow-list is configured)")
	}
	return httpapi.Errorf(http.StatusBadRequest, "callback %q is not in the gateway's callback allow-list", raw)
}

// Sign returns the webhook-signature value for a message, per Standard
// Webhooks. Receivers verify with the same computation.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	k, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, k)
	fmt.Fprintf(m, "%s.%d.", id, ts.Unix())
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// callbacks delivers due callbacks: completions on this instance at once
// (kick), the rest when the store poll finds them (other instances'
// completions, retries, leases that ran out in a crash).
type callbacks struct {
	g    *Gateway
	cfg  CallbackConfig
	wake chan struct{}
	wg   sync.WaitGroup
	sem  chan struct{}
}

func newCallbacks(g *Gateway) *callbacks {
	return &callbacks{g: g, cfg: g.cfg.Callback, wake: make(chan struct{}, 1), sem: make(chan struct{}, 8)}
}

func (c *callbacks) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *callbacks) wait() { c.wg.Wait() }

func (c *callbacks) run(ctx context.Context) {
	t := time.NewTicker(c.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
		for ctx.Err() == nil {
			// Lease for longer than an attempt can take, so a slow target
			// is not sent the same attempt by a second instance.
			rs, err := c.g.store.ClaimCallbacks(ctx, time.Now(), 2*c.cfg.Timeout+5*time.Second, cap(c.sem))
			if err != nil {
				if ctx.Err() == nil {
					c.g.log.Warn("gateway: claim callbacks", "err", err)
				}
				break
			}
			for _, r := range rs {
				c.sem <- struct{}{}
				c.wg.Add(1)
				go func() {
					defer func() { <-c.sem; c.wg.Done() }()
					c.deliver(ctx, r)
				}()
			}
			if len(rs) < cap(c.sem) {
				break
			}
		}
	}
}

// deliver makes one attempt and records it.
func (c *callbacks) deliver(ctx context.Context, r *Request) {
	body, err := json.Marshal(statusDoc(r))
	if err != nil {
		return
	}
	msgID := "msg_" + r.ID
	now := time.Now()
	att := Attempt{At: now.UTC()}
	retryAfter := time.Duration(0)
	if err := c.cfg.check(r.CallbackURL); err != nil {
		// The allow-list changed since the submit.
		att.Error = err.Error()
		c.save(ctx, r, append(r.CallbackAttempts, att), CallbackDead, time.Time{}, body)
		return
	}
	sig, err := Sign(c.cfg.Secret, msgID, now, body)
	if err == nil {
		var req *http.Request
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, r.CallbackURL, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("webhook-id", msgID)
			req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
			req.Header.Set("webhook-signature", sig)
			req.Header.Set("User-Agent", "spool-gateway")
			var resp *http.Response
			resp, err = c.cfg.Client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				att.Status = resp.StatusCode
				retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
			}
		}
	}
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and the attempt is made again
	}
	if err != nil {
		att.Error = err.Error()
	} else if att.Status < 200 || att.Status > 299 {
		att.Error = fmt.Sprintf("target answered %d", att.Status)
	}
	attempts := append(r.CallbackAttempts, att)
	switch {
	case att.Error == "":
		c.save(ctx, r, attempts, CallbackDelivered, time.Time{}, body)
	case att.Status == http.StatusGone:
		c.save(ctx, r, attempts, CallbackGone, time.Time{}, body)
	case len(attempts) >= len(c.cfg.Schedule):
		c.save(ctx, r, attempts, CallbackDead, time.Time{}, body)
	default:
		delay := c.cfg.Schedule[len(attempts)]
		if retryAfter > delay {
			delay = min(retryAfter, 24*time.Hour)
		}
		c.save(ctx, r, attempts, CallbackPending, now.Add(delay), body)
	}
}

func (c *callbacks) save(ctx context.Context, r *Request, attempts []Attempt, state string, next time.Time, body []byte) {
	if state == CallbackDead {
		if err := c.deadLetter(ctx, r, attempts, body); err != nil {
			// Not recorded: the lease runs out and the last attempt is
			// made again, then the dead letter.
			c.g.log.Error("gateway: callback dead letter", "id", r.ID, "err", err)
			return
		}
	}
	if err := c.g.store.SaveCallback(ctx, r.ID, state, attempts, next); err != nil {
		c.g.log.Error("gateway: save callback", "id", r.ID, "err", err)
		return
	}
	c.g.cfg.Hooks.CallbackAttempt(state)
	c.g.hub.notify(r.ID, nil)
	if state == CallbackDead || state == CallbackGone {
		c.g.log.Warn("gateway: callback given up", "id", r.ID, "url", r.CallbackURL, "state", state, "attempts", len(attempts))
	}
}

// deadLetter publishes the undelivered callback: its body, the webhook
// headers, the target and the last error.
func (c *callbacks) deadLetter(ctx context.Context, r *Request, attempts []Attempt, body []byte) error {
	last := attempts[len(attempts)-1]
	rec := &kgo.Record{Topic: c.cfg.DeadLetterTopic, Key: []byte(r.ID), Value: body, Headers: []kgo.RecordHeader{
		{Key: HeaderCorrelationID, Value: []byte(r.ID)},
		{Key: "webhook-id", Value: []byte("msg_" + r.ID)},
		{Key: "spool_callback_url", Value: []byte(r.CallbackURL)},
		{Key: "dlq_reason", Value: []byte("callback-undelivered")},
		{Key: "dlq_error", Value: []byte(last.Error)},
		{Key: "dlq_attempts", Value: []byte(strconv.Itoa(len(attempts)))},
		{Key: "content-type", Value: []byte("application/json")},
	}}
	res, err := c.g.produceWait([]*kgo.Record{rec}, nil)
	if err == nil {
		err = res.FirstErr()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		pctx, cancel := context.WithTimeout(ctx, c.g.cfg.ProduceTimeout)
		defer cancel()
		if cerr := c.g.ensureTopic(pctx, rec.Topic); cerr == nil {
			if res, err = c.g.produceWait([]*kgo.Record{rec}, nil); err == nil {
				err = res.FirstErr()
			}
		}
	}
	// On errUnacked the dead letter may still be written: the lease runs
	// out, the attempt is made again and a second dead letter may follow
	// (at-least-once).
	return err
}

// parseRetryAfter reads seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}
