package kafkatest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the calling goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// A broker that does not serve an API the toolkit needs fails the test
// with the API named; before, the Spool half of every kafkatest table
// skipped, and a CI run could pass without running it.
func TestRequireAPIsFailsOnMissingAPI(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ControlKey(int16(kmsg.ApiVersions), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []int16{0, 1, 2, 3, 8, 9, 10, 12, 13, 14, 18, 22} { // no JoinGroup (11)
			resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: 0, MaxVersion: kmsg.RequestForKey(k).MaxVersion()})
		}
		return resp, nil, true
	})
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		requireAPIs(rec, "test", c.ListenAddrs())
	}()
	<-done
	if !strings.Contains(rec.msg, "does not serve JoinGroup") {
		t.Fatalf("requireAPIs on a broker without JoinGroup: %q, want a failure naming JoinGroup", rec.msg)
	}

	// The real Spool broker serves all of them (startSpool checks).
	startSpool(t)
}
