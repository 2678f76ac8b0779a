package s3test

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
)

// maxServerLog bounds how much of a server's output is kept for dumps; the
// start and the end of a run are what explain a failure, so the middle goes.
const maxServerLog = 1 << 20

// serverLog keeps a server's stdout and stderr as lines, the first and the
// last ones when there are too many, and hands every line to an observer
// (startup uses it to find the address MinIO chose). Secrets registered with
// it are removed from what it returns. It is safe for concurrent use.
type serverLog struct {
	mu       sync.Mutex
	head     bytes.Buffer
	tail     []string
	tailSize int
	dropped  int
	partial  map[string][]byte // unfinished line per stream
	observer func(line string)
	secrets  []string
}

func newServerLog() *serverLog {
	return &serverLog{partial: make(map[string][]byte)}
}

// stream returns a writer for one output stream (stdout or stderr), so the
// two do not break each other's lines.
func (l *serverLog) stream(name string) *logStream { return &logStream{log: l, name: name} }

type logStream struct {
	log  *serverLog
	name string
}

func (s *logStream) Write(p []byte) (int, error) {
	s.log.write(s.name, p)
	return len(p), nil
}

func (l *serverLog) write(stream string, p []byte) {
	l.mu.Lock()
	buf := append(l.partial[stream], p...)
	var lines []string
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(buf[:i]))
		buf = buf[i+1:]
	}
	l.partial[stream] = bytes.Clone(buf)
	for _, line := range lines {
		l.appendLocked(line)
	}
	observer := l.observer
	l.mu.Unlock()

	if observer != nil {
		for _, line := range lines {
			observer(line)
		}
	}
}

func (l *serverLog) appendLocked(line string) {
	if l.head.Len()+len(line) < maxServerLog/2 {
		l.head.WriteString(line)
		l.head.WriteByte('\n')
		return
	}
	l.tail = append(l.tail, line)
	l.tailSize += len(line) + 1
	for l.tailSize > maxServerLog/2 && len(l.tail) > 1 {
		l.tailSize -= len(l.tail[0]) + 1
		l.tail = l.tail[1:]
		l.dropped++
	}
}

// note adds a line of the harness's own, such as a restart, so a dump
// shows where it happened.
func (l *serverLog) note(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.appendLocked("--- s3test: " + line)
}

// setObserver makes f see every complete line from now on; nil stops it.
func (l *serverLog) setObserver(f func(line string)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observer = f
}

// redact registers values that must never appear in what String returns.
func (l *serverLog) redact(secrets ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			l.secrets = append(l.secrets, s)
		}
	}
}

// String returns the kept output with secrets replaced by "********".
func (l *serverLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()

	var b strings.Builder
	b.Write(l.head.Bytes())
	if l.dropped > 0 {
		b.WriteString("--- s3test: ")
		b.WriteString(strconv.Itoa(l.dropped))
		b.WriteString(" lines left out ---\n")
	}
	for _, line := range l.tail {
		b.WriteString(line)
		b.WriteByte('\n')
	}
	for _, stream := range []string{"stdout", "stderr"} {
		if p := l.partial[stream]; len(p) > 0 {
			b.Write(p)
			b.WriteByte('\n')
		}
	}
	out := b.String()
	for _, s := range l.secrets {
		out = strings.ReplaceAll(out, s, "********")
	}
	return out
}
