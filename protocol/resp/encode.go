package resp

import (
	"strconv"

	"github.com/walnutproxy/walnut/internal/bytesconv"
)

// The Append functions encode one RESP frame, or a frame header, onto dst
// and return the extended slice, in the style of strconv.AppendInt. They
// are safe for concurrent use on distinct slices.

// AppendArrayHeader appends the header of an array of n elements,
// "*<n>\r\n"; the n elements must follow. Use AppendNullArray for a nil
// array.
func AppendArrayHeader(dst []byte, n int) []byte {
	return appendHeader(dst, TypeArray, int64(n))
}

// AppendBulk appends b as a bulk string, "$<len>\r\n<b>\r\n". A nil b is
// encoded as an empty bulk string; use AppendNullBulk for a nil bulk.
func AppendBulk(dst, b []byte) []byte {
	dst = appendHeader(dst, TypeBulk, int64(len(b)))
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends s as a bulk string, "$<len>\r\n<s>\r\n".
func AppendBulkString(dst []byte, s string) []byte {
	dst = appendHeader(dst, TypeBulk, int64(len(s)))
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendNullBulk appends a nil bulk string, "$-1\r\n".
func AppendNullBulk(dst []byte) []byte {
	return append(dst, "$-1\r\n"...)
}

// AppendNullArray appends a nil array, "*-1\r\n".
func AppendNullArray(dst []byte) []byte {
	return append(dst, "*-1\r\n"...)
}

// AppendInt appends an integer reply, ":<n>\r\n".
func AppendInt(dst []byte, n int64) []byte {
	return appendHeader(dst, TypeInt, n)
}

// AppendSimple appends a simple string reply, "+<s>\r\n". CR and LF in s
// become spaces, as redis-server does for error texts, so the frame stays
// well formed.
func AppendSimple(dst []byte, s string) []byte {
	return appendLine(dst, TypeSimple, s)
}

// AppendError appends an error reply, "-<msg>\r\n". msg starts with the
// error code and has no '-': "ERR unknown command", or the Reply of a
// *protocol.Error. CR and LF in msg become spaces.
func AppendError(dst []byte, msg string) []byte {
	return appendLine(dst, TypeError, msg)
}

// AppendCommand appends a command as an array of bulk strings, the form
// every redis-server accepts.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = appendHeader(dst, TypeArray, int64(len(args)))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}

// AppendCommandString is AppendCommand for string arguments.
func AppendCommandString(dst []byte, args ...string) []byte {
	dst = appendHeader(dst, TypeArray, int64(len(args)))
	for _, a := range args {
		dst = AppendBulkString(dst, a)
	}
	return dst
}

// AppendValue appends v in the RESP2 or RESP3 form its Type names, with its
// attributes first and its elements after it; a map or attribute with
// an odd number of entries loses the last one. Streamed values are written
// in their counted form. A Value of unknown Type is written as a nil bulk,
// so the frames around it keep their shape. AppendValue recurses into
// Elems; it is meant for values ParseReply built or a caller assembled,
// whose depth is already bounded.
func AppendValue(dst []byte, v Value) []byte {
	if k := len(v.Attrs) / 2; k > 0 {
		dst = appendHeader(dst, TypeAttribute, int64(k))
		for _, a := range v.Attrs[:2*k] {
			dst = AppendValue(dst, a)
		}
	}
	switch v.Type {
	case TypeSimple, TypeError, TypeDouble, TypeBigInt:
		return appendLine(dst, v.Type, bytesconv.BytesToString(v.Str))
	case TypeInt:
		return AppendInt(dst, v.Int)
	case TypeNull:
		return append(dst, "_\r\n"...)
	case TypeBool:
		if v.Int != 0 {
			return append(dst, "#t\r\n"...)
		}
		return append(dst, "#f\r\n"...)
	case TypeBulk, TypeBlobError, TypeVerbatim:
		if v.Null && v.Type == TypeBulk {
			return AppendNullBulk(dst)
		}
		dst = appendHeader(dst, v.Type, int64(len(v.Str)))
		dst = append(dst, v.Str...)
		return append(dst, '\r', '\n')
	case TypeArray, TypeMap, TypeSet, TypePush:
		if v.Null && v.Type == TypeArray {
			return AppendNullArray(dst)
		}
		n := len(v.Elems)
		if v.Type == TypeMap {
			n /= 2
		}
		dst = appendHeader(dst, v.Type, int64(n))
		for _, e := range v.Elems[:elemsFor(v.Type, n)] {
			dst = AppendValue(dst, e)
		}
		return dst
	}
	return AppendNullBulk(dst)
}

// elemsFor is how many elements an aggregate of n entries holds.
func elemsFor(typ byte, n int) int {
	if typ == TypeMap {
		return 2 * n
	}
	return n
}

// appendHeader appends "<typ><n>\r\n".
func appendHeader(dst []byte, typ byte, n int64) []byte {
	dst = append(dst, typ)
	if n >= 0 && n < 10 {
		dst = append(dst, byte('0'+n))
	} else {
		dst = strconv.AppendInt(dst, n, 10)
	}
	return append(dst, '\r', '\n')
}

// appendLine appends "<typ><s>\r\n" with CR and LF in s made spaces.
func appendLine(dst []byte, typ byte, s string) []byte {
	dst = append(dst, typ)
	start := len(dst)
	dst = append(dst, s...)
	for i, c := range dst[start:] {
		if c == '\r' || c == '\n' {
			dst[start+i] = ' '
		}
	}
	return append(dst, '\r', '\n')
}
