package broker

import (
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
)

// AlterUserScramCredentials: v0
//
// Behaviour:
//   - Upsertions carry the salt and the salted password (the client ran
//     PBKDF2; the password never reaches the broker); the broker keeps
//     only the salt, the iterations and the derived stored and server
//     keys (RFC 5802). Both mechanisms may be set for one user.
//   - Per user: UNSUPPORTED_SASL_MECHANISM for a mechanism other than
//     SCRAM-SHA-256/512, UNACCEPTABLE_CREDENTIAL for iterations outside
//     4096-16384, an empty name or a salted password of the wrong size,
//     DUPLICATE_RESOURCE for a user altered twice for one mechanism,
//     RESOURCE_NOT_FOUND for deleting a credential that does not exist.
//   - The credential file is written durably before the answer; the new
//     credentials apply to the next authentication.
//   - Needs Alter on the cluster: CLUSTER_AUTHORIZATION_FAILED.

func (b *Broker) handleAlterUserScramCredentials(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	type op struct {
		user, mech string
		del        *kmsg.AlterUserSCRAMCredentialsRequestDeletion
		up         *kmsg.AlterUserSCRAMCredentialsRequestUpsertion
	}
	var ops []op
	for i := range req.Deletions {
		d := &req.Deletions[i]
		ops = append(ops, op{user: d.Name, mech: scramMechanisms[d.Mechanism], del: d})
	}
	for i := range req.Upsertions {
		u := &req.Upsertions[i]
		ops = append(ops, op{user: u.Name, mech: scramMechanisms[u.Mechanism], up: u})
	}
	results := map[string]*kmsg.AlterUserSCRAMCredentialsResponseResult{}
	var order []string
	fail := func(user string, code int16, msg string) {
		res := results[user]
		if res.ErrorCode == 0 {
			res.ErrorCode = code
			res.ErrorMessage = &msg
		}
	}
	for _, o := range ops {
		if results[o.user] == nil {
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User = o.user
			results[o.user] = &res
			order = append(order, o.user)
		}
	}
	if !r.allowed(resCluster, clusterName, opAlter) {
		for _, u := range order {
			fail(u, kerr.ClusterAuthorizationFailed.Code, "altering SCRAM credentials needs Alter on the cluster")
		}
	}
	// Validate every operation first, then apply those of the users without
	// an error: a user's alterations apply all or not at all.
	b.sec.mu.Lock()
	defer b.sec.mu.Unlock()
	seen := map[[2]string]bool{}
	for _, o := range ops {
		k := [2]string{o.user, o.mech}
		switch {
		case o.user == "":
			fail(o.user, kerr.UnacceptableCredential.Code, "empty user name")
		case o.mech == "":
			fail(o.user, kerr.UnsupportedSaslMechanism.Code, "unknown SCRAM mechanism; want SCRAM-SHA-256 (1) or SCRAM-SHA-512 (2)")
		case seen[k]:
			fail(o.user, kerr.DuplicateResource.Code, fmt.Sprintf("user %s is altered twice for %s", o.user, o.mech))
		case o.del != nil && !b.sec.hasCredential(o.user, o.mech):
			fail(o.user, kerr.ResourceNotFound.Code, fmt.Sprintf("user %s has no %s credential", o.user, o.mech))
		case o.up != nil && (o.up.Iterations < auth.MinIterations || o.up.Iterations > auth.MaxIterations):
			fail(o.user, kerr.UnacceptableCredential.Code, fmt.Sprintf("%d iterations: want %d to %d", o.up.Iterations, auth.MinIterations, auth.MaxIterations))
		}
		seen[k] = true
	}

	before, err := json.Marshal(b.sec.users)
	if err != nil {
		return nil, fmt.Errorf("broker: AlterUserScramCredentials: %w", err)
	}
	changed := false
	for _, o := range ops {
		if results[o.user].ErrorCode != 0 {
			continue
		}
		if o.del != nil {
			err = b.sec.users.Delete(o.user, o.mech)
		} else {
			err = b.sec.users.SetSalted(o.user, o.mech, int(o.up.Iterations), o.up.Salt, o.up.SaltedPassword)
		}
		if err != nil {
			fail(o.user, kerr.UnacceptableCredential.Code, err.Error())
			continue
		}
		changed = true
	}
	if changed {
		if err := b.sec.saveUsersLocked(); err != nil {
			// Not durable: not in effect either.
			_ = json.Unmarshal(before, b.sec.users)
			b.cfg.Logger.Error("broker: AlterUserScramCredentials: write users", "err", err)
			for _, u := range order {
				if results[u].ErrorCode == 0 {
					fail(u, kerr.KafkaStorageError.Code, "the credentials could not be written: "+err.Error())
				}
			}
		}
	}
	for _, u := range order {
		resp.Results = append(resp.Results, *results[u])
	}
	return resp, nil
}
