//go:build unix

package dedupe

import "syscall"

// mapMemory returns n zeroed bytes mapped outside the Go heap, or nil when
// the system refuses (the caller then allocates on the heap).
func mapMemory(n int) []byte {
	mem, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	return mem
}

// unmapMemory returns what mapMemory mapped to the system.
func unmapMemory(mem []byte) { syscall.Munmap(mem) }
