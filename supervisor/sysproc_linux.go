package supervisor

import "syscall"

// sysProcAttr puts the child in its own process group and has the kernel
// kill it if the supervisor's thread dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
