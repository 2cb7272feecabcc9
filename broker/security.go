package broker

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/storage"
)

// Security: listeners with their protocols, SASL users and ACLs. The model
// (principals, credentials, the authorizer) is package auth; this file
// keeps it in the data directory and applies it to connections and
// requests.
//
//	<data>/__state/security/users.json   SCRAM credentials (salted, hashed)
//	<data>/__state/security/acls.json    ACLs
//
// Both are replaced atomically (storage.WriteFileAtomic) under secMu
// before the change is acknowledged.

// The listener protocols, named as Kafka's security.protocol.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// Listener is one Kafka listener: a name (INTERNAL, EXTERNAL, ...), its
// protocol, the address it binds and the one Metadata tells clients who
// connected through it.
type Listener struct {
	Name      string
	Protocol  string // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	Addr      string // host:port to bind; port 0 picks one
	Advertise string // host:port for clients; default the bound address
	// TLS is the server configuration of SSL and SASL_SSL listeners
	// (certificate, and ClientAuth/ClientCAs for mutual TLS: the client
	// certificate's subject is then the principal, "User:CN=...").
	TLS *tls.Config
}

func (l Listener) sasl() bool {
	return l.Protocol == ProtocolSASLPlaintext || l.Protocol == ProtocolSASLSSL
}

func (l Listener) validate() error {
	switch l.Protocol {
	case ProtocolPlaintext, ProtocolSASLPlaintext:
		if l.TLS != nil {
			return fmt.Errorf("listener %s: %s with a TLS config: use SSL or SASL_SSL", l.Name, l.Protocol)
		}
	case ProtocolSSL, ProtocolSASLSSL:
		if l.TLS == nil || (len(l.TLS.Certificates) == 0 && l.TLS.GetCertificate == nil) {
			return fmt.Errorf("listener %s: %s needs a server certificate (--tls-cert, --tls-key)", l.Name, l.Protocol)
		}
	default:
		return fmt.Errorf("listener %s: protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", l.Name, l.Protocol)
	}
	if l.Name == "" || strings.ContainsAny(l.Name, "=:/ ") {
		return fmt.Errorf("listener name %q: want a word such as INTERNAL", l.Name)
	}
	return nil
}

// security is the broker's users and ACLs, loaded at start.
type security struct {
	users *auth.Users
	authz *auth.Authorizer
	dir   string
	fs    storage.FS
	mu    sync.Mutex // serialises changes and their writes
}

const securityDir = "security"

