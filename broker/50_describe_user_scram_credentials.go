package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/spoolmq/spool/auth"
)

// DescribeUserScramCredentials: v0
//
// Behaviour:
//   - Users nil or empty: every user with a credential. Otherwise each
//     named user: its mechanisms and iteration counts (never salts or
//     keys), RESOURCE_NOT_FOUND for one without a credential,
//     DUPLICATE_RESOURCE for one named twice.
//   - Needs Describe on the cluster: CLUSTER_AUTHORIZATION_FAILED.
//
// Version notes:
//   - v0 is the only version (KIP-554), flexible

// scramMechanisms maps KIP-554's mechanism numbers to names.
var scramMechanisms = map[int8]string{1: auth.ScramSHA256, 2: auth.ScramSHA512}

func scramMechanismCode(name string) int8 {
	for k, v := range scramMechanisms {
		if v == name {
			return k
		}
	}
	return 0
}

func (b *Broker) handleDescribeUserScramCredentials(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !r.allowed(resCluster, clusterName, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	info := map[string]auth.UserInfo{}
	var all []string
	for _, u := range b.sec.users.List() {
		info[u.User] = u
		all = append(all, u.User)
	}
	names := all
	if len(req.Users) > 0 {
		names = nil
		for _, u := range req.Users {
			names = append(names, u.Name)
		}
	}
	seen := map[string]int{}
	for _, n := range names {
		seen[n]++
	}
	reported := map[string]bool{}
	for _, n := range names {
		if reported[n] {
			continue
		}
		reported[n] = true
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = n
		switch u, ok := info[n]; {
		case seen[n] > 1:
			res.ErrorCode = kerr.DuplicateResource.Code
		case !ok:
			res.ErrorCode = kerr.ResourceNotFound.Code
			msg := "no SCRAM credential for user " + n
			res.ErrorMessage = &msg
		default:
			for mech, iters := range u.Mechanisms {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism, ci.Iterations = scramMechanismCode(mech), int32(iters)
				res.CredentialInfos = append(res.CredentialInfos, ci)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
