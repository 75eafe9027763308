package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// levelAlways is the level of the lines nutcracker writes at any
// verbosity: start, stop and signals. It passes every level filter and is
// shown as INFO.
const levelAlways = slog.Level(1 << 20)

// slogLevel maps a nutcracker verbosity (0 EMERG … 3 ERR, 4 WARN, 5 NOTICE,
// 6 INFO, 7+ DEBUG) to the slog level that shows the same kinds of lines.
func slogLevel(verbosity int) slog.Level {
	switch {
	case verbosity <= 3:
		return slog.LevelError
	case verbosity == 4:
		return slog.LevelWarn
	case verbosity <= 6:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// verbosity is the current nutcracker log level and the slog.LevelVar it
// drives. It is safe for concurrent use.
type verbosity struct {
	mu    sync.Mutex
	n     int
	level slog.LevelVar
}

func newVerbosity(n int) *verbosity {
	v := &verbosity{n: n}
	v.level.Set(slogLevel(n))
	return v
}

// add changes the level by delta, within 0..maxVerbosity, and returns the
// new level.
func (v *verbosity) add(delta int) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n = max(0, min(maxVerbosity, v.n+delta))
	v.level.Set(slogLevel(v.n))
	return v.n
}

// newLogger returns a text logger writing to w at v's level.
func newLogger(w io.Writer, v *verbosity) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: &v.level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.LevelKey {
				if l, ok := a.Value.Any().(slog.Level); ok && l == levelAlways {
					a.Value = slog.StringValue(slog.LevelInfo.String())
				}
			}
			return a
		},
	}))
}

// always logs msg whatever the verbosity.
func always(log *slog.Logger, msg string, args ...any) {
	log.Log(context.Background(), levelAlways, msg, args...)
}

// logFile is the -o file. Reopen replaces it by a new open of the same
// path, for log rotation. It is safe for concurrent use.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// openLog opens path for appending, creating it with mode 0644 (less the
// umask), as nutcracker does. O_NOCTTY keeps a daemon, which is a session
// leader, from acquiring a terminal named by -o.
func openLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOCTTY, 0o644)
}

func newLogFile(path string) (*logFile, error) {
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, f: f}, nil
}

// Write implements io.Writer.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the path again and switches to it. On error the current
// file is kept.
func (l *logFile) Reopen() error {
	f, err := openLog(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
