package wsclients

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Process is a running client process, seen from the measuring process.
type Process struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser // closing it tells the client process to hang up
	report  *os.File       // the read end of the report pipe
	reportR *bufio.Reader  // over report
	buf     []byte         // the latest receipt times, as they came
}

// Start starts cmd, which must call Serve, with the report pipe as its file descriptor 3
// and a pipe as its stdin. cmd's program, arguments, environment (where Serve's Config
// comes from), stdout and stderr are the caller's.
func Start(cmd *exec.Cmd) (*Process, error) {
	report, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("report pipe: %w", err)
	}
	defer w.Close() // the client process's copy stays open
	// The first of the extra files is the client process's file descriptor 3, reportFD.
	cmd.ExtraFiles = []*os.File{w}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		report.Close()
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		report.Close()
		return nil, fmt.Errorf("start client process: %w", err)
	}
	return &Process{cmd: cmd, stdin: stdin, report: report, reportR: bufio.NewReaderSize(report, 1<<16)}, nil
}

// AwaitReady waits up to within until every client has connected and read its welcome.
func (p *Process) AwaitReady(within time.Duration) error { return p.expect(ready, within) }

// AwaitDone waits up to within until every client has read the latest frame.
func (p *Process) AwaitDone(within time.Duration) error { return p.expect(done, within) }

// expect reads the next report line and fails unless it is want.
func (p *Process) expect(want string, within time.Duration) error {
	p.report.SetReadDeadline(time.Now().Add(within))
	line, err := p.reportR.ReadString('\n')
	if err != nil {
		return fmt.Errorf("report: got %v, want %q", err, strings.TrimSuffix(want, "\n"))
	}
	if line != want {
		return fmt.Errorf("report: got %q, want %q", strings.TrimSuffix(line, "\n"), strings.TrimSuffix(want, "\n"))
	}
	return nil
}

// Receipts reads, within the given time, the receipt times that follow AwaitDone into
// dst, which holds one per client: client i's at dst[i], on Config.Now's clock.
func (p *Process) Receipts(dst []int64, within time.Duration) error {
	if len(p.buf) != 8*len(dst) {
		p.buf = make([]byte, 8*len(dst))
	}
	p.report.SetReadDeadline(time.Now().Add(within))
	if _, err := io.ReadFull(p.reportR, p.buf); err != nil {
		return fmt.Errorf("receipts: got %v, want %d bytes", err, len(p.buf))
	}
	for i := range dst {
		dst[i] = int64(binary.LittleEndian.Uint64(p.buf[8*i:]))
	}
	return nil
}

// Stop hangs up: it closes the client process's stdin, so that it closes its clients and
// exits, waits for that up to within, and kills it past that. It returns how the process
// ended (nil for a clean exit) and closes the report pipe.
func (p *Process) Stop(within time.Duration) error {
	p.stdin.Close()
	defer p.report.Close()
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		return err
	case <-time.After(within):
		p.cmd.Process.Kill()
		<-exited
		return fmt.Errorf("still running %v after the hang-up: killed", within)
	}
}
