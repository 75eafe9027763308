package memcache

import "strconv"

// The encoders below append one request or response to dst and return the
// extended slice, in the style of strconv.AppendInt. They do not validate
// their arguments: keys must satisfy ValidKey, and an encoder given a
// command of the wrong family writes that command's name anyway.

// AppendGet appends "<cmd> <key>...\r\n", where cmd is Get or Gets.
func AppendGet(dst []byte, cmd Command, keys ...[]byte) []byte {
	dst = append(dst, cmd.String()...)
	for _, k := range keys {
		dst = append(dst, ' ')
		dst = append(dst, k...)
	}
	return append(dst, '\r', '\n')
}

// AppendGat appends "<cmd> <exptime> <key>...\r\n", where cmd is Gat or
// Gats.
func AppendGat(dst []byte, cmd Command, exptime int64, keys ...[]byte) []byte {
	dst = append(dst, cmd.String()...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, exptime, 10)
	for _, k := range keys {
		dst = append(dst, ' ')
		dst = append(dst, k...)
	}
	return append(dst, '\r', '\n')
}

// AppendStorage appends a storage request and its data block:
// "<cmd> <key> <flags> <exptime> <bytes> [noreply]\r\n<data>\r\n" for Set,
// Add, Replace, Append and Prepend, and
// "cas <key> <flags> <exptime> <bytes> <cas> [noreply]\r\n<data>\r\n" for
// Cas. casUnique is written only for Cas.
func AppendStorage(dst []byte, cmd Command, key []byte, flags uint32, exptime int64, casUnique uint64, data []byte, noreply bool) []byte {
	dst = append(dst, cmd.String()...)
	dst = append(dst, ' ')
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(flags), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, exptime, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	if cmd == Cas {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, casUnique, 10)
	}
	dst = appendNoreply(dst, noreply)
	dst = append(dst, data...)
	return append(dst, '\r', '\n')
}

// AppendIncr appends "incr <key> <delta> [noreply]\r\n".
func AppendIncr(dst []byte, key []byte, delta uint64, noreply bool) []byte {
	return appendArith(dst, Incr, key, delta, noreply)
}

// AppendDecr appends "decr <key> <delta> [noreply]\r\n".
func AppendDecr(dst []byte, key []byte, delta uint64, noreply bool) []byte {
	return appendArith(dst, Decr, key, delta, noreply)
}

func appendArith(dst []byte, cmd Command, key []byte, delta uint64, noreply bool) []byte {
	dst = append(dst, cmd.String()...)
	dst = append(dst, ' ')
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, delta, 10)
	return appendNoreply(dst, noreply)
}

// AppendDelete appends "delete <key> [noreply]\r\n".
func AppendDelete(dst []byte, key []byte, noreply bool) []byte {
	dst = append(dst, "delete "...)
	dst = append(dst, key...)
	return appendNoreply(dst, noreply)
}

// AppendTouch appends "touch <key> <exptime> [noreply]\r\n".
func AppendTouch(dst []byte, key []byte, exptime int64, noreply bool) []byte {
	dst = append(dst, "touch "...)
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, exptime, 10)
	return appendNoreply(dst, noreply)
}

// appendNoreply appends " noreply" if noreply is set, then CRLF.
func appendNoreply(dst []byte, noreply bool) []byte {
	if noreply {
		dst = append(dst, " noreply"...)
	}
	return append(dst, '\r', '\n')
}

