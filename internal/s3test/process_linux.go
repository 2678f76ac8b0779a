package s3test

import (
	"os/exec"
	"syscall"
)

// setProcessAttrs ties MinIO's life to the test binary's: should the test
// binary die without cleaning up (a panic in another goroutine, a timeout,
// a SIGKILL), the kernel kills MinIO too instead of leaving it running.
func setProcessAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
