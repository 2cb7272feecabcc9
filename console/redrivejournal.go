package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The redrive journal: one JSON record per redrive when it starts
// (state "running") and one when it ends ("done", "cancelled" or
// "failed"), keyed by the dead-letter topic, in RedriveJournalTopic.
//
// A dead letter counts as redriven by an entry when the entry ended, the
// record's offset is below the entry's Through for its partition, the
// entry's selection matches it, it had a target, and it is not among the
// entry's failures. An entry that never ended (the console stopped
// mid-way) or whose failure list was cut short marks nothing: a record
// wrongly unmarked is redriven again (a duplicate its redrive headers
// make visible), a record wrongly marked would be left behind.

// maxJournalFailures bounds the failures an entry lists.
const maxJournalFailures = 1000

type journalPlace struct {
	P int32 `json:"p"`
	O int64 `json:"o"`
}

type journalEntry struct {
	ID              string          `json:"id"`
	DLQ             string          `json:"dlq"`
	State           string          `json:"state"`
	Select          Selection       `json:"select"`
	Target          string          `json:"target,omitempty"`
	Again           bool            `json:"again,omitempty"`
	Through         map[int32]int64 `json:"through"`
	Started         time.Time       `json:"started"`
	Finished        time.Time       `json:"finished,omitzero"`
	Redriven        int64           `json:"redriven"`
	Failed          int64           `json:"failed"`
	FailedAt        []journalPlace  `json:"failed_at,omitempty"`
	FailedTruncated bool            `json:"failed_truncated,omitempty"`
}

// redriveJournal is the ended entries of one dead-letter topic, oldest
// first.
type redriveJournal struct {
	entries []journalEntry
	failed  []map[journalPlace]bool
}

// redriven returns the id of the first redrive that sent d, or "".
func (j redriveJournal) redriven(d DeadLetter) string {
	r := d.Record
	for i, e := range j.entries {
		if e.FailedTruncated || r.Offset >= e.Through[r.Partition] || !e.Select.Match(d) {
			continue
		}
		if e.Target == "" && d.OriginalTopic == "" {
			continue
		}
		if j.failed[i][journalPlace{r.Partition, r.Offset}] {
			continue
		}
		return e.ID
	}
	return ""
}

// readRedriveJournal reads the entries of dlq (none when the journal
// topic does not exist). It uses a client of its own: a long-lived one
// caches the journal topic's absence for a while after a redrive
// created it (kgo's metadata cache), which would hide the first redrive.
func readRedriveJournal(ctx context.Context, opts []kgo.Opt, dlq string) (redriveJournal, error) {
	var j redriveJournal
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return j, fmt.Errorf("console: redrive journal: %w", err)
	}
	defer cl.Close()
	ranges, err := topicRanges(ctx, kadm.NewClient(cl), RedriveJournalTopic)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return j, nil
	}
	if err != nil {
		return j, fmt.Errorf("console: redrive journal: %w", err)
	}
	byID := map[string]int{}
	err = scanTopic(ctx, opts, RedriveJournalTopic, ranges, func(r *kgo.Record) bool {
		if string(r.Key) != dlq {
			return true
		}
		var e journalEntry
		if json.Unmarshal(r.Value, &e) != nil || e.ID == "" {
			return true
		}
		if i, ok := byID[e.ID]; ok {
			j.entries[i] = e // the end of a redrive replaces its start
			return true
		}
		byID[e.ID] = len(j.entries)
		j.entries = append(j.entries, e)
		return true
	})
	if err != nil {
		return redriveJournal{}, fmt.Errorf("console: redrive journal: %w", err)
	}
	ended := j.entries[:0]
	for _, e := range j.entries {
		if e.State != "running" {
			ended = append(ended, e)
		}
	}
	j.entries = ended
	for _, e := range j.entries {
		m := make(map[journalPlace]bool, len(e.FailedAt))
		for _, p := range e.FailedAt {
			m[p] = true
		}
		j.failed = append(j.failed, m)
	}
	return j, nil
}

// writeJournal appends e to the journal, creating its topic (one
// partition) when it is missing.
func writeJournal(ctx context.Context, cl *kgo.Client, adm *kadm.Client, e journalEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("console: redrive journal: %w", err)
	}
	tds, err := adm.ListTopics(ctx, RedriveJournalTopic)
	if err != nil {
		return fmt.Errorf("console: redrive journal: %w", err)
	}
	if td, ok := tds[RedriveJournalTopic]; !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		resp, err := adm.CreateTopic(ctx, 1, -1, nil, RedriveJournalTopic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("console: redrive journal: create %s: %w", RedriveJournalTopic, err)
		}
	}
	rec := &kgo.Record{Topic: RedriveJournalTopic, Key: []byte(e.DLQ), Value: b,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("console: redrive journal: %w", err)
	}
	return nil
}

// newestFirst returns the ended redrives, newest first, for the
// page's list of earlier redrives.
func (j redriveJournal) newestFirst() []journalEntry {
	out := make([]journalEntry, len(j.entries))
	for i, e := range j.entries {
		out[len(j.entries)-1-i] = e
	}
	return out
}
