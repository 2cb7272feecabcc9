package console

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

// Redrive sends dead letters back: the records of a dead-letter topic
// that a Selection picks are produced again, to each one's original topic
// (from its headers) or to a topic named in the RedriveSpec, with their
// key, value and headers minus the dead-letter ones (dlq_*, kafka_dlt-*,
// kafka_original-*), plus the redrive headers below. The dead-letter
// topic is only read: a redrive never deletes or truncates it, so a record
// that fails to redrive is still there.
//
// Records are produced with the idempotent producer and acks=all in the
// dead-letter topic's order: per partition of the dead-letter topic, so
// per key (dead letters of a key share a partition), the target receives
// them in the order they were dead-lettered. A record whose target is its
// own original topic goes back to its original partition; otherwise it is
// partitioned by key as Kafka's default partitioner does.
//
// Every redrive is recorded in the journal topic (RedriveJournalTopic):
// what it selected, up to which offsets, and which records failed. The
// console reads it to mark records an earlier redrive already sent, and a
// redrive skips those unless RedriveSpec.Again is set.

// Headers a redriven record carries; the names are a wire contract.
const (
	// HeaderRedriveID names the redrive that produced the record.
	HeaderRedriveID = "spool_redrive_id"
	// HeaderRedriveAt is when it was redriven, RFC 3339 UTC with
	// milliseconds.
	HeaderRedriveAt = "spool_redrive_at"
	// HeaderRedriveOf is the dead letter it was made from,
	// "topic/partition/offset" (as spool_replay_of).
	HeaderRedriveOf = "spool_redrive_of"
)

// RedriveJournalTopic is the topic the redrives are recorded in (one
// partition, created with the broker's defaults when missing; its
// retention bounds how long a redrive marks its records).
const RedriveJournalTopic = "spool.redrives"

// DefaultRedriveRate is the console's default rate limit, in records per
// second.
const DefaultRedriveRate = 10000

// Selection picks dead letters; its zero value picks every record, and
// each field set narrows it (the fields combine with AND).
type Selection struct {
	// Reasons keeps records whose reason is one of these.
	Reasons []string `json:"reasons,omitempty"`
	// ErrorContains keeps records whose error text contains it (case
	// insensitive).
	ErrorContains string `json:"error_contains,omitempty"`
	// OriginalTopic keeps records consumed from this topic.
	OriginalTopic string `json:"original_topic,omitempty"`
	// Group keeps records of this consumer group.
	Group string `json:"group,omitempty"`
	// Keys keeps records whose key is one of these.
	Keys []string `json:"keys,omitempty"`
	// From and To keep records dead-lettered (record timestamp) at or
	// after From and before To.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
}

// Match reports whether the selection picks d.
func (s Selection) Match(d DeadLetter) bool {
	if len(s.Reasons) > 0 && !slices.Contains(s.Reasons, d.Reason) {
		return false
	}
	if s.ErrorContains != "" && !strings.Contains(strings.ToLower(d.Error), strings.ToLower(s.ErrorContains)) {
		return false
	}
	if s.OriginalTopic != "" && d.OriginalTopic != s.OriginalTopic {
		return false
	}
	if s.Group != "" && d.Group != s.Group {
		return false
	}
	if len(s.Keys) > 0 && !slices.Contains(s.Keys, string(d.Record.Key)) {
		return false
	}
	ts := d.Record.Timestamp
	if !s.From.IsZero() && ts.Before(s.From) {
		return false
	}
	if !s.To.IsZero() && !ts.Before(s.To) {
		return false
	}
	return true
}

// RedriveSpec says what to redrive and where.
type RedriveSpec struct {
	// DLQ is the dead-letter topic.
	DLQ string `json:"dlq"`
	// Select picks its records (default: all).
	Select Selection `json:"select"`
	// Target is the topic to send every record to (default "": each
	// record's original topic; a record whose headers name none is
	// skipped).
	Target string `json:"target,omitempty"`
	// Rate limits the produce rate in records per second (default 0:
	// unlimited).
	Rate int `json:"rate,omitempty"`
	// Again also redrives records that an earlier redrive already sent
	// (default false: they are skipped and counted).
	Again bool `json:"again,omitempty"`
	// Through bounds the redrive to offsets below these, per partition
	// (default nil: the end offsets when it starts). A plan's Through
	// passed here makes the redrive send exactly what the plan counted.
	Through map[int32]int64 `json:"through,omitempty"`
	// Authorize, when set, is asked once per target topic before anything
	// is produced to it; records for a topic it refuses fail with its
	// error.
	Authorize func(topic string) error `json:"-"`
}

