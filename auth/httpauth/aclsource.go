package httpauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/spoolmq/spool/auth"
)

// ACLSourceConfig configures an ACLSource. Admin is required; the zero
// value of every other field is its default.
type ACLSourceConfig struct {
	// Admin is the Kafka admin client the ACLs are read with (required).
	// Its principal needs Describe on the cluster (DescribeAcls).
	Admin *kadm.Client
	// Refresh is how often the ACLs are read again (default 30s): an ACL
	// added or removed on the cluster applies to HTTP requests within it.
	Refresh time.Duration
	// SuperUsers may do everything (the cluster's super.users, which no
	// Kafka API reports; default none).
	SuperUsers []auth.Principal
	// Logger receives refresh failures (default: discard).
	Logger *slog.Logger
}

// ACLSource is a Decider over the ACLs of a Kafka cluster, read with
// DescribeAcls at Start and every Refresh after, for services that run
// apart from the broker (`spool console`, `spool gateway`, `spool lookback
// serve`). Decisions are the auth.Authorizer's over the last set read; a
// failed refresh keeps the last set and is logged.
//
// As Spool's broker decides, a cluster without ACLs (or without an
// authorizer: it answers SECURITY_DISABLED) lets every authenticated
// principal do everything; once one ACL exists, a principal no ACL allows is
// refused.
type ACLSource struct {
	cfg  ACLSourceConfig
	z    atomic.Pointer[auth.Authorizer]
	lerr atomic.Pointer[error]

	mu     sync.Mutex
	stop   context.CancelFunc
	done   chan struct{}
	closed bool
}

// NewACLSource returns an ACLSource for cfg; Start reads the ACLs.
func NewACLSource(cfg ACLSourceConfig) (*ACLSource, error) {
	if cfg.Admin == nil {
		return nil, errors.New("httpauth: ACLSourceConfig.Admin is required")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &ACLSource{cfg: cfg}, nil
}

// Start reads the ACLs (an error if the cluster refuses or does not
// answer) and refreshes them every Refresh until Close.
func (s *ACLSource) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("httpauth: ACL source closed")
	}
	if s.done != nil {
		return nil
	}
	if err := s.Load(ctx); err != nil {
		return err
	}
	rctx, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.cfg.Refresh)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				lctx, cancel := context.WithTimeout(rctx, s.cfg.Refresh)
				if err := s.Load(lctx); err != nil && rctx.Err() == nil {
					s.cfg.Logger.Warn("httpauth: ACL refresh failed; deciding with the ACLs read before", "err", err)
				}
				cancel()
			}
		}
	}()
	return nil
}

// Close stops the refreshes; it is idempotent.
func (s *ACLSource) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.stop != nil {
		s.stop()
		<-s.done
	}
}

// Load reads the cluster's ACLs now and decides with them from the next
// call on.
func (s *ACLSource) Load(ctx context.Context) error {
	z, err := s.read(ctx)
	if err != nil {
		s.lerr.Store(&err)
		return err
	}
	s.lerr.Store(nil)
	s.z.Store(z)
	return nil
}

// LastError is the error of the last read, nil when it succeeded.
func (s *ACLSource) LastError() error {
	if e := s.lerr.Load(); e != nil {
		return *e
	}
	return nil
}

func (s *ACLSource) read(ctx context.Context) (*auth.Authorizer, error) {
	b := kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().
		Operations().ResourcePatternType(kadm.ACLPatternAny)
	res, err := s.cfg.Admin.DescribeACLs(ctx, b)
	if err == nil {
		for _, r := range res {
			if r.Err != nil {
				err = r.Err
				break
			}
		}
	}
	if errors.Is(err, kerr.SecurityDisabled) {
		return auth.NewAuthorizer(nil, s.cfg.SuperUsers, false)
	}
	if err != nil {
		if errors.Is(err, kerr.ClusterAuthorizationFailed) {
			return nil, fmt.Errorf("httpauth: reading the cluster's ACLs: %w (the services' Kafka principal needs Describe on the cluster: spool acl add --allow PRINCIPAL --operation describe --cluster)", err)
		}
		return nil, fmt.Errorf("httpauth: reading the cluster's ACLs: %w", err)
	}
	var acls []auth.ACL
	for _, r := range res {
		for _, d := range r.Described {
			a := auth.ACL{Principal: auth.Principal(d.Principal), Host: d.Host, ResourceType: d.Type, ResourceName: d.Name,
				PatternType: d.Pattern, Operation: d.Operation, Permission: d.Permission}
			if a.Validate() != nil {
				// A resource type Spool does not model (DelegationToken) or a
				// principal type it does not know decides nothing here.
				continue
			}
			acls = append(acls, a)
		}
	}
	// As Spool's broker: off (everything allowed) until the first ACL
	// exists, then a principal no ACL allows is refused.
	return auth.NewAuthorizer(acls, s.cfg.SuperUsers, false)
}

// Authorize implements Decider with the last ACLs read; before the first
// read it refuses everything.
func (s *ACLSource) Authorize(p auth.Principal, host string, rt auth.ResourceType, name string, op auth.Operation) bool {
	z := s.z.Load()
	return z != nil && z.Authorize(p, host, rt, name, op)
}

// Explain implements Decider.
func (s *ACLSource) Explain(p auth.Principal, host string, rt auth.ResourceType, name string, op auth.Operation) string {
	z := s.z.Load()
	if z == nil {
		return "the ACLs have not been read yet"
	}
	return z.Explain(p, host, rt, name, op)
}
