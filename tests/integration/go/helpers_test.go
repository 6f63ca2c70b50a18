// Integration tests that drive real samsa-server processes with two Go Kafka clients,
// franz-go (kgo + kadm) and IBM/sarama. Every test starts its own broker on a free
// loopback port with a fresh data dir; the broker dies with the test binary
// (PR_SET_PDEATHSIG) and is stopped and removed by t.Cleanup whatever happens.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	startTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
	// testTimeout bounds each test's client calls; go test -timeout bounds the run.
	testTimeout = 120 * time.Second
)

var listeningRE = regexp.MustCompile(`samsa-server listening on port (\d+)\D`)

// runDir holds every broker dir of this test process. It is named after the process id
// so that a later run can remove what a killed run (e.g. go test's -timeout panic,
// which runs no cleanup) left behind; the servers themselves die with the process.
var runDir string

const runDirPrefix = "samsa-go-it-"

func TestMain(m *testing.M) {
	removeStaleRunDirs()
	d, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", runDirPrefix, os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the test run dir:", err)
		os.Exit(1)
	}
	runDir = d
	code := m.Run()
	os.RemoveAll(runDir)
	os.Exit(code)
}

func removeStaleRunDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), runDirPrefix+"*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), runDirPrefix+"%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // that run is still going
		}
		killStaleClusters(d)
		os.RemoveAll(d)
	}
}

// broker is one running samsa-server.
type broker struct {
	t          *testing.T
	cmd        *exec.Cmd
	port       int
	dataDir    string
	stderrPath string
	exited     chan struct{} // closed when the process has been reaped
}

func (b *broker) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

func serverBinary(t *testing.T) string {
	bin := os.Getenv("SAMSA_SERVER")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), "build", "samsa-server")
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		t.Fatalf("samsa-server binary not found at %q (set SAMSA_SERVER): %v", bin, err)
	}
	return bin
}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// startBroker runs samsa-server with the repo's config/server.properties, a fresh data
// dir, a kernel-chosen loopback port and the given extra overrides ("key=value"), and
// waits for its "listening on port N" line.
func startBroker(t *testing.T, overrides ...string) *broker {
	t.Helper()
	bin := serverBinary(t)
	base, err := os.MkdirTemp(runDir, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) }) // runs after b.cleanup, registered later
	b := &broker{
		t:          t,
		dataDir:    filepath.Join(base, "data"),
		stderrPath: filepath.Join(base, "server.stderr"),
		exited:     make(chan struct{}),
	}
	args := []string{"-c", filepath.Join(repoRoot(t), "config", "server.properties"),
		"--override", "log.dirs=" + b.dataDir,
		"--override", "listeners=PLAINTEXT://127.0.0.1:0",
		"--override", "advertised.listeners=PLAINTEXT://127.0.0.1:0"}
	for _, o := range overrides {
		args = append(args, "--override", o)
	}
	errFile, err := os.Create(b.stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command(bin, args...)
	b.cmd.Stdout = outW
	b.cmd.Stderr = errFile
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		outR.Close()
		outW.Close()
		t.Fatalf("starting %s: %v", bin, err)
	}
	outW.Close()
	go func() {
		b.cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(b.cleanup)

	// Read stdout until the port line; keep draining it afterwards.
	portCh := make(chan int, 1)
	go func() {
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		sent := false
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text() + "\n"); m != nil && !sent {
				p, _ := strconv.Atoi(m[1])
				portCh <- p
				sent = true
			}
		}
		io.Copy(io.Discard, outR)
	}()
	select {
	case b.port = <-portCh:
	case <-b.exited:
		t.Fatalf("samsa-server exited (%v) before listening\n%s", b.cmd.ProcessState, b.stderrTail(40))
	case <-time.After(startTimeout):
		t.Fatalf("samsa-server did not report its port within %v\n%s", startTimeout, b.stderrTail(40))
	}
	return b
}

// cleanup stops the server (SIGTERM, SIGKILL after stopTimeout), prints its stderr
// tail when the test failed. Its dir is removed by the cleanup startBroker registered
// before this one.
func (b *broker) cleanup() {
	select {
	case <-b.exited:
	default:
		b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.exited:
		case <-time.After(stopTimeout):
			b.t.Logf("samsa-server ignored SIGTERM for %v; killing it", stopTimeout)
			b.cmd.Process.Kill()
			<-b.exited
		}
	}
	if b.t.Failed() {
		b.t.Logf("---- samsa-server stderr tail (port %d) ----\n%s", b.port, b.stderrTail(60))
	}
}

func (b *broker) stderrTail(n int) string {
	data, err := os.ReadFile(b.stderrPath)
	if err != nil {
		return "(no stderr file: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testCtx is the test's deadline for client calls.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// logBuf collects a client's log lines; they are printed only if the test fails.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 1<<20 { // keep the newest ~1 MiB
		rest := append([]byte(nil), l.buf.Bytes()[l.buf.Len()/2:]...)
		l.buf.Reset()
		l.buf.Write(rest)
	}
	return l.buf.Write(p)
}

func (l *logBuf) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() == 0 {
		return "(no log lines)"
	}
	lines := strings.Split(strings.TrimRight(l.buf.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// newKgo makes a franz-go client for b; it is closed at the end of the test (before
// the broker stops) and its log tail is printed if the test failed.
func newKgo(t *testing.T, b *broker, name string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newKgoSeeds(t, []string{b.addr()}, name, opts...)
}

// newKgoSeeds is newKgo for a client that bootstraps from seeds ("host:port").
func newKgoSeeds(t *testing.T, seeds []string, name string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	logs := &logBuf{}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("samsa-go-" + name),
		kgo.WithLogger(kgo.BasicLogger(logs, kgo.LogLevelInfo, func() string {
			return time.Now().Format("15:04:05.000 ") + name + " "
		})),
		kgo.RetryTimeout(30 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient(%s): %v", name, err)
	}
	closers.Store(cl, new(sync.Once))
	t.Cleanup(func() {
		closeKgo(cl, true)
		if t.Failed() {
			t.Logf("---- franz-go client %s log tail ----\n%s", name, logs.tail(40))
		}
	})
	return cl
}

// closers holds a sync.Once per client made by newKgo, so that a test may close a
// client early and the cleanup does not close it twice.
var closers sync.Map // *kgo.Client -> *sync.Once

// closeKgo closes cl once; allowRebalance first lifts a BlockRebalanceOnPoll block so
// that leaving the group cannot wait on it.
func closeKgo(cl *kgo.Client, allowRebalance bool) {
	o, _ := closers.Load(cl)
	o.(*sync.Once).Do(func() {
		if allowRebalance {
			cl.CloseAllowingRebalance()
		} else {
			cl.Close()
		}
	})
}

func newKadm(t *testing.T, b *broker) (*kadm.Client, *kgo.Client) {
	cl := newKgo(t, b, "admin")
	return kadm.NewClient(cl), cl
}

// waitFor polls cond until it returns nil or ctx ends; the last error is reported.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() error) {
	t.Helper()
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
