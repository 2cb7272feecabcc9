package broker

import (
	"path/filepath"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs: v0-4
//
// Behaviour:
//   - One log dir, the data directory (absolute path), with the on-disk size
//     of each requested partition (all when Topics is null). OffsetLag is 0
//     and IsFuture false: there is no replication and no dir movement.
//     Unknown topics or partitions are left out, as Kafka does.
//   - v4: TotalBytes and UsableBytes of the file system (statfs), -1 when
//     unknown.
//
// Version notes:
//   - v1: ThrottleMillis semantics; v2: flexible; v3: ErrorCode;
//     v4: TotalBytes, UsableBytes

func (b *Broker) handleDescribeLogDirs(r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !r.allowed(resCluster, clusterName, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.cfg.DataDir
	if abs, err := filepath.Abs(b.cfg.DataDir); err == nil {
		dir.Dir = abs
	}
	dir.TotalBytes, dir.UsableBytes = diskSpace(dir.Dir)

	set := b.topics()
	addTopic := func(t *topic, parts []int32) {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = t.name
		for _, p := range parts {
			l := t.partition(p)
			if l == nil {
				continue
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition, dp.Size = p, l.Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		dir.Topics = append(dir.Topics, dt)
	}
	if req.Topics == nil {
		for _, t := range set.sorted() {
			parts := make([]int32, len(t.parts))
			for i := range parts {
				parts[i] = int32(i)
			}
			addTopic(t, parts)
		}
	} else {
		for _, rt := range req.Topics {
			if t, ok := set.byName[rt.Topic]; ok {
				addTopic(t, rt.Partitions)
			}
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}

// diskSpace returns the total and available bytes of the file system
// holding dir, or -1, -1.
func diskSpace(dir string) (total, usable int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize)
}