// AppendRequest appends req in canonical form: single spaces, CRLF line
// ends, "delete <key> 0" written as "delete <key>", an ignored trailing
// token dropped. Parsing the result gives back req's Command, Keys,
// Flags, Exptime, Bytes (as len(req.Data)), Cas, Delta, Noreply and Data.
// For stats and the meta commands, whose arguments Request does not
// decode, and for Unknown, it appends req.Raw unchanged.
func AppendRequest(dst []byte, req *Request) []byte {
	key := func() []byte {
		if len(req.Keys) > 0 {
			return req.Keys[0]
		}
		return nil
	}
	switch req.Command {
	case Get, Gets:
		return AppendGet(dst, req.Command, req.Keys...)
	case Gat, Gats:
		return AppendGat(dst, req.Command, req.Exptime, req.Keys...)
	case Set, Add, Replace, Append, Prepend, Cas:
		return AppendStorage(dst, req.Command, key(), req.Flags, req.Exptime, req.Cas, req.Data, req.Noreply)
	case Incr, Decr:
		return appendArith(dst, req.Command, key(), req.Delta, req.Noreply)
	case Touch:
		return AppendTouch(dst, key(), req.Exptime, req.Noreply)
	case Delete:
		return AppendDelete(dst, key(), req.Noreply)
	case Version, Quit:
		dst = append(dst, req.Command.String()...)
		return append(dst, '\r', '\n')
	case Verbosity:
		dst = append(dst, "verbosity "...)
		dst = strconv.AppendUint(dst, req.Delta, 10)
		return appendNoreply(dst, req.Noreply)
	case FlushAll:
		dst = append(dst, "flush_all"...)
		if req.Exptime != 0 {
			dst = append(dst, ' ')
			dst = strconv.AppendInt(dst, req.Exptime, 10)
		}
		return appendNoreply(dst, req.Noreply)
	}
	return append(dst, req.Raw...)
}

// AppendValue appends "VALUE <key> <flags> <bytes>\r\n<data>\r\n", one
// block of a get or gat response.
func AppendValue(dst []byte, key []byte, flags uint32, data []byte) []byte {
	dst = appendValueLine(dst, key, flags, len(data))
	dst = append(dst, '\r', '\n')
	dst = append(dst, data...)
	return append(dst, '\r', '\n')
}

// AppendValueCas appends "VALUE <key> <flags> <bytes> <cas>\r\n<data>\r\n",
// one block of a gets or gats response.
func AppendValueCas(dst []byte, key []byte, flags uint32, data []byte, casUnique uint64) []byte {
	dst = appendValueLine(dst, key, flags, len(data))
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, casUnique, 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, data...)
	return append(dst, '\r', '\n')
}

func appendValueLine(dst []byte, key []byte, flags uint32, size int) []byte {
	dst = append(dst, "VALUE "...)
	dst = append(dst, key...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(flags), 10)
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, int64(size), 10)
}

// AppendEnd appends "END\r\n", which ends a get response.
func AppendEnd(dst []byte) []byte {
	return append(dst, "END\r\n"...)
}

// AppendResponse appends the line of a response that has fixed text:
// RespEnd, RespStored, RespNotStored, RespExists, RespNotFound,
// RespDeleted, RespTouched, RespOK, RespReset or RespError. For any other
// r it appends nothing; use the dedicated encoders for those.
func AppendResponse(dst []byte, r Response) []byte {
	switch r {
	case RespEnd, RespStored, RespNotStored, RespExists, RespNotFound, RespDeleted, RespTouched, RespOK, RespReset, RespError:
		dst = append(dst, r.String()...)
		return append(dst, '\r', '\n')
	}
	return dst
}

// AppendNumber appends "<v>\r\n", the reply to a successful incr or decr.
func AppendNumber(dst []byte, v uint64) []byte {
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '\r', '\n')
}

// AppendVersion appends "VERSION <version>\r\n". CR and LF in version are
// written as spaces.
func AppendVersion(dst []byte, version string) []byte {
	dst = append(dst, "VERSION "...)
	dst = appendText(dst, version)
	return append(dst, '\r', '\n')
}

// AppendError appends "ERROR\r\n", memcached's reply to an unknown
// command.
func AppendError(dst []byte) []byte {
	return append(dst, "ERROR\r\n"...)
}

// AppendClientError appends "CLIENT_ERROR <msg>\r\n". CR and LF in msg are
// written as spaces, so the reply stays one line.
func AppendClientError(dst []byte, msg string) []byte {
	dst = append(dst, "CLIENT_ERROR "...)
	dst = appendText(dst, msg)
	return append(dst, '\r', '\n')
}

// AppendServerError appends "SERVER_ERROR <msg>\r\n". CR and LF in msg are
// written as spaces, so the reply stays one line.
func AppendServerError(dst []byte, msg string) []byte {
	dst = append(dst, "SERVER_ERROR "...)
	dst = appendText(dst, msg)
	return append(dst, '\r', '\n')
}

// appendText appends s with CR and LF replaced by spaces.
func appendText(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}