// RedrivePlan is a dry run: what a redrive of the spec would do now.
type RedrivePlan struct {
	DLQ     string `json:"dlq"`
	Scanned int64  `json:"scanned"` // records read
	Matched int64  `json:"matched"` // records the selection picks
	// Redrive is how many would be produced (Matched minus the skipped).
	Redrive int64 `json:"redrive"`
	// AlreadyRedriven counts the matched records an earlier redrive sent
	// (skipped unless Again).
	AlreadyRedriven int64 `json:"already_redriven"`
	// NoTarget counts the matched records whose headers name no original
	// topic, with no Target set (skipped).
	NoTarget int64 `json:"no_target"`
	// ByTarget and ByReason count the records to redrive.
	ByTarget map[string]int64 `json:"by_target"`
	ByReason map[string]int64 `json:"by_reason"`
	// MissingTargets are target topics that do not exist (their records
	// would fail: the console does not create topics).
	MissingTargets []string `json:"missing_targets,omitempty"`
	// Sample is the first few records to redrive.
	Sample []DeadLetter `json:"-"`
	// Through is the end offsets the plan read up to.
	Through map[int32]int64 `json:"through"`
}

// RedriveFailure is a record that could not be redriven.
type RedriveFailure struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Target    string `json:"target"`
	Error     string `json:"error"`
}

