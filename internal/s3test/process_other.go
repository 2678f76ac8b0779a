//go:build !linux

package s3test

import "os/exec"

// setProcessAttrs does nothing where the kernel cannot tie a child's life
// to its parent's; Main and t.Cleanup still stop every server they started.
func setProcessAttrs(*exec.Cmd) {}
