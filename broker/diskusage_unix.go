//go:build linux || darwin || freebsd

package broker

import "golang.org/x/sys/unix"

// diskUsage returns the free and total bytes of the file system holding
// dir, ok false when they cannot be read.
func diskUsage(dir string) (free, total uint64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	bs := uint64(st.Bsize)
	return st.Bavail * bs, st.Blocks * bs, true
}
