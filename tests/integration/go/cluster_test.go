// franz-go against three-node clusters started with `samsa cluster up` (docs/cli.md,
// "Local cluster"): topics spread over the brokers, an idempotent producer and a
// consumer group across them, and the active controller killed.
//
// The nodes run detached (their own sessions), so they do not die with the test binary:
// t.Cleanup runs `samsa cluster down --purge` and then SIGKILLs any node still listed in
// the cluster's pids file, and a later run stops the nodes of a run that was killed
// (killStaleClusters, from removeStaleRunDirs).
package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	clusterNodes     = 3
	clusterUpTimeout = 60 * time.Second
	// `cluster down` gives nodes 20 s after SIGTERM, then SIGKILLs them.
	clusterDownTimeout = 40 * time.Second
)

var activeControllerRE = regexp.MustCompile(`Active controller: node (\d+)`)

// cluster is a running `samsa cluster up` cluster in dir; node i serves clients on
// base + 10*(i-1).
type cluster struct {
	t          *testing.T
	dir        string
	base       int
	controller int32 // the active controller `up` named
}

func (c *cluster) addr(node int32) string {
	return fmt.Sprintf("127.0.0.1:%d", c.base+10*int(node-1))
}

// addrs lists the client addresses of every node but those in except.
func (c *cluster) addrs(except ...int32) []string {
	var out []string
	for n := int32(1); n <= clusterNodes; n++ {
		if !slices.Contains(except, n) {
			out = append(out, c.addr(n))
		}
	}
	return out
}

// notController is a node other than the active controller: clients bootstrapped with
// it have to find the controller (and the partition leaders) through Metadata.
func (c *cluster) notController() int32 {
	if c.controller == 1 {
		return 2
	}
	return 1
}

// cliBinary is $SAMSA_CLI, else tools/samsa beside samsa-server.
func cliBinary(t *testing.T) string {
	bin := os.Getenv("SAMSA_CLI")
	if bin == "" {
		bin = filepath.Join(filepath.Dir(serverBinary(t)), "tools", "samsa")
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		t.Fatalf("samsa CLI not found at %q (set SAMSA_CLI): %v", bin, err)
	}
	return bin
}

// runCLI runs `samsa cluster args...` with a deadline and returns its combined output.
func runCLI(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cliBinary(t), append([]string{"cluster"}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startCluster runs `samsa cluster up --nodes 3` on a random base port below the
// ephemeral range (another one if a port is taken) and returns once the cluster is ready.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	server := serverBinary(t)
	base, err := os.MkdirTemp(runDir, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) }) // runs after c.stop, registered later
	c := &cluster{t: t, dir: filepath.Join(base, "cluster")}
	t.Cleanup(c.stop)
	var out string
	for attempt := 0; attempt < 5; attempt++ {
		c.base = 20000 + rand.IntN(1000)*10
		out, err = runCLI(t, clusterUpTimeout, "up", "--nodes", strconv.Itoa(clusterNodes), "--dir", c.dir,
			"--base-port", strconv.Itoa(c.base), "--server", server)
		if err == nil {
			m := activeControllerRE.FindStringSubmatch(out)
			want := "bootstrap.servers=" + strings.Join(c.addrs(), ",")
			if m == nil || !strings.Contains(out, want) {
				t.Fatalf("samsa cluster up: no %q or active controller in its output:\n%s", want, out)
			}
			n, _ := strconv.Atoi(m[1])
			c.controller = int32(n)
			return c
		}
		if !strings.Contains(out, "is not free") && !strings.Contains(out, "Address already in use") {
			break
		}
		killNodes(c.dir)
		os.RemoveAll(c.dir)
	}
	t.Fatalf("samsa cluster up: %v\n%s", err, out)
	return nil
}

