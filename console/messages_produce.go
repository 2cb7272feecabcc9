package console

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/internal/httpapi"
)

// Producing from the messages page: POST /ui/topics/{topic}/messages with
// the form's key, headers (one NAME=VALUE a line), value (text, JSON or
// base64 for bytes) and an optional partition. The record goes through a
// producer of its own, so the broker, not the client, decides what is too
// large; the answer is its partition and offset, or the broker's error.

// msgMaxProduceBytes bounds the value the form may send (the broker's own
// limit is usually lower, and its refusal is shown).
const msgMaxProduceBytes = 16 << 20

// msgProduced answers a produce.
type msgProduced struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	URL       string `json:"url"`
}

func (c *Console) messagesProduce(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if err := c.mayWrite(r, topicResource, topic, kmsg.ACLOperationWrite); err != nil {
		c.fail(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, msgMaxProduceBytes+1<<20)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, msgBad("the form: %v", err))
		return
	}
	rec, partition, err := msgRecordFromForm(topic, r.PostForm)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ctx, cancel := c.pageContext(r)
	defer cancel()
	_, adm, err := c.client()
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if _, err := msgPartitionRanges(ctx, adm, topic, partition); err != nil {
		c.fail(w, r, err)
		return
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.cfg.Brokers...)}, c.cfg.ClientOptions...)
	opts = append(opts, kgo.ProducerBatchMaxBytes(msgMaxProduceBytes+1<<20), kgo.RecordRetries(3))
	if partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		rec.Partition = partition
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.fail(w, r, fmt.Errorf("console: kafka client: %w", err))
		return
	}
	defer cl.Close()
	res := cl.ProduceSync(ctx, rec)
	if err := res.FirstErr(); err != nil {
		c.fail(w, r, msgBrokerError(err))
		return
	}
	c.sampler.poke()
	out := msgProduced{Topic: topic, Partition: rec.Partition, Offset: rec.Offset,
		URL: c.cfg.BasePath + "topics/" + url.PathEscape(topic) + "/messages?" + url.Values{
			"partition": {strconv.Itoa(int(rec.Partition))}, "start": {"offset"}, "offset": {strconv.FormatInt(rec.Offset, 10)}, "limit": {"1"}}.Encode()}
	if wantsJSON(r) {
		httpapi.WriteJSON(w, http.StatusOK, out)
		return
	}
	c.renderFragment(w, r, "messages", "msg-produced", out)
}

// msgRecordFromForm builds the record of a produce form; partition is -1
// when the form leaves it to the partitioner (the key's hash).
func msgRecordFromForm(topic string, f url.Values) (*kgo.Record, int32, error) {
	rec := &kgo.Record{Topic: topic}
	if k := f.Get("key"); k != "" {
		rec.Key = []byte(k)
	}
	partition := int32(-1)
	if s := strings.TrimSpace(f.Get("partition")); s != "" {
		p, err := strconv.ParseInt(s, 10, 32)
		if err != nil || p < 0 {
			return nil, 0, msgBad("partition %q: want a partition number, or nothing for the key's partition", s)
		}
		partition = int32(p)
	}
	for i, line := range strings.Split(f.Get("headers"), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, 0, msgBad("header line %d %q: want NAME=VALUE", i+1, line)
		}
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: strings.TrimSpace(name), Value: []byte(value)})
	}
	value := f.Get("value")
	switch enc := f.Get("encoding"); enc {
	case "", "text":
		rec.Value = []byte(value)
	case "json":
		if !json.Valid([]byte(value)) {
			var v any
			err := json.Unmarshal([]byte(value), &v)
			return nil, 0, msgBad("the value is not JSON: %v", err)
		}
		rec.Value = []byte(value)
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(value), ""))
		if err != nil {
			return nil, 0, msgBad("the value is not base64: %v", err)
		}
		rec.Value = b
	case "null":
		rec.Value = nil // a tombstone
	default:
		return nil, 0, msgBad("encoding %q: want text, json, base64 or null", enc)
	}
	if len(rec.Value) > msgMaxProduceBytes {
		return nil, 0, httpapi.Errorf(http.StatusRequestEntityTooLarge, "console: the value has %d bytes; the console sends at most %d", len(rec.Value), msgMaxProduceBytes)
	}
	return rec, partition, nil
}
