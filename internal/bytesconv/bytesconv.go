// Package bytesconv holds walnut's only no-copy conversions between string
// and []byte. Callers must treat the results as read-only and must not let a
// []byte made from a string be modified or outlive the string's use.
package bytesconv

import "unsafe"

// StringToBytes returns the bytes of s without copying. The result must not
// be modified.
func StringToBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// BytesToString returns b as a string without copying. b must not be modified
// while the string is in use.
func BytesToString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
