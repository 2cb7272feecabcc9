package gateway

import (
	"errors"
	"net/http"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
	"github.com/spoolmq/spool/internal/httpapi"
)

// PrincipalChecker authenticates a request as a Kafka principal and checks
// it against Kafka ACLs; *httpauth.Authenticator implements it.
type PrincipalChecker interface {
	// Principal returns who sends r, or a 401 *httpapi.Error.
	Principal(r *http.Request) (auth.Principal, error)
	// Check returns nil when p may do op on the resource, else a 403
	// *httpapi.Error naming the missing grant.
	Check(r *http.Request, p auth.Principal, rt auth.ResourceType, name string, op auth.Operation) error
}

// ACLOperation is the Kafka ACL operation on the topic that op needs:
// Write to produce (records, events, commands), Read to stream the topic
// or read the status of a request on it.
func ACLOperation(op Operation) auth.Operation {
	if op == OpProduce {
		return kmsg.ACLOperationWrite
	}
	return kmsg.ACLOperationRead
}

// ACLAuth returns an Authorizer deciding with Kafka ACLs: the principal of
// the request (from c, e.g. an HTTP token mapped to User:alice) needs
// ACLOperation(op) on the topic, as its Kafka client would. When scoped is
// not nil its tokens are tried first and decided by their scopes, so
// scoped gateway tokens keep working next to the ACL principals; a request
// neither knows is answered by c (401).
func ACLAuth(c PrincipalChecker, scoped *Tokens) Authorizer {
	return aclAuth{c: c, scoped: scoped}
}

type aclAuth struct {
	c      PrincipalChecker
	scoped *Tokens
}

func (a aclAuth) Authorize(r *http.Request, op Operation, topic string) (string, error) {
	if a.scoped != nil {
		name, err := a.scoped.Authorize(r, op, topic)
		var he *httpapi.Error
		if err == nil || !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
			return name, err
		}
	}
	p, err := a.c.Principal(r)
	if err != nil {
		return "", err
	}
	return string(p), a.c.Check(r, p, kmsg.ACLResourceTypeTopic, topic, ACLOperation(op))
}