// RedriveReport is what a redrive did.
type RedriveReport struct {
	ID       string    `json:"id"`
	DLQ      string    `json:"dlq"`
	Target   string    `json:"target,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Records is how many records of the dead-letter topic the redrive
	// reads (its range); Scanned how many it has read.
	Records int64 `json:"records"`
	Scanned int64 `json:"scanned"`
	// Matched counts the records the selection picked.
	Matched  int64 `json:"matched"`
	Redriven int64 `json:"redriven"`
	Failed   int64 `json:"failed"`
	// Skipped counts matched records not sent (already redriven, or no
	// target).
	Skipped int64 `json:"skipped"`
	// ByTarget counts the records redriven per target topic.
	ByTarget map[string]int64 `json:"by_target"`
	// FailedByError counts the failures per error text; Failures lists
	// the first 100.
	FailedByError map[string]int64 `json:"failed_by_error,omitempty"`
	Failures      []RedriveFailure `json:"failures,omitempty"`
	// Cancelled is set when the redrive was stopped before the end: the
	// records after Through were not considered.
	Cancelled bool `json:"cancelled,omitempty"`
	// Error is why the redrive stopped early (the scan failed), if it did.
	Error string `json:"error,omitempty"`
	// JournalError is set when the redrive could not be recorded in the
	// journal (it ran anyway; a later redrive will not skip its records).
	JournalError string `json:"journal_error,omitempty"`
	// Through is, per partition, the offset below which records were
	// considered.
	Through map[int32]int64 `json:"through"`
}

// Done reports whether the redrive has finished.
func (r *RedriveReport) Done() bool { return !r.Finished.IsZero() }

// PlanRedrive is the dry run of spec: it reads the dead-letter topic (and
// the journal) and counts what Redrive would send, sending nothing. opts
// are the Kafka client options (seed brokers, TLS, SASL).
func PlanRedrive(ctx context.Context, opts []kgo.Opt, spec RedriveSpec) (*RedrivePlan, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("console: redrive: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ranges, err := redriveRanges(ctx, adm, spec)
	if err != nil {
		return nil, err
	}
	journal, _ := readRedriveJournal(ctx, opts, spec.DLQ)
	p := &RedrivePlan{DLQ: spec.DLQ, ByTarget: map[string]int64{}, ByReason: map[string]int64{}, Through: map[int32]int64{}}
	for part, r := range ranges {
		p.Through[part] = r.End
	}
	err = scanTopic(ctx, opts, spec.DLQ, ranges, func(r *kgo.Record) bool {
		p.Scanned++
		d := DecodeDeadLetter(r)
		if !spec.Select.Match(d) {
			return true
		}
		p.Matched++
		target := spec.targetOf(d)
		switch {
		case target == "":
			p.NoTarget++
		case !spec.Again && journal.redriven(d) != "":
			p.AlreadyRedriven++
		default:
			p.Redrive++
			p.ByTarget[target]++
			p.ByReason[d.Reason]++
			if len(p.Sample) < 5 {
				p.Sample = append(p.Sample, d)
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	targets := make([]string, 0, len(p.ByTarget))
	for t := range p.ByTarget {
		targets = append(targets, t)
	}
	if len(targets) > 0 {
		tds, err := adm.ListTopics(ctx, targets...)
		if err != nil {
			return nil, fmt.Errorf("console: redrive: targets: %w", err)
		}
		for _, t := range targets {
			if td, ok := tds[t]; !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
				p.MissingTargets = append(p.MissingTargets, t)
			}
		}
		slices.Sort(p.MissingTargets)
	}
	return p, nil
}

// Redrive runs spec: it reads the dead-letter topic up to spec.Through
// (default: its end offsets now) and produces the selected records to
// their targets at spec.Rate, calling progress (if not nil) as it goes
// with a copy of the report so far. Cancelling ctx stops it after the
// records already handed to the producer are acknowledged or failed, so
// the report is exact. The error is for a redrive that could not start
// (unknown topic, bad spec); failures of records and of the scan are in
// the report.
func Redrive(ctx context.Context, opts []kgo.Opt, spec RedriveSpec, progress func(RedriveReport)) (*RedriveReport, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("console: redrive: %w", err)
	}
	return redrive(ctx, opts, spec, id.String(), progress)
}

func redrive(ctx context.Context, opts []kgo.Opt, spec RedriveSpec, id string, progress func(RedriveReport)) (*RedriveReport, error) {
	if spec.Rate < 0 {
		return nil, errors.New("console: redrive: the rate must not be negative")
	}
	admCl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("console: redrive: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ranges, err := redriveRanges(ctx, adm, spec)
	if err != nil {
		return nil, err
	}
	journal, _ := readRedriveJournal(ctx, opts, spec.DLQ)
	var batchMax sync.Map // target topic -> its max.message.bytes (set by run.target before its first record)
	prod, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), // partitions chosen by handle
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond),
		// Batches no larger than the target accepts: a broker refuses a
		// too-large batch whole, which would fail the records that share
		// it with a too-large one; kgo fails that one alone instead.
		kgo.ProducerBatchMaxBytesFn(func(topic string) int32 {
			if v, ok := batchMax.Load(topic); ok {
				return v.(int32)
			}
			return defaultBatchMax
		}))...)
	if err != nil {
		return nil, fmt.Errorf("console: redrive: %w", err)
	}
	defer prod.Close()

	run := &redriveRun{spec: spec, adm: adm, prod: prod, progress: progress, batchMax: &batchMax,
		targets: map[string]*redriveTarget{}, keyed: kgo.StickyKeyPartitioner(nil),
		rep: RedriveReport{ID: id, DLQ: spec.DLQ, Target: spec.Target, Started: time.Now().UTC(),
			ByTarget: map[string]int64{}, FailedByError: map[string]int64{}, Through: map[int32]int64{}},
		issued: map[int32]int64{}}
	for p, r := range ranges {
		run.rep.Through[p] = r.End
		run.rep.Records += r.End - r.Start
		run.issued[p] = r.Start
	}
	if spec.Rate > 0 {
		run.limit = rate.NewLimiter(rate.Limit(spec.Rate), max(spec.Rate/20, 1))
	}
	entry := journalEntry{ID: id, DLQ: spec.DLQ, State: "running", Select: spec.Select, Target: spec.Target,
		Again: spec.Again, Through: run.rep.Through, Started: run.rep.Started}
	jerr := writeJournal(ctx, admCl, adm, entry)

	run.report(true) // the range is known: the progress has its denominator
	now := time.Now().UTC().Format(dlqTimeFormat)
	scanErr := scanTopic(ctx, opts, spec.DLQ, ranges, func(r *kgo.Record) bool {
		return ctx.Err() == nil && run.handle(ctx, r, journal, now)
	})
	// Whatever was handed to the producer is acknowledged or failed
	// before the report is final (a cancelled ctx must not abandon them).
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	if err := prod.Flush(fctx); err != nil {
		run.mu.Lock()
		run.rep.Error = "console: redrive: flush: " + err.Error()
		run.mu.Unlock()
	}
	cancel()

	run.mu.Lock()
	defer run.mu.Unlock()
	rep := &run.rep
	rep.Finished = time.Now().UTC()
	entry.State, entry.Finished = "done", rep.Finished
	if ctx.Err() != nil {
		rep.Cancelled = true
		entry.State = "cancelled"
		rep.Through = run.issued // what was considered, not the plan's end
		entry.Through = run.issued
	} else if scanErr != nil {
		rep.Error = scanErr.Error()
		entry.State = "failed"
		rep.Through = run.issued
		entry.Through = run.issued
	}
	entry.Redriven, entry.Failed, entry.FailedAt = rep.Redriven, rep.Failed, run.failedAt
	entry.FailedTruncated = int64(len(run.failedAt)) < rep.Failed
	if jerr == nil {
		jerr = writeJournal(context.WithoutCancel(ctx), admCl, adm, entry)
	}
	if jerr != nil {
		rep.JournalError = jerr.Error()
	}
	if progress != nil {
		progress(*rep)
	}
	out := *rep
	return &out, nil
}

const dlqTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// targetOf is the topic d goes to ("" when none is known).
func (s RedriveSpec) targetOf(d DeadLetter) string {
	if s.Target != "" {
		return s.Target
	}
	return d.OriginalTopic
}

// redriveRanges checks the dead-letter topic and returns the offsets to
// read: from each partition's start to spec.Through or its end.
func redriveRanges(ctx context.Context, adm *kadm.Client, spec RedriveSpec) (map[int32]partitionRange, error) {
	if spec.DLQ == "" {
		return nil, errors.New("console: redrive: no dead-letter topic named")
	}
	if spec.Target != "" && spec.Target == spec.DLQ {
		return nil, fmt.Errorf("console: redrive: %q is the dead-letter topic itself", spec.Target)
	}
	ranges, err := topicRanges(ctx, adm, spec.DLQ)
	if err != nil {
		return nil, fmt.Errorf("console: redrive: %s: %w", spec.DLQ, err)
	}
	for p, r := range ranges {
		if t, ok := spec.Through[p]; ok && t < r.End {
			r.End = max(t, r.Start)
			ranges[p] = r
		}
	}
	return ranges, nil
}

// redriveRun is the state of one Redrive.
type redriveRun struct {
	spec     RedriveSpec
	adm      *kadm.Client
	prod     *kgo.Client
	progress func(RedriveReport)
	limit    *rate.Limiter
	keyed    kgo.Partitioner
	batchMax *sync.Map

	targets map[string]*redriveTarget // only the scan goroutine uses it

	mu       sync.Mutex
	rep      RedriveReport
	issued   map[int32]int64 // per DLQ partition: offsets below were considered
	failedAt []journalPlace
	lastProg time.Time
}

// redriveTarget is what is known of a target topic: its partition count,
// or why nothing can be produced to it.
type redriveTarget struct {
	partitions int
	err        error
	tp         kgo.TopicPartitioner
	next       atomic.Int64 // round robin for records without a key
}

func (run *redriveRun) target(ctx context.Context, topic string) *redriveTarget {
	if t, ok := run.targets[topic]; ok {
		return t
	}
	t := &redriveTarget{}
	run.targets[topic] = t
	if run.spec.Authorize != nil {
		if t.err = run.spec.Authorize(topic); t.err != nil {
			return t
		}
	}
	tds, err := run.adm.ListTopics(ctx, topic)
	if err != nil {
		t.err = err
		return t
	}
	td, ok := tds[topic]
	switch {
	case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
		t.err = fmt.Errorf("topic %q does not exist (a redrive does not create topics): %w", topic, kerr.UnknownTopicOrPartition)
	case td.Err != nil:
		t.err = fmt.Errorf("topic %q: %w", topic, td.Err)
	case len(td.Partitions) == 0:
		t.err = fmt.Errorf("topic %q has no partitions", topic)
	default:
		t.partitions = len(td.Partitions)
		t.tp = run.keyed.ForTopic(topic)
		run.batchMax.Store(topic, maxMessageBytes(ctx, run.adm, topic))
	}
	return t
}

// defaultBatchMax is Kafka's default max.message.bytes (and kgo's batch
// limit).
const defaultBatchMax = 1000012

// maxMessageBytes is topic's max.message.bytes (the default when it
// cannot be read, e.g. without DescribeConfigs: the broker still refuses
// what is too large, and the record is reported).
func maxMessageBytes(ctx context.Context, adm *kadm.Client, topic string) int32 {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return defaultBatchMax
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return defaultBatchMax
	}
	for _, c := range rc.Configs {
		if c.Key == "max.message.bytes" && c.Value != nil {
			if n, err := strconv.ParseInt(*c.Value, 10, 32); err == nil && n >= 512 {
				return int32(min(n, defaultBatchMax))
			}
		}
	}
	return defaultBatchMax
}

// handle redrives (or skips, or fails) one record of the scan.
//
// It returns false when the redrive was cancelled while the record waited
// for the rate limit: the record is then not considered at all (not
// counted, not below the journal's Through), so nothing marks it sent.
func (run *redriveRun) handle(ctx context.Context, r *kgo.Record, journal redriveJournal, now string) bool {
	d := DecodeDeadLetter(r)
	match := run.spec.Select.Match(d)
	topic, skip := "", false
	if match {
		topic = run.spec.targetOf(d)
		skip = topic == "" || (!run.spec.Again && journal.redriven(d) != "")
	}
	// The rate limits what is produced, not what is read past.
	if match && !skip && run.limit != nil && run.limit.Wait(ctx) != nil {
		return false
	}
	run.mu.Lock()
	run.rep.Scanned++
	run.issued[r.Partition] = r.Offset + 1
	if match {
		run.rep.Matched++
		if skip {
			run.rep.Skipped++
		}
	}
	run.mu.Unlock()
	if !match || skip {
		run.report(false)
		return true
	}
	t := run.target(ctx, topic)
	if t.err != nil {
		run.fail(r, topic, t.err)
		return true
	}
	out := redrivenRecord(r, topic, run.rep.ID, now)
	switch {
	case topic == d.OriginalTopic && d.OriginalPartition >= 0 && int(d.OriginalPartition) < t.partitions:
		out.Partition = d.OriginalPartition
	case out.Key != nil:
		out.Partition = int32(t.tp.Partition(out, t.partitions))
	default:
		out.Partition = int32(t.next.Add(1) % int64(t.partitions))
	}
	// Not ctx: a record handed to the producer is sent even when the
	// redrive is cancelled, so that it ends acknowledged or failed, never
	// in doubt.
	run.prod.Produce(context.WithoutCancel(ctx), out, func(out *kgo.Record, err error) {
		if err != nil {
			run.fail(r, topic, err)
			return
		}
		run.mu.Lock()
		run.rep.Redriven++
		run.rep.ByTarget[topic]++
		run.mu.Unlock()
		run.report(false)
	})
	return true
}

// redrivenRecord is dead letter r as it goes to topic: key, value and
// headers without the dead-letter and earlier redrive headers, plus this
// redrive's.
func redrivenRecord(r *kgo.Record, topic, id, now string) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(r.Headers)+3)
	for _, h := range r.Headers {
		if !isDeadLetterHeader(h.Key) && h.Key != HeaderRedriveID && h.Key != HeaderRedriveAt && h.Key != HeaderRedriveOf {
			hs = append(hs, h)
		}
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderRedriveID, Value: []byte(id)},
		kgo.RecordHeader{Key: HeaderRedriveAt, Value: []byte(now)},
		kgo.RecordHeader{Key: HeaderRedriveOf, Value: []byte(r.Topic + "/" + strconv.FormatInt(int64(r.Partition), 10) + "/" + strconv.FormatInt(r.Offset, 10))})
	return &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: hs}
}

const maxListedFailures = 100

func (run *redriveRun) fail(r *kgo.Record, topic string, err error) {
	run.mu.Lock()
	run.rep.Failed++
	msg := err.Error()
	run.rep.FailedByError[msg]++
	if len(run.rep.Failures) < maxListedFailures {
		run.rep.Failures = append(run.rep.Failures, RedriveFailure{Partition: r.Partition, Offset: r.Offset,
			Key: string(r.Key), Target: topic, Error: msg})
	}
	if len(run.failedAt) < maxJournalFailures {
		run.failedAt = append(run.failedAt, journalPlace{P: r.Partition, O: r.Offset})
	}
	run.mu.Unlock()
	run.report(false)
}

// report calls the progress function at most every 100ms.
func (run *redriveRun) report(force bool) {
	if run.progress == nil {
		return
	}
	run.mu.Lock()
	now := time.Now()
	if !force && now.Sub(run.lastProg) < 100*time.Millisecond {
		run.mu.Unlock()
		return
	}
	run.lastProg = now
	rep := run.rep
	rep.ByTarget = copyCounts(run.rep.ByTarget)
	rep.FailedByError = copyCounts(run.rep.FailedByError)
	rep.Failures = slices.Clone(run.rep.Failures)
	run.mu.Unlock()
	run.progress(rep)
}

func copyCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