// stop prints the nodes' log tails if the test failed, then runs `cluster down --purge`
// and SIGKILLs whatever it left.
func (c *cluster) stop() {
	if c.t.Failed() {
		for n := 1; n <= clusterNodes; n++ {
			log := filepath.Join(c.dir, fmt.Sprintf("node%d", n), "server.log")
			c.t.Logf("---- node %d log tail ----\n%s", n, (&broker{stderrPath: log}).stderrTail(30))
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, "cluster")); err == nil {
		if out, err := runCLI(c.t, clusterDownTimeout, "down", "--dir", c.dir, "--purge"); err != nil {
			c.t.Logf("samsa cluster down --purge: %v\n%s", err, out)
		}
	}
	killNodes(c.dir)
}

// readPids reads dir/pids: node i+1's pid on line i.
func readPids(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, l := range strings.Fields(string(data)) {
		p, err := strconv.Atoi(l)
		if err != nil {
			break // a partly written line
		}
		pids = append(pids, p)
	}
	return pids
}

// isNode says whether pid is a samsa-server of the cluster in dir (its command line
// names a node's properties file there). A zombie's command line is empty.
func isNode(dir string, pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(cmdline), dir+"/node")
}

// killNodes SIGKILLs every node of the cluster in dir that is still running.
func killNodes(dir string) {
	for _, p := range readPids(dir) {
		if isNode(dir, p) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// killStaleClusters stops the clusters a killed test run left in its run dir d.
func killStaleClusters(d string) {
	pidFiles, _ := filepath.Glob(filepath.Join(d, "*", "cluster", "pids"))
	for _, f := range pidFiles {
		killNodes(filepath.Dir(f))
	}
}

// kill SIGKILLs node and waits until it is gone.
func (c *cluster) kill(node int32) {
	c.t.Helper()
	pids := readPids(c.dir)
	if int(node) > len(pids) || !isNode(c.dir, pids[node-1]) {
		c.t.Fatalf("node %d is not running (pids %v)", node, pids)
	}
	pid := pids[node-1]
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill -9 %d (node %d): %v", pid, node, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for isNode(c.dir, pid) {
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d (pid %d) still alive 10 s after SIGKILL", node, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// partitionLeaders maps each partition of topic to its leader (-1 for none). It waits
// until the node asked knows the topic with all parts partitions: CreateTopics returns
// once the controller committed the topic, and the other nodes apply it a little later.
func partitionLeaders(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, parts int) map[int32]int32 {
	t.Helper()
	out := map[int32]int32{}
	waitFor(t, ctx, "Metadata to list "+topic, func() error {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		d := md.Topics[topic]
		if d.Err != nil {
			return d.Err
		}
		if len(d.Partitions) != parts {
			return fmt.Errorf("%d partitions, want %d", len(d.Partitions), parts)
		}
		clear(out)
		for _, p := range d.Partitions.Sorted() {
			out[p.Partition] = p.Leader
		}
		return nil
	})
	return out
}

// consumeExactly polls cl until want records with distinct values came, failing on a
// duplicate or a fetch error, then checks that nothing more arrives. A group session
// that could not be joined is only logged: franz-go reports it as a fetch error and
// joins again by itself (a node whose group coordinator is still loading
// __consumer_offsets right after `cluster up` closes the connection of a JoinGroup).
func consumeExactly(t *testing.T, ctx context.Context, cl *kgo.Client, want int) map[string]*kgo.Record {
	t.Helper()
	seen := map[string]*kgo.Record{}
	add := func(pctx context.Context, fs kgo.Fetches) {
		fs.EachError(func(topic string, p int32, err error) {
			var session *kgo.ErrGroupSession
			switch {
			case pctx.Err() != nil && errors.Is(err, pctx.Err()):
			case errors.As(err, &session):
				t.Logf("franz-go retries its group session: %v", err)
			default:
				t.Fatalf("fetch error on %s/%d: %v", topic, p, err)
			}
		})
		for _, r := range fs.Records() {
			if prev, dup := seen[string(r.Value)]; dup {
				t.Fatalf("%s consumed twice: at %s/%d/%d and %s/%d/%d", r.Value,
					prev.Topic, prev.Partition, prev.Offset, r.Topic, r.Partition, r.Offset)
			}
			seen[string(r.Value)] = r
		}
	}
	for len(seen) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline: %v", len(seen), want, ctx.Err())
		}
		add(ctx, fs)
	}
	if len(seen) != want {
		t.Fatalf("consumed %d records, want %d", len(seen), want)
	}
	quiet, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	add(quiet, cl.PollFetches(quiet))
	if len(seen) != want {
		t.Fatalf("consumed %d records after the %d produced", len(seen)-want, want)
	}
	return seen
}

// TestFranzCluster: a 12-partition topic created through one node that is not the
// controller gets leaders on all three brokers; an idempotent producer (franz-go's
// default, acks=all) writes keyed records to every partition, and a consumer group
// member reads each exactly once and commits where it ended.
func TestFranzCluster(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx := testCtx(t)
	seed := []string{c.addr(c.notController())}
	adm := kadm.NewClient(newKgoSeeds(t, seed, "admin"))
	const topic, parts, n = "franz-cluster", 12, 3000
	createTopic(t, ctx, adm, topic, parts, nil)
	leaders := partitionLeaders(t, ctx, adm, topic, parts)
	on := map[int32]bool{}
	for _, l := range leaders {
		on[l] = true
	}
	if len(leaders) != parts || len(on) != clusterNodes || !on[1] || !on[2] || !on[3] {
		t.Fatalf("leaders of %s: %v, want %d partitions led by nodes 1, 2 and 3", topic, leaders, parts)
	}

	prod := newKgoSeeds(t, seed, "producer", kgo.DefaultProduceTopic(topic))
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v-%d", i))})
	}
	res := prod.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	perPartition := map[int32]int64{}
	for _, r := range res {
		perPartition[r.Record.Partition]++
	}
	if len(perPartition) != parts {
		t.Fatalf("records per partition %v: not every partition got some", perPartition)
	}

	const group = "franz-cluster-group"
	cons := newKgoSeeds(t, seed, "consumer", kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit())
	seen := consumeExactly(t, ctx, cons, n)
	for i := 0; i < n; i++ {
		r, ok := seen[fmt.Sprintf("v-%d", i)]
		if !ok {
			t.Fatalf("v-%d not consumed", i)
		}
		if string(r.Key) != fmt.Sprintf("k%d", i) {
			t.Fatalf("v-%d has key %q", i, r.Key)
		}
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("FetchOffsets(%s): %v", group, err)
	}
	for p := int32(0); p < parts; p++ {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != perPartition[p] {
			t.Errorf("partition %d committed %+v, want offset %d", p, o, perPartition[p])
		}
	}
}

