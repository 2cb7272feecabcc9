package console_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/spoolmq/spool/agent"
	"github.com/spoolmq/spool/broker"
	"github.com/spoolmq/spool/console"
	"github.com/spoolmq/spool/spooltest"
)

// A target the broker's ACLs refuse to the console's own Kafka user: its
// records fail one by one with TOPIC_AUTHORIZATION_FAILED, the others are
// redriven, and the dead-letter topic keeps everything. Spool only: kfake
// has no SASL users.
func TestRedriveBrokerRefusesWrite(t *testing.T) {
	srv := spooltest.Start(t, spooltest.WithConfig(func(c *broker.Config) {
		c.Listeners = []broker.Listener{{Name: "SASL", Protocol: broker.ProtocolSASLPlaintext, Addr: "127.0.0.1:0"}}
		c.SuperUsers = []string{"User:admin"}
	}))
	addr := srv.Broker().ListenerAddrs()["SASL"]
	as := func(user string) []kgo.Opt {
		return []kgo.Opt{kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: user, Pass: user + "-pw"}.AsSha512Mechanism())}
	}
	if err := srv.Broker().SetUserPassword("admin", "SCRAM-SHA-512", "admin-pw"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(as("admin")...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	if _, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "console", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "console-pw"}}); err != nil {
		t.Fatal(err)
	}
	for _, tp := range []string{"open", "closed", "acl2.dlq", console.RedriveJournalTopic} {
		if resp, err := adm.CreateTopic(ctx, 1, -1, nil, tp); err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v %v", tp, err, resp.Err)
		}
	}
	b := kadm.NewACLs
	for _, acl := range []*kadm.ACLBuilder{
		b().Allow("User:console").Topics("acl2.dlq", console.RedriveJournalTopic).Operations(kadm.OpRead, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral),
		b().Allow("User:console").Topics("open", console.RedriveJournalTopic).Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral),
		b().Allow("User:console").Topics("closed").Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral),
	} {
		if res, err := adm.CreateACLs(ctx, acl); err != nil || res[0].Err != nil {
			t.Fatalf("CreateACLs: %v %+v", err, res)
		}
	}
	now := time.Now()
	var recs []*kgo.Record
	for i, orig := range []string{"open", "closed", "open", "closed"} {
		src := &kgo.Record{Topic: orig, Key: []byte{byte('a' + i)}, Value: []byte("v")}
		recs = append(recs, agent.DeadLetterRecord("acl2.dlq", src, "g", agent.ReasonDeadLetter, 1, errors.New("x"), now))
	}
	if err := admin.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	rep, err := console.Redrive(ctx, as("console"), console.RedriveSpec{DLQ: "acl2.dlq"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Redriven != 2 || rep.Failed != 2 || rep.ByTarget["open"] != 2 || rep.JournalError != "" {
		t.Fatalf("report: %+v", rep)
	}
	for _, f := range rep.Failures {
		if f.Target != "closed" || !strings.Contains(f.Error, "TOPIC_AUTHORIZATION_FAILED") {
			t.Errorf("failure: %+v", f)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, "open", "closed", "acl2.dlq")
	if err != nil {
		t.Fatal(err)
	}
	for tp, want := range map[string]int64{"open": 2, "closed": 0, "acl2.dlq": 4} {
		if o, _ := ends.Lookup(tp, 0); o.Offset != want {
			t.Errorf("%s has %d records, want %d", tp, o.Offset, want)
		}
	}
}
