package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Every instance reads every partition of the reply topic (no consumer
// group): each one applies each reply to the shared store (a transition
// from an open state, so applying twice is harmless) and wakes its own
// waiters at once. Read positions are saved to the store after the replies
// before them are applied, and only ever raised; a (re)starting instance
// resumes from them, so a reply that arrived while every instance was down
// is applied on the next start.
//
// partitions added to the reply topic later are read after a restart.

// startReplies makes sure the reply topic exists and returns a client that
// consumes it from the stored positions (from the end for partitions
// without one: no request can be waiting on them).
func (g *Gateway) startReplies(ctx context.Context) (*kgo.Client, error) {
	topic := g.cfg.ReplyTopic
	if err := g.ensureTopic(ctx, topic); err != nil {
		return nil, err
	}
	stored, err := g.store.Positions(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := g.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("gateway: reply topic %s end offsets: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("gateway: reply topic %s end offsets: %w", topic, err)
	}
	offsets := map[int32]kgo.Offset{}
	fresh := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if at, ok := stored[o.Partition]; ok {
			offsets[o.Partition] = kgo.NewOffset().At(at)
			return
		}
		offsets[o.Partition] = kgo.NewOffset().At(o.Offset)
		fresh[o.Partition] = o.Offset
	})
	if len(offsets) == 0 {
		return nil, fmt.Errorf("gateway: reply topic %s has no partitions", topic)
	}
	// Pin the starting point of new partitions, so a restart does not skip
	// replies produced while it was down.
	if err := g.store.SavePositions(ctx, topic, fresh); err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(g.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, g.cfg.ClientOptions...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("gateway: reply consumer: %w", err)
	}
	return cl, nil
}

// consumeReplies applies replies until the gateway closes.
func (g *Gateway) consumeReplies(cl *kgo.Client) {
	defer cl.Close()
	topic := g.cfg.ReplyTopic
	next := map[int32]int64{}
	dirty := false
	lastSave := time.Now()
	save := func(ctx context.Context) {
		if !dirty {
			return
		}
		if err := g.store.SavePositions(ctx, topic, next); err != nil {
			g.log.Warn("gateway: save reply positions", "err", err)
			return
		}
		dirty, lastSave = false, time.Now()
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		save(ctx)
		cancel()
	}()
	for {
		fs := cl.PollFetches(g.ctx)
		if g.ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				g.log.Warn("gateway: reply fetch", "topic", t, "partition", p, "err", err)
			}
		})
		// Apply the poll's replies concurrently, so the store commits
		// them together; only the first reply of a request counts, as in
		// offset order.
		var (
			batch []*kgo.Record
			seen  = map[string]bool{}
			ends  = map[int32]int64{}
		)
		fs.EachRecord(func(r *kgo.Record) {
			if id := replyID(r); id != "" && !seen[id] {
				seen[id] = true
				batch = append(batch, r)
			}
			ends[r.Partition] = r.Offset + 1
		})
		g.applyAll(batch)
		if g.ctx.Err() != nil {
			return // closing: the positions stay before replies that may be unapplied
		}
		for p, o := range ends {
			next[p] = o
			dirty = true
		}
		if time.Since(lastSave) > 500*time.Millisecond {
			save(g.ctx)
		}
	}
}

// applyAll applies replies, retrying each until it applies or the gateway
// closes (a store error is most likely transient).
func (g *Gateway) applyAll(batch []*kgo.Record) {
	var wg sync.WaitGroup
	for _, r := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := g.applyReply(r)
				if err == nil || g.ctx.Err() != nil {
					return
				}
				g.log.Error("gateway: apply reply, will retry", "partition", r.Partition, "offset", r.Offset, "err", err)
				select {
				case <-g.ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}
	wg.Wait()
}

func replyID(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == HeaderCorrelationID {
			return string(h.Value)
		}
	}
	return ""
}

// applyReply finishes the request a reply names, if it is still open.
func (g *Gateway) applyReply(r *kgo.Record) error {
	var id, status, ct string
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderCorrelationID:
			id = string(h.Value)
		case HeaderStatus:
			status = string(h.Value)
		case "content-type":
			ct = string(h.Value)
		}
	}
	if id == "" {
		return nil // not a reply to a request
	}
	// Relaxed: a reply lost to a power loss is read again, since the read
	// positions are saved after it (and relaxed too).
	t := Transition{From: []State{Accepted, Pending}, To: Succeeded, ContentType: ct, Result: r.Value,
		Partition: -1, Offset: -1, At: time.Now(), Relaxed: true}
	if status == StatusError {
		t.To, t.Result, t.ContentType, t.Error = Failed, nil, "", string(r.Value)
		if t.Error == "" {
			t.Error = "the service replied with an error"
		}
	}
	req, applied, err := g.store.Transition(g.ctx, id, t)
	if errors.Is(err, ErrNotFound) {
		return nil // another gateway's request, or purged
	}
	if err != nil {
		return err
	}
	if applied {
		g.finished(req)
	}
	return nil
}