// TestFranzClusterControllerKilled: the active controller (also a broker) is killed;
// CreateTopics through the other two succeeds once they elected another, and a
// producer and a consumer work on the partitions the surviving brokers lead.
func TestFranzClusterControllerKilled(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(newKgoSeeds(t, []string{c.addr(c.notController())}, "admin"))
	const before, after = "franz-before-kill", "franz-after-kill"
	createTopic(t, ctx, adm, before, 12, nil)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	killed := md.Controller
	if killed < 1 || killed > clusterNodes {
		t.Fatalf("controller %d", killed)
	}
	c.kill(killed)
	var rest []int32
	for n := int32(1); n <= clusterNodes; n++ {
		if n != killed {
			rest = append(rest, n)
		}
	}

	// CreateTopics through the survivors, retried with a short deadline per try until a
	// new controller commits it; a try that timed out may have committed it already.
	adm2 := kadm.NewClient(newKgoSeeds(t, c.addrs(killed), "admin-after", kgo.RetryTimeout(5*time.Second)))
	waitFor(t, ctx, "CreateTopics through the surviving nodes", func() error {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		r, err := adm2.CreateTopic(tctx, 6, 1, nil, after)
		if errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return nil
		}
		if err == nil {
			err = r.Err
		}
		return err
	})
	waitFor(t, ctx, "a surviving node to be the controller", func() error {
		md, err := adm2.BrokerMetadata(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(rest, md.Controller) {
			return fmt.Errorf("controller %d", md.Controller)
		}
		return nil
	})

	// The partitions of both topics that the survivors lead (the killed broker's keep it
	// as their leader until it is fenced, and have none after).
	type tp struct {
		topic string
		part  int32
	}
	var alive []tp
	for topic, parts := range map[string]int{before: 12, after: 6} {
		for p, l := range partitionLeaders(t, ctx, adm2, topic, parts) {
			if slices.Contains(rest, l) {
				alive = append(alive, tp{topic, p})
			}
		}
	}
	if len(alive) == 0 {
		t.Fatalf("no partition on the surviving nodes %v", rest)
	}

	prod := newKgoSeeds(t, c.addrs(killed), "producer", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	n := 40 * len(alive)
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		at := alive[i%len(alive)]
		recs = append(recs, &kgo.Record{Topic: at.topic, Partition: at.part, Value: []byte(fmt.Sprintf("after-%d", i))})
	}
	res := prod.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce to the surviving brokers: %v", err)
	}
	from := map[string]map[int32]kgo.Offset{}
	first := map[tp]int64{}
	for _, r := range res {
		k := tp{r.Record.Topic, r.Record.Partition}
		if o, ok := first[k]; !ok || r.Record.Offset < o {
			first[k] = r.Record.Offset
		}
	}
	for k, o := range first {
		if from[k.topic] == nil {
			from[k.topic] = map[int32]kgo.Offset{}
		}
		from[k.topic][k.part] = kgo.NewOffset().At(o)
	}
	cons := newKgoSeeds(t, c.addrs(killed), "consumer", kgo.ConsumePartitions(from))
	seen := consumeExactly(t, ctx, cons, n)
	for i := 0; i < n; i++ {
		if _, ok := seen[fmt.Sprintf("after-%d", i)]; !ok {
			t.Fatalf("after-%d not consumed", i)
		}
	}
}