func (b *Broker) loadSecurity() error {
	dir := filepath.Join(b.store.Dir(), stateDir, securityDir)
	s := &security{users: auth.NewUsers(), dir: dir, fs: b.store.FS()}
	if err := s.fs.MkdirAll(dir); err != nil {
		return fmt.Errorf("broker: security: %w", err)
	}
	if raw, err := storage.ReadFile(s.fs, filepath.Join(dir, "users.json")); err == nil {
		if err := json.Unmarshal(raw, s.users); err != nil {
			return fmt.Errorf("broker: %s: %w (restore it from a backup, or remove it to start without users)", filepath.Join(dir, "users.json"), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("broker: security: %w", err)
	}
	var acls []auth.ACL
	if raw, err := storage.ReadFile(s.fs, filepath.Join(dir, "acls.json")); err == nil {
		if err := json.Unmarshal(raw, &acls); err != nil {
			return fmt.Errorf("broker: %s: %w (restore it from a backup)", filepath.Join(dir, "acls.json"), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("broker: security: %w", err)
	}
	var supers []auth.Principal
	for _, p := range b.cfg.SuperUsers {
		supers = append(supers, auth.Principal(p))
	}
	authz, err := auth.NewAuthorizer(acls, supers, b.cfg.Authorizer)
	if err != nil {
		return fmt.Errorf("broker: %s: %w", filepath.Join(dir, "acls.json"), err)
	}
	s.authz = authz
	b.sec = s
	return nil
}

// hasCredential reports whether user has a credential for mech.
func (s *security) hasCredential(user, mech string) bool {
	_, ok := s.users.Lookup(user, mech)
	return ok
}

// saveUsersLocked writes the credential set; s.mu is held.
func (s *security) saveUsersLocked() error {
	raw, err := json.Marshal(s.users)
	if err != nil {
		return err
	}
	return storage.WriteFileAtomic(s.fs, filepath.Join(s.dir, "users.json"), raw)
}

// saveACLsLocked writes acls, the set after a change; s.mu is held.
func (s *security) saveACLsLocked(acls []auth.ACL) error {
	if acls == nil {
		acls = []auth.ACL{}
	}
	raw, err := json.MarshalIndent(acls, "", "  ")
	if err != nil {
		return err
	}
	return storage.WriteFileAtomic(s.fs, filepath.Join(s.dir, "acls.json"), raw)
}

// principal is who the request's connection acts as.
func (r *request) principal() auth.Principal { return r.conn.principal }

// allowed reports whether the request's principal may perform op on the
// resource, logging a refusal with the principal, the resource, the
// operation and the grant that would allow it.
func (r *request) allowed(rt auth.ResourceType, name string, op auth.Operation) bool {
	z := r.conn.b.sec.authz
	if z.Authorize(r.conn.principal, r.conn.ip, rt, name, op) {
		return true
	}
	r.conn.b.metrics.authzRefused.WithLabelValues(apiLabel(r.key)).Inc()
	r.conn.b.cfg.Logger.Warn("broker: request refused by ACLs", "principal", string(r.conn.principal), "host", r.conn.ip,
		"api_key", r.key, "resource", rt.String()+":"+name, "operation", op.String(),
		"why", z.Explain(r.conn.principal, r.conn.ip, rt, name, op))
	return false
}

// allowedQuiet is allowed without the log line, for filtering (Metadata
// hides topics a principal may not describe; that is not a refusal).
func (r *request) allowedQuiet(rt auth.ResourceType, name string, op auth.Operation) bool {
	return r.conn.b.sec.authz.Authorize(r.conn.principal, r.conn.ip, rt, name, op)
}

// clusterName is the resource name of the cluster in ACLs.
const clusterName = "kafka-cluster"

const (
	resTopic   = kmsg.ACLResourceTypeTopic
	resGroup   = kmsg.ACLResourceTypeGroup
	resCluster = kmsg.ACLResourceTypeCluster
	resTxnID   = kmsg.ACLResourceTypeTransactionalId

	opRead            = kmsg.ACLOperationRead
	opWrite           = kmsg.ACLOperationWrite
	opCreate          = kmsg.ACLOperationCreate
	opDelete          = kmsg.ACLOperationDelete
	opAlter           = kmsg.ACLOperationAlter
	opDescribe        = kmsg.ACLOperationDescribe
	opDescribeConfigs = kmsg.ACLOperationDescribeConfigs
	opAlterConfigs    = kmsg.ACLOperationAlterConfigs
	opIdempotentWrite = kmsg.ACLOperationIdempotentWrite
)

// configDenied is the error for a config resource the principal may not
// op (DescribeConfigs or AlterConfigs): topics by their ACLs, the broker
// by the cluster's; nil when allowed.
func (r *request) configDenied(rt kmsg.ConfigResourceType, name string, op auth.Operation) error {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if !r.allowed(resTopic, name, op) {
			return kerr.TopicAuthorizationFailed
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !r.allowed(resCluster, clusterName, op) {
			return kerr.ClusterAuthorizationFailed
		}
	}
	return nil
}

// allowedCreateTopic: Create on the cluster or on the topic, as Kafka.
func (r *request) allowedCreateTopic(topic string) bool {
	if r.allowedQuiet(resCluster, clusterName, opCreate) {
		return true
	}
	return r.allowed(resTopic, topic, opCreate)
}

// SetUserPassword sets user's SCRAM credential for mechanism from a
// password and writes it durably: for bootstrapping the first user (`spool
// user create`), when no authenticated connection can do it yet.
func (b *Broker) SetUserPassword(user, mechanism, password string) error {
	b.sec.mu.Lock()
	defer b.sec.mu.Unlock()
	if err := b.sec.users.SetPassword(user, mechanism, password, 0); err != nil {
		return err
	}
	return b.sec.saveUsersLocked()
}

// Authorizer is the broker's live ACL authorizer (nil before Start): the
// ACLs CreateAcls and DeleteAcls change decide through it from the next
// call on, so the HTTP services of `spool serve` decide with the same ACLs
// as the Kafka listeners. Change the ACLs through the admin APIs, not
// through it, so the change is persisted.
func (b *Broker) Authorizer() *auth.Authorizer {
	if b.sec == nil {
		return nil
	}
	return b.sec.authz
}
