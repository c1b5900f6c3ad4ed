package cmd

import "fmt"

// count writes n with the singular or plural form of a noun: "1 file",
// "2 files", "0 indexes".
func count[N int | int64](n N, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
