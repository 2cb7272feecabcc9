package lookback

import (
	"context"
	"net/http"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/internal/httpapi"
)

// Authorizer authenticates the API's requests and answers Kafka ACL
// questions for their principal; *httpauth.Authenticator implements it.
//
// With one set, every endpoint but openapi.json needs a principal (401
// without), and what it returns and does follows the principal's ACLs, as
// its Kafka client would be allowed: events are returned only of topics it
// may Read (search results and flows leave the others out; an event or a
// search of one named topic without Read is 403); a replay needs Read on
// its source topic and Write on its target (Write on spool.replay.<group>
// for a group replay), a selection of every topic Read (and Write) on the
// topic "*"; an erasure Delete on its topic ("*" without one); stats,
// rules and verification Describe on the cluster.
type Authorizer interface {
	// Principal returns who sends r, or a 401 *httpapi.Error.
	Principal(r *http.Request) (auth.Principal, error)
	// Allowed reports whether p, sending r, may do op on the resource.
	Allowed(r *http.Request, p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) bool
	// Check is Allowed as an error: nil, or a 403 *httpapi.Error naming
	// the missing grant.
	Check(r *http.Request, p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) error
}

type principalKey struct{}

// authenticate resolves the principal of every request when an Authorizer
// is set.
func (s *Service) authenticate(next http.Handler) http.Handler {
	if s.cfg.Authorizer == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/lookback/openapi.json" {
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.cfg.Authorizer.Principal(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="spool"`)
			httpapi.WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// may checks that r's principal may do op on the resource (nil without an
// Authorizer).
func (s *Service) may(r *http.Request, rt auth.ResourceType, name string, op auth.Operation) error {
	if s.cfg.Authorizer == nil {
		return nil
	}
	p, _ := r.Context().Value(principalKey{}).(auth.Principal)
	return s.cfg.Authorizer.Check(r, p, rt, name, op)
}

// readable reports whether r's principal may Read topic.
func (s *Service) readable(r *http.Request, topic string) bool {
	if s.cfg.Authorizer == nil {
		return true
	}
	p, _ := r.Context().Value(principalKey{}).(auth.Principal)
	return s.cfg.Authorizer.Allowed(r, p, kmsg.ACLResourceTypeTopic, topic, kmsg.ACLOperationRead)
}

// mayTopic checks op on topic, "" meaning every topic ("*").
func (s *Service) mayTopic(r *http.Request, topic string, op auth.Operation) error {
	if topic == "" {
		topic = auth.Wildcard
	}
	return s.may(r, kmsg.ACLResourceTypeTopic, topic, op)
}

func (s *Service) mayCluster(r *http.Request) error {
	return s.may(r, kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLOperationDescribe)
}

// readableEvents keeps the events r's principal may Read.
func (s *Service) readableEvents(r *http.Request, evs []*Event) []*Event {
	if s.cfg.Authorizer == nil {
		return evs
	}
	out := evs[:0:0]
	for _, e := range evs {
		if s.readable(r, e.Topic) {
			out = append(out, e)
		}
	}
	return out
}

// mayReplay checks a replay spec: Read on the source, Write on the target.
func (s *Service) mayReplay(r *http.Request, spec ReplaySpec) error {
	if err := s.mayTopic(r, spec.Filter.Topic, kmsg.ACLOperationRead); err != nil {
		return err
	}
	target := spec.ToTopic
	switch {
	case spec.ToGroup != "":
		target = "spool.replay." + spec.ToGroup
	case target == "":
		target = spec.Filter.Topic
	}
	return s.mayTopic(r, target, kmsg.ACLOperationWrite)
}

// readableFlow leaves out of f the events r's principal may not Read:
// their nodes leave the causation tree (their children move up to the
// nearest visible cause) and the gaps and span are those of what is left.
func (s *Service) readableFlow(r *http.Request, f *Flow) {
	if s.cfg.Authorizer == nil {
		return
	}
	var kept []FlowEvent
	for _, fe := range f.Events {
		if s.readable(r, fe.Event.Topic) {
			kept = append(kept, fe)
		}
	}
	if len(kept) == len(f.Events) {
		return
	}
	for i := range kept {
		kept[i].GapMS = 0
		if i > 0 {
			kept[i].GapMS = float64(kept[i].Event.Timestamp.Sub(kept[i-1].Event.Timestamp).Microseconds()) / 1000
		}
	}
	f.Events = kept
	if f.Events == nil {
		f.Events = []FlowEvent{}
	}
	var prune func(ns []*FlowNode) []*FlowNode
	prune = func(ns []*FlowNode) []*FlowNode {
		var out []*FlowNode
		for _, n := range ns {
			children := prune(n.Children)
			if s.readable(r, n.Topic) {
				n.Children = children
				out = append(out, n)
			} else {
				out = append(out, children...)
			}
		}
		return out
	}
	f.Roots = prune(f.Roots)
	if f.Roots == nil {
		f.Roots = []*FlowNode{}
	}
	if len(kept) > 0 {
		f.Start, f.End = kept[0].Event.Timestamp, kept[len(kept)-1].Event.Timestamp
		f.Duration = float64(f.End.Sub(f.Start).Microseconds()) / 1000
	}
}