// restart starts node again after it was killed, as `cluster up` starts a node (its
// properties file, its own session, stdin from /dev/null, stdout and stderr appended to
// its server.log), and puts its new pid in the pids file so that c.stop stops it too.
// It returns once the log shows the node listening for clients again.
func (c *cluster) restart(node int32) {
	c.t.Helper()
	pids := readPids(c.dir)
	if int(node) > len(pids) || isNode(c.dir, pids[node-1]) {
		c.t.Fatalf("node %d is still running (pids %v)", node, pids)
	}
	nodeDir := filepath.Join(c.dir, fmt.Sprintf("node%d", node))
	logPath := filepath.Join(nodeDir, "server.log")
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	defer log.Close()
	st, err := log.Stat()
	if err != nil {
		c.t.Fatal(err)
	}
	from := st.Size()
	cmd := exec.Command(serverBinary(c.t), "-c", filepath.Join(nodeDir, "server.properties"))
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("restarting node %d: %v", node, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	pids[node-1] = cmd.Process.Pid
	var lines strings.Builder
	for _, p := range pids {
		fmt.Fprintf(&lines, "%d\n", p)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "pids"), []byte(lines.String()), 0o644); err != nil {
		c.t.Fatal(err)
	}
	want := fmt.Sprintf("samsa-server listening on port %d ", c.base+10*int(node-1))
	deadline := time.Now().Add(clusterUpTimeout)
	for {
		data, _ := os.ReadFile(logPath)
		if int64(len(data)) > from && strings.Contains(string(data[from:]), want) {
			return
		}
		select {
		case <-exited:
			c.t.Fatalf("node %d exited on restart (%v)", node, cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d not listening %v after its restart", node, clusterUpTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failoverAck is one acknowledged record: where franz-go was told it landed, and which
// record it was (its send sequence number).
type failoverAck struct {
	partition int32
	offset    int64
	seq       int64
}

func failoverValue(seq int64) string { return fmt.Sprintf("f-%08d", seq) }

// TestFranzClusterLeaderKilled: franz-go follows a partition leader's loss by itself.
// Six partitions with three replicas each and min.insync.replicas=2; an idempotent
// acks=all producer (franz-go's default), seeded with all three nodes, sends keyed
// records without pause; after some acks the leader of partition 0 is killed with
// SIGKILL. The producer, with no help from this code, gets acks again on every partition
// for records sent after the kill, and no record fails. A consumer group on the two
// survivors then reads each acknowledged record exactly once, at the offset it was
// acknowledged with, and per partition in the order sent (which idempotence keeps). The
// killed node, started again, is listed by Metadata and rejoins every partition's ISR.
func TestFranzClusterLeaderKilled(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(newKgoSeeds(t, c.addrs(), "admin"))
	const topic, parts = "franz-failover", 6
	resp, err := adm.CreateTopic(ctx, parts, 3, map[string]*string{"min.insync.replicas": strp("2")}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("CreateTopic(%s): %v", topic, err)
	}
	topicMeta := func(a *kadm.Client) (kadm.TopicDetail, error) {
		md, err := a.Metadata(ctx, topic)
		if err != nil {
			return kadm.TopicDetail{}, err
		}
		d := md.Topics[topic]
		if d.Err == nil && len(d.Partitions) != parts {
			return d, fmt.Errorf("%d partitions, want %d", len(d.Partitions), parts)
		}
		return d, d.Err
	}
	waitFor(t, ctx, "every partition with a leader and three in-sync replicas", func() error {
		d, err := topicMeta(adm)
		if err != nil {
			return err
		}
		for _, p := range d.Partitions {
			if p.Leader < 0 || len(p.ISR) != 3 {
				return fmt.Errorf("partition %d: leader %d, isr %v", p.Partition, p.Leader, p.ISR)
			}
		}
		return nil
	})

	prod := newKgoSeeds(t, c.addrs(), "producer", kgo.DefaultProduceTopic(topic))
	var (
		mu       sync.Mutex
		acks     []failoverAck // in the order the promises ran
		lastSeq  = map[int32]int64{}
		sendErrs []string
		sent     atomic.Int64
		stop     atomic.Bool
		done     = make(chan error, 1)
	)
	go func() {
		for seq := int64(0); !stop.Load(); seq++ {
			r := &kgo.Record{Key: []byte(fmt.Sprintf("k%d", seq%997)), Value: []byte(failoverValue(seq))}
			prod.Produce(ctx, r, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					sendErrs = append(sendErrs, fmt.Sprintf("%s: %v", r.Value, err))
					return
				}
				acks = append(acks, failoverAck{r.Partition, r.Offset, seq})
				lastSeq[r.Partition] = max(lastSeq[r.Partition], seq)
			})
			sent.Add(1)
			if seq%2 == 1 {
				time.Sleep(time.Millisecond) // about a thousand records a second
			}
		}
		done <- prod.Flush(ctx)
	}()
	// status reads the acks so far; it fails the test on a failed record.
	status := func() (n int, everySince func(int64) bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(sendErrs) > 0 {
			t.Fatalf("%d records failed, the first: %v", len(sendErrs), sendErrs[:min(5, len(sendErrs))])
		}
		last := maps.Clone(lastSeq)
		return len(acks), func(from int64) bool {
			for p := int32(0); p < parts; p++ {
				if s, ok := last[p]; !ok || s < from {
					return false
				}
			}
			return true
		}
	}
	var victim int32
	func() {
		defer func() {
			stop.Store(true)
			if err := <-done; err != nil {
				t.Errorf("flushing the producer: %v", err)
			}
		}()
		waitFor(t, ctx, "300 acks on every partition before the kill", func() error {
			if n, every := status(); n < 300 || !every(0) {
				return fmt.Errorf("%d acks", n)
			}
			return nil
		})
		d, err := topicMeta(adm)
		if err != nil {
			t.Fatalf("Metadata(%s): %v", topic, err)
		}
		victim = d.Partitions[0].Leader
		if victim < 1 || victim > clusterNodes {
			t.Fatalf("leader of partition 0: %d", victim)
		}
		c.kill(victim)
		killedAt := sent.Load()
		atKill, _ := status()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		waitFor(t, wctx, fmt.Sprintf("acks on every partition for records sent after node %d was killed", victim),
			func() error {
				if n, every := status(); !every(killedAt) {
					return fmt.Errorf("%d acks", n)
				}
				return nil
			})
		n, _ := status()
		t.Logf("failover: %d acks before node %d was killed, %d once every partition took writes again", atKill, victim, n)
	}()
	status()
	if int64(len(acks)) != sent.Load() {
		t.Fatalf("%d records sent, %d acknowledged", sent.Load(), len(acks))
	}

	// Everything acknowledged, read back by a consumer group from the survivors.
	rest := c.addrs(victim)
	cons := newKgoSeeds(t, rest, "consumer", kgo.ConsumerGroup("franz-failover-group"), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit())
	got := map[int32]map[int64]string{}
	where := map[string]string{}
	add := func(pctx context.Context, fs kgo.Fetches) int {
		fs.EachError(func(topic string, p int32, err error) {
			var session *kgo.ErrGroupSession
			switch {
			case pctx.Err() != nil && errors.Is(err, pctx.Err()):
			case errors.As(err, &session):
				t.Logf("franz-go retries its group session: %v", err)
			default:
				t.Fatalf("fetch error on %s/%d: %v", topic, p, err)
			}
		})
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			at := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
			if prev, dup := where[string(r.Value)]; dup {
				t.Fatalf("%s consumed twice: at %s and %s", r.Value, prev, at)
			}
			where[string(r.Value)] = at
			if got[r.Partition] == nil {
				got[r.Partition] = map[int64]string{}
			}
			got[r.Partition][r.Offset] = string(r.Value)
		})
		return n
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for consumed := 0; consumed < len(acks); {
		fs := cons.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("consumed %d of %d acknowledged records: %v", consumed, len(acks), cctx.Err())
		}
		consumed += add(cctx, fs)
	}
	quiet, qcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer qcancel()
	if n := add(quiet, cons.PollFetches(quiet)); n > 0 {
		t.Fatalf("%d records beyond the %d acknowledged", n, len(acks))
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	lastOffset := map[int32]int64{}
	for _, a := range acks {
		if v := got[a.partition][a.offset]; v != failoverValue(a.seq) {
			t.Fatalf("record at %d/%d is %q, acknowledged as %s", a.partition, a.offset, v, failoverValue(a.seq))
		}
		if prev, ok := lastOffset[a.partition]; ok && prev >= a.offset {
			t.Fatalf("partition %d acknowledged offset %d after %d", a.partition, a.offset, prev)
		}
		lastOffset[a.partition] = a.offset
	}
	for p, recs := range got {
		offs := slices.Sorted(maps.Keys(recs))
		for i := 1; i < len(offs); i++ {
			if recs[offs[i-1]] >= recs[offs[i]] {
				t.Fatalf("partition %d has %s at %d after %s at %d: not in the order sent", p,
					recs[offs[i]], offs[i], recs[offs[i-1]], offs[i-1])
			}
		}
	}

	// The killed node comes back: Metadata lists it again, and it catches up with every
	// partition's leader and rejoins the ISR.
	c.restart(victim)
	cl2 := newKgoSeeds(t, rest, "admin-after")
	adm2 := kadm.NewClient(cl2)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	// A Metadata request of its own, to a survivor: kadm's BrokerMetadata answers from
	// the client's cached broker list, which it does not refresh for that call.
	waitFor(t, rctx, fmt.Sprintf("node %d listed by Metadata again", victim), func() error {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		resp, err := req.RequestWith(rctx, cl2)
		if err != nil {
			return err
		}
		var ids []int32
		for _, b := range resp.Brokers {
			if b.NodeID == victim {
				return nil
			}
			ids = append(ids, b.NodeID)
		}
		return fmt.Errorf("brokers %v", ids)
	})
	waitFor(t, rctx, fmt.Sprintf("node %d in every partition's ISR again", victim), func() error {
		d, err := topicMeta(adm2)
		if err != nil {
			return err
		}
		for _, p := range d.Partitions {
			if !slices.Contains(p.ISR, victim) {
				return fmt.Errorf("partition %d: isr %v", p.Partition, p.ISR)
			}
		}
		return nil
	})
}
