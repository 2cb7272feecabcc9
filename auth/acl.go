package auth

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Principal is a Kafka principal, "User:alice". AnyUser in an ACL matches
// every principal.
type Principal string

// AnyUser is the wildcard principal of ACLs.
const AnyUser Principal = "User:*"

// Anonymous is the principal of an unauthenticated connection.
const Anonymous Principal = "User:ANONYMOUS"

// User returns the principal of a user name.
func User(name string) Principal { return Principal("User:" + name) }

// Kafka's ACL enums, from kmsg, so values and names are the protocol's.
type (
	ResourceType = kmsg.ACLResourceType
	PatternType  = kmsg.ACLResourcePatternType
	Operation    = kmsg.ACLOperation
	Permission   = kmsg.ACLPermissionType
)

// Wildcard is the literal resource name that matches every resource.
const Wildcard = "*"

// ACL is one access control entry.
type ACL struct {
	Principal    Principal    `json:"principal"`
	Host         string       `json:"host"` // "*": every host
	ResourceType ResourceType `json:"resource_type"`
	ResourceName string       `json:"resource_name"`
	PatternType  PatternType  `json:"pattern_type"` // Literal or Prefixed
	Operation    Operation    `json:"operation"`
	Permission   Permission   `json:"permission"` // Allow or Deny
}

func (a ACL) String() string {
	return fmt.Sprintf("%s %s %s on %s:%s(%s) from host %s", a.Permission, a.Principal, a.Operation,
		a.ResourceType, a.ResourceName, a.PatternType, a.Host)
}

// Validate reports what makes a unusable as a stored ACL, as
// CreateAcls's INVALID_REQUEST message.
func (a ACL) Validate() error {
	switch {
	case !strings.Contains(string(a.Principal), ":") || strings.HasSuffix(string(a.Principal), ":"):
		return fmt.Errorf("principal %q: want Type:name, e.g. User:alice or User:*", a.Principal)
	case a.Host == "":
		return fmt.Errorf("host is empty: use * for every host")
	case a.ResourceName == "":
		return fmt.Errorf("resource name is empty: use * for every %s", a.ResourceType)
	}
	switch a.ResourceType {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeTransactionalId:
	case kmsg.ACLResourceTypeCluster:
		if a.ResourceName != "kafka-cluster" && a.ResourceName != Wildcard {
			return fmt.Errorf("cluster resource name %q: the cluster is named kafka-cluster", a.ResourceName)
		}
	default:
		return fmt.Errorf("resource type %s: want Topic, Group, Cluster or TransactionalId", a.ResourceType)
	}
	switch a.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed:
	default:
		return fmt.Errorf("pattern type %s: want LITERAL or PREFIXED", a.PatternType)
	}
	if a.PatternType == kmsg.ACLResourcePatternTypePrefixed && a.ResourceName == Wildcard {
		return fmt.Errorf("a PREFIXED pattern of %q: use LITERAL * for every resource", Wildcard)
	}
	if a.Operation < kmsg.ACLOperationAll || a.Operation > kmsg.ACLOperationIdempotentWrite {
		return fmt.Errorf("operation %s: want All, Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs or IdempotentWrite", a.Operation)
	}
	if a.Permission != kmsg.ACLPermissionTypeAllow && a.Permission != kmsg.ACLPermissionTypeDeny {
		return fmt.Errorf("permission %s: want ALLOW or DENY", a.Permission)
	}
	return nil
}

// implies reports whether an ALLOW of have permits op.
func implies(have, op Operation) bool {
	switch {
	case have == op || have == kmsg.ACLOperationAll:
		return true
	case op == kmsg.ACLOperationDescribe:
		return have == kmsg.ACLOperationRead || have == kmsg.ACLOperationWrite ||
			have == kmsg.ACLOperationDelete || have == kmsg.ACLOperationAlter
	case op == kmsg.ACLOperationDescribeConfigs:
		return have == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// Filter selects ACLs, as DescribeAcls and DeleteAcls do: a nil field
// matches anything, ResourceType Any and Operation/Permission Any match
// every value, PatternType Any matches both patterns and Match matches the
// ACLs that would apply to the named resource (its literal ACLs, the
// wildcard, and the prefixes of the name).
type Filter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// Matches reports whether f selects a.
func (f Filter) Matches(a ACL) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != a.ResourceType {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != a.Operation {
		return false
	}
	if f.Permission != kmsg.ACLPermissionTypeAny && f.Permission != a.Permission {
		return false
	}
	if f.Principal != nil && Principal(*f.Principal) != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny:
		return f.ResourceName == nil || *f.ResourceName == a.ResourceName
	case kmsg.ACLResourcePatternTypeMatch:
		if f.ResourceName == nil {
			return true
		}
		return resourceMatches(a, *f.ResourceName)
	default:
		return f.PatternType == a.PatternType && (f.ResourceName == nil || *f.ResourceName == a.ResourceName)
	}
}

// resourceMatches reports whether a applies to the resource named name.
func resourceMatches(a ACL, name string) bool {
	if a.PatternType == kmsg.ACLResourcePatternTypePrefixed {
		return strings.HasPrefix(name, a.ResourceName)
	}
	return a.ResourceName == name || a.ResourceName == Wildcard
}

// Authorizer decides requests against a set of ACLs. The set is an
// immutable snapshot replaced on every change, so a decision takes no lock.
type Authorizer struct {
	super  map[Principal]bool
	forced bool

	snap atomic.Pointer[aclIndex]
	mu   sync.Mutex // serialises changes
}

// NewAuthorizer returns an authorizer over acls. Super users may do
// everything; forced turns it on even with no ACLs (then only super users
// may do anything until ACLs allow more).
func NewAuthorizer(acls []ACL, superUsers []Principal, forced bool) (*Authorizer, error) {
	for _, a := range acls {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("auth: ACL %s: %w", a, err)
		}
	}
	z := &Authorizer{super: map[Principal]bool{}, forced: forced}
	for _, p := range superUsers {
		z.super[p] = true
	}
	z.snap.Store(newIndex(acls))
	return z, nil
}

// Enabled reports whether decisions are made: forced, or some ACL exists.
func (z *Authorizer) Enabled() bool { return z.forced || len(z.snap.Load().all) > 0 }

// IsSuperUser reports whether p is a super user.
func (z *Authorizer) IsSuperUser(p Principal) bool { return z.super[p] }

// ACLs returns every ACL, in the order they were added.
func (z *Authorizer) ACLs() []ACL { return slices.Clone(z.snap.Load().all) }

// Authorize reports whether p, connected from host, may perform op on the
// resource of type rt named name.
func (z *Authorizer) Authorize(p Principal, host string, rt ResourceType, name string, op Operation) bool {
	idx := z.snap.Load()
	if len(idx.all) == 0 && !z.forced {
		return true
	}
	if z.super[p] {
		return true
	}
	allowed := false
	for a := range idx.candidates(rt, name) {
		if (a.Principal != p && a.Principal != AnyUser) || (a.Host != host && a.Host != Wildcard) {
			continue
		}
		if a.Permission == kmsg.ACLPermissionTypeDeny {
			if a.Operation == op || a.Operation == kmsg.ACLOperationAll {
				return false
			}
			continue
		}
		if implies(a.Operation, op) {
			allowed = true
		}
	}
	return allowed
}

// Explain says why p was refused op on the resource, for the log line of
// a refused request: the DENY that matched, or the grant that would allow
// it.
func (z *Authorizer) Explain(p Principal, host string, rt ResourceType, name string, op Operation) string {
	for a := range z.snap.Load().candidates(rt, name) {
		if (a.Principal == p || a.Principal == AnyUser) && (a.Host == host || a.Host == Wildcard) &&
			a.Permission == kmsg.ACLPermissionTypeDeny && (a.Operation == op || a.Operation == kmsg.ACLOperationAll) {
			return "denied by ACL " + a.String()
		}
	}
	return "no ACL allows it; the grant that would: " + GrantCommand(p, rt, name, op)
}

// GrantCommand is the `spool acl add` command that would allow p op on
// the resource, for refusals that name the missing grant.
func GrantCommand(p Principal, rt ResourceType, name string, op Operation) string {
	res := "--" + strings.ToLower(rt.String()) + " " + name
	switch rt {
	case kmsg.ACLResourceTypeCluster:
		res = "--cluster"
	case kmsg.ACLResourceTypeTransactionalId:
		res = "--transactional-id " + name
	}
	return fmt.Sprintf("spool acl add --allow %s --operation %s %s", p, op, res)
}

// Add adds acls (already present ones are kept once). persist, if not
// nil, is given the new set first: the change takes effect only once it
// returns nil, so a set that was not made durable is never enforced.
func (z *Authorizer) Add(persist func([]ACL) error, acls ...ACL) error {
	for _, a := range acls {
		if err := a.Validate(); err != nil {
			return fmt.Errorf("auth: ACL %s: %w", a, err)
		}
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	all := slices.Clone(z.snap.Load().all)
	for _, a := range acls {
		if !slices.Contains(all, a) {
			all = append(all, a)
		}
	}
	return z.setLocked(all, persist)
}

// Delete removes the ACLs f matches and returns them; persist as for Add.
func (z *Authorizer) Delete(f Filter, persist func([]ACL) error) ([]ACL, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	var deleted, all []ACL
	for _, a := range z.snap.Load().all {
		if f.Matches(a) {
			deleted = append(deleted, a)
		} else {
			all = append(all, a)
		}
	}
	if len(deleted) == 0 {
		return nil, nil
	}
	if err := z.setLocked(all, persist); err != nil {
		return nil, err
	}
	return deleted, nil
}

func (z *Authorizer) setLocked(all []ACL, persist func([]ACL) error) error {
	if persist != nil {
		if err := persist(slices.Clone(all)); err != nil {
			return err
		}
	}
	z.snap.Store(newIndex(all))
	return nil
}

// Describe returns the ACLs f matches.
func (z *Authorizer) Describe(f Filter) []ACL {
	var out []ACL
	for _, a := range z.snap.Load().all {
		if f.Matches(a) {
			out = append(out, a)
		}
	}
	return out
}

// aclIndex finds the ACLs that apply to a resource without scanning all:
// per resource type, literal ACLs by name (the wildcard "*" among them) and
// prefixed ACLs by prefix, looked up for each prefix length in use.
type aclIndex struct {
	all    []ACL
	byType map[ResourceType]*typeIndex
}

type typeIndex struct {
	literal    map[string][]*ACL
	prefixed   map[string][]*ACL
	prefixLens []int // distinct prefix lengths, ascending
}

func newIndex(all []ACL) *aclIndex {
	idx := &aclIndex{all: all, byType: map[ResourceType]*typeIndex{}}
	for i := range all {
		a := &idx.all[i]
		ti := idx.byType[a.ResourceType]
		if ti == nil {
			ti = &typeIndex{literal: map[string][]*ACL{}, prefixed: map[string][]*ACL{}}
			idx.byType[a.ResourceType] = ti
		}
		if a.PatternType == kmsg.ACLResourcePatternTypePrefixed {
			if _, ok := ti.prefixed[a.ResourceName]; !ok && !slices.Contains(ti.prefixLens, len(a.ResourceName)) {
				ti.prefixLens = append(ti.prefixLens, len(a.ResourceName))
			}
			ti.prefixed[a.ResourceName] = append(ti.prefixed[a.ResourceName], a)
		} else {
			ti.literal[a.ResourceName] = append(ti.literal[a.ResourceName], a)
		}
	}
	for _, ti := range idx.byType {
		slices.Sort(ti.prefixLens)
	}
	return idx
}

// candidates yields the ACLs whose resource pattern matches name, without
// allocating: the literal ones, the wildcard, then each prefix in use.
func (idx *aclIndex) candidates(rt ResourceType, name string) iter.Seq[*ACL] {
	return func(yield func(*ACL) bool) {
		ti := idx.byType[rt]
		if ti == nil {
			return
		}
		for _, a := range ti.literal[name] {
			if !yield(a) {
				return
			}
		}
		if name != Wildcard {
			for _, a := range ti.literal[Wildcard] {
				if !yield(a) {
					return
				}
			}
		}
		for _, l := range ti.prefixLens {
			if l > len(name) {
				return
			}
			for _, a := range ti.prefixed[name[:l]] {
				if !yield(a) {
					return
				}
			}
		}
	}
}
