package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createTopic creates topic with kadm and fails the test on any error.
func createTopic(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, parts int32, configs map[string]*string) kadm.CreateTopicResponse {
	t.Helper()
	resp, err := adm.CreateTopic(ctx, parts, 1, configs, topic)
	if err != nil {
		t.Fatalf("CreateTopic(%s): %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("CreateTopic(%s): %v (%s)", topic, resp.Err, resp.ErrMessage)
	}
	return resp
}

func strp(s string) *string { return &s }

// pollUntil polls cl until want records arrived (or the context ends) and returns them.
func pollUntil(t *testing.T, ctx context.Context, cl *kgo.Client, want int) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records before the deadline: %v", len(got), want, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("fetch error on %s/%d: %v", topic, p, err)
		})
		if t.Failed() {
			t.FailNow()
		}
		got = append(got, fs.Records()...)
	}
	if len(got) != want {
		t.Fatalf("got %d records, want %d", len(got), want)
	}
	return got
}

func headersEqual(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// TestFranzProduceConsume: idempotent ProduceSync to three partitions (several rounds,
// several records per partition per request), then consuming every partition from the
// start, from a given offset, and a live tail.
func TestFranzProduceConsume(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ctx := testCtx(t)
	adm, _ := newKadm(t, b)
	const topic = "franz-roundtrip"
	const parts = 3
	createTopic(t, ctx, adm, topic, parts, nil)

	prod := newKgo(t, b, "producer", kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const rounds, perPart = 4, 10
	var produced [parts][]*kgo.Record
	producerID := int64(-2)
	for r := 0; r < rounds; r++ {
		var batch []*kgo.Record
		for i := 0; i < perPart; i++ {
			for p := int32(0); p < parts; p++ {
				rec := &kgo.Record{
					Partition: p,
					Key:       []byte(fmt.Sprintf("key-%d-%d", p, i)),
					Value:     []byte(fmt.Sprintf("value p%d r%d i%d", p, r, i)),
					Headers:   []kgo.RecordHeader{{Key: "round", Value: []byte{byte(r)}}},
				}
				switch {
				case r == rounds-1 && i == 0:
					rec.Value = nil // tombstone
				case r == rounds-1 && i == 1:
					rec.Key = nil
					rec.Headers = nil
				}
				batch = append(batch, rec)
			}
		}
		results := prod.ProduceSync(ctx, batch...)
		if err := results.FirstErr(); err != nil {
			t.Fatalf("ProduceSync round %d: %v", r, err)
		}
		for _, res := range results {
			rec := res.Record
			p := rec.Partition
			if want := int64(len(produced[p])); rec.Offset != want {
				t.Fatalf("round %d: record %q on partition %d got offset %d, want %d",
					r, rec.Value, p, rec.Offset, want)
			}
			if rec.ProducerID < 0 {
				t.Fatalf("record produced without a producer id (%d): idempotence is off", rec.ProducerID)
			}
			if producerID == -2 {
				producerID = rec.ProducerID
			} else if rec.ProducerID != producerID {
				t.Fatalf("producer id changed from %d to %d within one client", producerID, rec.ProducerID)
			}
			produced[p] = append(produced[p], rec)
		}
	}

	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("ListEndOffsets: %v %v", err, ends.Error())
	}
	for p := int32(0); p < parts; p++ {
		if o, _ := ends.Lookup(topic, p); o.Offset != int64(len(produced[p])) {
			t.Fatalf("end offset of partition %d = %d, want %d", p, o.Offset, len(produced[p]))
		}
	}

	// Everything, from the start of each partition.
	starts := map[int32]kgo.Offset{}
	for p := int32(0); p < parts; p++ {
		starts[p] = kgo.NewOffset().AtStart()
	}
	cons := newKgo(t, b, "consumer", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}))
	got := pollUntil(t, ctx, cons, parts*rounds*perPart)
	var byPart [parts][]*kgo.Record
	for _, rec := range got {
		if rec.Topic != topic {
			t.Fatalf("record from unexpected topic %q", rec.Topic)
		}
		byPart[rec.Partition] = append(byPart[rec.Partition], rec)
	}
	for p := 0; p < parts; p++ {
		if len(byPart[p]) != len(produced[p]) {
			t.Fatalf("partition %d: consumed %d records, produced %d", p, len(byPart[p]), len(produced[p]))
		}
		for i, rec := range byPart[p] {
			want := produced[p][i]
			if rec.Offset != int64(i) {
				t.Fatalf("partition %d: record %d has offset %d (out of order or gap)", p, i, rec.Offset)
			}
			if !bytes.Equal(rec.Key, want.Key) || !bytes.Equal(rec.Value, want.Value) ||
				(rec.Value == nil) != (want.Value == nil) || (rec.Key == nil) != (want.Key == nil) ||
				!headersEqual(rec.Headers, want.Headers) {
				t.Fatalf("partition %d offset %d: got key=%q value=%q headers=%v, want key=%q value=%q headers=%v",
					p, i, rec.Key, rec.Value, rec.Headers, want.Key, want.Value, want.Headers)
			}
			if rec.Timestamp.UnixMilli() != want.Timestamp.UnixMilli() {
				t.Fatalf("partition %d offset %d: timestamp %v, want %v", p, i, rec.Timestamp, want.Timestamp)
			}
			if rec.ProducerID != producerID {
				t.Fatalf("partition %d offset %d: producer id %d, want %d", p, i, rec.ProducerID, producerID)
			}
		}
	}

	// From a given offset of one partition.
	from := newKgo(t, b, "from-offset", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {1: kgo.NewOffset().At(25)}}))
	got = pollUntil(t, ctx, from, len(produced[1])-25)
	for i, rec := range got {
		if rec.Partition != 1 || rec.Offset != int64(25+i) {
			t.Fatalf("from offset 25: record %d is %d/%d", i, rec.Partition, rec.Offset)
		}
	}

	// A live tail: the consumer is already waiting when the record is produced.
	end0 := int64(len(produced[0]))
	tail := newKgo(t, b, "tail", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().At(end0)}}))
	tailCh := make(chan []*kgo.Record, 1)
	go func() {
		var recs []*kgo.Record
		for len(recs) == 0 && ctx.Err() == nil {
			recs = append(recs, tail.PollFetches(ctx).Records()...)
		}
		tailCh <- recs
	}()
	res := prod.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("live")})
	if err := res.FirstErr(); err != nil {
		t.Fatalf("live produce: %v", err)
	}
	recs := <-tailCh
	if len(recs) != 1 || recs[0].Offset != end0 || string(recs[0].Value) != "live" {
		t.Fatalf("live tail got %d records (first %+v), want one 'live' at offset %d", len(recs), recs, end0)
	}
}

// TestFranzCompression: one batch with each codec, read back in order.
func TestFranzCompression(t *testing.T) {
	t.Parallel()
	b := startBroker(t)
	ctx := testCtx(t)
	adm, _ := newKadm(t, b)
	const topic = "franz-codecs"
	createTopic(t, ctx, adm, topic, 1, nil)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	const per = 50
	var want []string
	for _, c := range codecs {
		prod := newKgo(t, b, "producer-"+c.name, kgo.DefaultProduceTopic(topic),
			kgo.ProducerBatchCompression(c.codec))
		var batch []*kgo.Record
		for i := 0; i < per; i++ {
			v := fmt.Sprintf("%s record %d %s", c.name, i, strings.Repeat("x", 100))
			want = append(want, v)
			batch = append(batch, &kgo.Record{Value: []byte(v)})
		}
		if err := prod.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatalf("produce with %s: %v", c.name, err)
		}
	}
	cons := newKgo(t, b, "consumer", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().AtStart()}}))
	got := pollUntil(t, ctx, cons, len(want))
	for i, rec := range got {
		if rec.Offset != int64(i) || string(rec.Value) != want[i] {
			t.Fatalf("record %d: offset %d value %q, want offset %d value %q", i, rec.Offset, rec.Value, i, want[i])
		}
	}
}

// groupMember is one franz-go consumer-group member polling in its own goroutine. It
// commits what each poll returned before allowing a rebalance (BlockRebalanceOnPoll),
// so no record is handed to two members.
type groupMember struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// groupLog records which member saw which record.
type groupLog struct {
	mu     sync.Mutex
	seen   map[string][]string // "partition/offset" -> members
	values map[string]string   // "partition/offset" -> value
	errs   []string
}

func newGroupLog() *groupLog {
	return &groupLog{seen: map[string][]string{}, values: map[string]string{}}
}

func (g *groupLog) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

func (g *groupLog) errors() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.errs...)
}

func startMember(t *testing.T, b *broker, name, group, topic string, log *groupLog) *groupMember {
	cl := newKgo(t, b, name,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(300*time.Millisecond),
	)
	pctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	m := &groupMember{name: name, cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(pctx)
			if pctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			fs.EachError(func(tp string, p int32, err error) {
				log.mu.Lock()
				log.errs = append(log.errs, fmt.Sprintf("%s: fetch %s/%d: %v", name, tp, p, err))
				log.mu.Unlock()
			})
			recs := fs.Records()
			log.mu.Lock()
			for _, r := range recs {
				k := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
				log.seen[k] = append(log.seen[k], name)
				log.values[k] = string(r.Value)
			}
			log.mu.Unlock()
			if len(recs) > 0 {
				if err := cl.CommitRecords(pctx, recs...); err != nil && pctx.Err() == nil {
					log.mu.Lock()
					log.errs = append(log.errs, fmt.Sprintf("%s: commit: %v", name, err))
					log.mu.Unlock()
				}
			}
			cl.AllowRebalance()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends the poll loop, allows the final rebalance and leaves the group.
func (m *groupMember) stop() {
	m.cancel()
	<-m.done
	closeKgo(m.cl, true)
}

// groupAssignment describes group and returns member client id -> assigned partitions
// of topic, once the group is Stable.
func groupAssignment(ctx context.Context, adm *kadm.Client, group, topic string) (map[string][]int32, error) {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, err
	}
	d, ok := ds[group]
	if !ok {
		return nil, fmt.Errorf("group %s not described", group)
	}
	if d.Err != nil {
		return nil, d.Err
	}
	if d.State != "Stable" {
		return nil, fmt.Errorf("group state %q", d.State)
	}
	out := map[string][]int32{}
	for _, mem := range d.Members {
		a, ok := mem.Assigned.AsConsumer()
		if !ok {
			return nil, fmt.Errorf("member %s has no consumer assignment", mem.ClientID)
		}
		var ps []int32
		for _, at := range a.Topics {
			if at.Topic == topic {
				ps = append(ps, at.Partitions...)
			}
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out[mem.ClientID] = ps
	}
	return out, nil
}

func produceRound(t *testing.T, ctx context.Context, prod *kgo.Client, parts int32, per int, tag string) {
	t.Helper()
	var batch []*kgo.Record
	for i := 0; i < per; i++ {
		for p := int32(0); p < parts; p++ {
			batch = append(batch, &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("%s-%d-%d", tag, p, i))})
		}
	}
	if err := prod.ProduceSync(ctx, batch...).FirstErr(); err != nil {
		t.Fatalf("produce %s: %v", tag, err)
	}
}

func committedEquals(ctx context.Context, adm *kadm.Client, group, topic string, parts int32, want int64) error {
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	for p := int32(0); p < parts; p++ {
		o, ok := offs.Lookup(topic, p)
		if !ok {
			return fmt.Errorf("no committed offset for partition %d", p)
		}
		if o.Err != nil {
			return o.Err
		}
		if o.At != want {
			return fmt.Errorf("partition %d committed at %d, want %d", p, o.At, want)
		}
	}
	return nil
}

// TestFranzConsumerGroup: two members share four partitions, commit, one leaves, the
// other takes over its partitions from the committed offsets; every record is seen
// exactly once. A third member joining later starts after the commits.
func TestFranzConsumerGroup(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "group.initial.rebalance.delay.ms=500")
	ctx := testCtx(t)
	adm, _ := newKadm(t, b)
	const topic, group = "franz-group", "franz-group-g"
	const parts, per = 4, 25
	createTopic(t, ctx, adm, topic, parts, nil)
	prod := newKgo(t, b, "producer", kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	log := newGroupLog()
	checkErrs := func() {
		t.Helper()
		if errs := log.errors(); len(errs) > 0 {
			t.Fatalf("member errors:\n%s", strings.Join(errs, "\n"))
		}
	}

	a := startMember(t, b, "member-a", group, topic, log)
	bm := startMember(t, b, "member-b", group, topic, log)
	waitFor(t, ctx, "both members to own two partitions each", func() error {
		as, err := groupAssignment(ctx, adm, group, topic)
		if err != nil {
			return err
		}
		if len(as["samsa-go-member-a"]) != 2 || len(as["samsa-go-member-b"]) != 2 {
			return fmt.Errorf("assignment %v", as)
		}
		return nil
	})

	produceRound(t, ctx, prod, parts, per, "one")
	waitFor(t, ctx, "the first 100 records", func() error {
		checkErrs()
		if n := log.count(); n != parts*per {
			return fmt.Errorf("seen %d", n)
		}
		return nil
	})
	waitFor(t, ctx, "commits at 25 on every partition", func() error {
		return committedEquals(ctx, adm, group, topic, parts, per)
	})
	log.mu.Lock()
	byMember := map[string]int{}
	for _, ms := range log.seen {
		byMember[ms[0]]++
	}
	log.mu.Unlock()
	if byMember["member-a"] != 2*per || byMember["member-b"] != 2*per {
		t.Fatalf("records per member %v, want %d each", byMember, 2*per)
	}

	// member-b leaves (LeaveGroup); member-a must take over all four partitions.
	bm.stop()
	waitFor(t, ctx, "member-a to own all partitions", func() error {
		as, err := groupAssignment(ctx, adm, group, topic)
		if err != nil {
			return err
		}
		if len(as) != 1 || len(as["samsa-go-member-a"]) != parts {
			return fmt.Errorf("assignment %v", as)
		}
		return nil
	})
	produceRound(t, ctx, prod, parts, per, "two")
	waitFor(t, ctx, "the next 100 records", func() error {
		checkErrs()
		if n := log.count(); n != 2*parts*per {
			return fmt.Errorf("seen %d", n)
		}
		return nil
	})
	waitFor(t, ctx, "commits at 50 on every partition", func() error {
		return committedEquals(ctx, adm, group, topic, parts, 2*per)
	})
	a.stop()
	checkErrs()

	log.mu.Lock()
	for k, ms := range log.seen {
		if len(ms) != 1 {
			log.mu.Unlock()
			t.Fatalf("record %s (%s) seen %d times: %v", k, log.values[k], len(ms), ms)
		}
		if strings.HasPrefix(log.values[k], "two-") && ms[0] != "member-a" {
			log.mu.Unlock()
			t.Fatalf("record %s produced after member-b left was seen by %s", k, ms[0])
		}
	}
	log.mu.Unlock()

	// A new member of the now empty group resumes at the committed offsets.
	waitFor(t, ctx, "the group to be empty", func() error {
		ds, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		if st := ds[group].State; st != "Empty" {
			return fmt.Errorf("state %q", st)
		}
		return nil
	})
	log3 := newGroupLog()
	startMember(t, b, "member-c", group, topic, log3)
	produceRound(t, ctx, prod, parts, 1, "three")
	waitFor(t, ctx, "member-c to see the four new records", func() error {
		if errs := log3.errors(); len(errs) > 0 {
			t.Fatalf("member-c errors: %v", errs)
		}
		if n := log3.count(); n < parts {
			return fmt.Errorf("seen %d", n)
		}
		return nil
	})
	log3.mu.Lock()
	defer log3.mu.Unlock()
	for k, v := range log3.values {
		if !strings.HasPrefix(v, "three-") || !strings.HasSuffix(k, fmt.Sprintf("/%d", 2*per)) {
			t.Fatalf("member-c saw %s=%q; it should start at the committed offset %d", k, v, 2*per)
		}
	}
}

// TestFranzAdmin exercises kadm against one broker.
func TestFranzAdmin(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "group.initial.rebalance.delay.ms=200")
	ctx := testCtx(t)
	adm, cl := newKadm(t, b)

	var topicAID kadm.TopicID
	t.Run("CreateTopics", func(t *testing.T) {
		resp, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": strp("3600000")},
			"adm-a", "adm-b")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Sorted() {
			if r.Err != nil {
				t.Fatalf("create %s: %v (%s)", r.Topic, r.Err, r.ErrMessage)
			}
			if r.NumPartitions != 3 || r.ReplicationFactor != 1 {
				t.Errorf("create %s: %d partitions rf %d, want 3 and 1", r.Topic, r.NumPartitions, r.ReplicationFactor)
			}
			if r.ID == (kadm.TopicID{}) {
				t.Errorf("create %s: no topic id", r.Topic)
			}
		}
		topicAID = resp["adm-a"].ID
		if resp["adm-a"].ID == resp["adm-b"].ID {
			t.Errorf("two topics share the id %v", resp["adm-a"].ID)
		}
		// Validate-only creates nothing.
		v, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "adm-validate")
		if err != nil || v.Error() != nil {
			t.Fatalf("ValidateCreateTopics: %v %v", err, v.Error())
		}
	})

	t.Run("CreateTopicsInvalid", func(t *testing.T) {
		cases := []struct {
			name  string
			parts int32
			rf    int16
			topic string
			want  error
		}{
			{"existing", 1, 1, "adm-a", kerr.TopicAlreadyExists},
			{"bad name", 1, 1, "bad/name", kerr.InvalidTopicException},
			{"dot name", 1, 1, "..", kerr.InvalidTopicException},
			{"too long", 1, 1, strings.Repeat("x", 250), kerr.InvalidTopicException},
			{"replication factor", 1, 3, "adm-rf3", kerr.InvalidReplicationFactor},
			{"zero partitions", 0, 1, "adm-p0", kerr.InvalidPartitions},
		}
		for _, c := range cases {
			// kadm returns the topic's error both in the response and as err.
			r, err := adm.CreateTopic(ctx, c.parts, c.rf, nil, c.topic)
			if !errors.Is(r.Err, c.want) || (err != nil && !errors.Is(err, c.want)) {
				t.Errorf("%s: CreateTopic(%q, p=%d, rf=%d) error %v (%s), want %v",
					c.name, c.topic, c.parts, c.rf, r.Err, r.ErrMessage, c.want)
			}
		}
	})

	t.Run("ListTopicsMetadata", func(t *testing.T) {
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !td.Has("adm-a") || !td.Has("adm-b") {
			t.Fatalf("ListTopics: %v", td.Names())
		}
		for _, n := range []string{"adm-validate", "adm-rf3", "adm-p0", "__consumer_offsets"} {
			if td.Has(n) {
				t.Errorf("ListTopics lists %s", n)
			}
		}
		md, err := adm.Metadata(ctx, "adm-a")
		if err != nil {
			t.Fatal(err)
		}
		d := md.Topics["adm-a"]
		if d.Err != nil || len(d.Partitions) != 3 || d.ID != topicAID {
			t.Fatalf("Metadata(adm-a): err %v, %d partitions, id %v (want %v)", d.Err, len(d.Partitions), d.ID, topicAID)
		}
		for _, p := range d.Partitions.Sorted() {
			if p.Err != nil || p.Leader != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 {
				t.Errorf("partition %d: %+v", p.Partition, p)
			}
		}
		md, err = adm.Metadata(ctx, "adm-missing")
		if err != nil {
			t.Fatal(err)
		}
		if e := md.Topics["adm-missing"].Err; !errors.Is(e, kerr.UnknownTopicOrPartition) {
			t.Errorf("Metadata of a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", e)
		}
	})

	configOf := func(t *testing.T, topic, key string) kadm.Config {
		t.Helper()
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rc.On(topic, nil)
		if err != nil || r.Err != nil {
			t.Fatalf("DescribeTopicConfigs(%s): %v %v", topic, err, r.Err)
		}
		for _, c := range r.Configs {
			if c.Key == key {
				return c
			}
		}
		t.Fatalf("DescribeTopicConfigs(%s) has no %s", topic, key)
		return kadm.Config{}
	}

	t.Run("TopicConfigs", func(t *testing.T) {
		c := configOf(t, "adm-a", "retention.ms")
		if c.MaybeValue() != "3600000" || c.Source.String() != "DYNAMIC_TOPIC_CONFIG" {
			t.Fatalf("retention.ms = %q from %v, want 3600000 from DYNAMIC_TOPIC_CONFIG", c.MaybeValue(), c.Source)
		}
		if c := configOf(t, "adm-a", "cleanup.policy"); c.MaybeValue() != "delete" {
			t.Fatalf("cleanup.policy = %q, want delete", c.MaybeValue())
		}

		// Incremental: set one, delete another.
		resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("200000")},
			{Op: kadm.DeleteConfig, Name: "retention.ms"},
		}, "adm-a")
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := resp.On("adm-a", nil); r.Err != nil {
			t.Fatalf("AlterTopicConfigs: %v (%s)", r.Err, r.ErrMessage)
		}
		if c := configOf(t, "adm-a", "max.message.bytes"); c.MaybeValue() != "200000" || c.Source.String() != "DYNAMIC_TOPIC_CONFIG" {
			t.Fatalf("after incremental alter max.message.bytes = %q from %v", c.MaybeValue(), c.Source)
		}
		if c := configOf(t, "adm-a", "retention.ms"); c.Source.String() == "DYNAMIC_TOPIC_CONFIG" {
			t.Fatalf("retention.ms still a topic config after its delete: %q", c.MaybeValue())
		}

		// The altered limit is enforced: a 300 kB record is too large now.
		prod := newKgo(t, b, "big-producer", kgo.DefaultProduceTopic("adm-a"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
		err = prod.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: bytes.Repeat([]byte("b"), 300000)}).FirstErr()
		if !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("producing 300 kB with max.message.bytes=200000: %v, want MESSAGE_TOO_LARGE", err)
		}

		// Non-incremental AlterConfigs replaces the topic's whole set of configs.
		resp, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{
			{Name: "retention.ms", Value: strp("1000000")},
		}, "adm-a")
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := resp.On("adm-a", nil); r.Err != nil {
			t.Fatalf("AlterTopicConfigsState: %v (%s)", r.Err, r.ErrMessage)
		}
		if c := configOf(t, "adm-a", "retention.ms"); c.MaybeValue() != "1000000" || c.Source.String() != "DYNAMIC_TOPIC_CONFIG" {
			t.Fatalf("after AlterConfigs retention.ms = %q from %v", c.MaybeValue(), c.Source)
		}
		if c := configOf(t, "adm-a", "max.message.bytes"); c.Source.String() == "DYNAMIC_TOPIC_CONFIG" {
			t.Fatalf("AlterConfigs kept max.message.bytes=%q; it replaces all topic configs", c.MaybeValue())
		}

		// Invalid names and values are refused.
		for _, ac := range []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "no.such.config", Value: strp("1")},
			{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("soon")},
		} {
			resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{ac}, "adm-a")
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := resp.On("adm-a", nil); !errors.Is(r.Err, kerr.InvalidConfig) {
				t.Errorf("AlterTopicConfigs %s=%s: %v (%s), want INVALID_CONFIG", ac.Name, *ac.Value, r.Err, r.ErrMessage)
			}
		}
		// Unknown topic.
		rc, err := adm.DescribeTopicConfigs(ctx, "adm-missing")
		if err == nil {
			if r, _ := rc.On("adm-missing", nil); !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				t.Errorf("DescribeTopicConfigs(missing): %v, want UNKNOWN_TOPIC_OR_PARTITION", r.Err)
			}
		}
	})

	t.Run("CreatePartitions", func(t *testing.T) {
		resp, err := adm.CreatePartitions(ctx, 2, "adm-b")
		if err != nil {
			t.Fatal(err)
		}
		if r := resp["adm-b"]; r.Err != nil {
			t.Fatalf("CreatePartitions(+2): %v (%s)", r.Err, r.ErrMessage)
		}
		md, err := adm.Metadata(ctx, "adm-b")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(md.Topics["adm-b"].Partitions); n != 5 {
			t.Fatalf("adm-b has %d partitions after adding 2 to 3", n)
		}
		resp, err = adm.UpdatePartitions(ctx, 2, "adm-b")
		if err != nil {
			t.Fatal(err)
		}
		if r := resp["adm-b"]; !errors.Is(r.Err, kerr.InvalidPartitions) {
			t.Fatalf("UpdatePartitions(5 -> 2): %v, want INVALID_PARTITIONS", r.Err)
		}
		resp, err = adm.CreatePartitions(ctx, 1, "adm-missing")
		if err != nil {
			t.Fatal(err)
		}
		if r := resp["adm-missing"]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("CreatePartitions(missing): %v, want UNKNOWN_TOPIC_OR_PARTITION", r.Err)
		}
	})

	t.Run("OffsetsAndDeleteRecords", func(t *testing.T) {
		const topic = "adm-offsets"
		createTopic(t, ctx, adm, topic, 1, nil)
		prod := newKgo(t, b, "ts-producer", kgo.DefaultProduceTopic(topic))
		base := time.Now().Add(-time.Hour).Truncate(time.Second)
		// One request per record so each record is its own batch.
		for i := 0; i < 6; i++ {
			r := &kgo.Record{Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		lookup := func(lo kadm.ListedOffsets, err error) kadm.ListedOffset {
			t.Helper()
			if err != nil {
				t.Fatalf("listing offsets: %v", err)
			}
			o, ok := lo.Lookup(topic, 0)
			if !ok || o.Err != nil {
				t.Fatalf("listing offsets: found %v, error %v", ok, o.Err)
			}
			return o
		}
		if o := lookup(adm.ListStartOffsets(ctx, topic)); o.Offset != 0 {
			t.Errorf("start offset %d, want 0", o.Offset)
		}
		if o := lookup(adm.ListEndOffsets(ctx, topic)); o.Offset != 6 {
			t.Errorf("end offset %d, want 6", o.Offset)
		}
		o := lookup(adm.ListOffsetsAfterMilli(ctx, base.Add(1500*time.Millisecond).UnixMilli(), topic))
		if o.Offset != 2 || o.Timestamp != base.Add(2*time.Second).UnixMilli() {
			t.Errorf("ListOffsetsAfterMilli(base+1.5s) = offset %d ts %d, want 2 and %d",
				o.Offset, o.Timestamp, base.Add(2*time.Second).UnixMilli())
		}
		if o := lookup(adm.ListOffsetsAfterMilli(ctx, base.UnixMilli(), topic)); o.Offset != 0 {
			t.Errorf("ListOffsetsAfterMilli(base) = %d, want 0", o.Offset)
		}
		if o := lookup(adm.ListOffsetsAfterMilli(ctx, base.Add(time.Minute).UnixMilli(), topic)); o.Offset != 6 {
			t.Errorf("ListOffsetsAfterMilli(after the last record) = %d, want the end offset 6", o.Offset)
		}

		var dr kadm.Offsets
		dr.AddOffset(topic, 0, 3, -1)
		resp, err := adm.DeleteRecords(ctx, dr)
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := resp.Lookup(topic, 0); r.Err != nil || r.LowWatermark != 3 {
			t.Fatalf("DeleteRecords(3): low watermark %d err %v", r.LowWatermark, r.Err)
		}
		if o := lookup(adm.ListStartOffsets(ctx, topic)); o.Offset != 3 {
			t.Errorf("start offset after DeleteRecords(3) = %d", o.Offset)
		}
		cons := newKgo(t, b, "after-delete", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			topic: {0: kgo.NewOffset().AtStart()}}))
		got := pollUntil(t, ctx, cons, 3)
		if got[0].Offset != 3 || string(got[0].Value) != "3" {
			t.Fatalf("first record after DeleteRecords: offset %d value %q", got[0].Offset, got[0].Value)
		}
		// Fetching below the new log start gets OFFSET_OUT_OF_RANGE; the client then
		// resets to its reset offset (the start).
		below := newKgo(t, b, "below-start", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			topic: {0: kgo.NewOffset().At(1)}}), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got = pollUntil(t, ctx, below, 3)
		if got[0].Offset != 3 {
			t.Fatalf("fetch from offset 1 after DeleteRecords(3) reset to %d, want 3", got[0].Offset)
		}
		dr = nil
		dr.AddOffset(topic, 0, 100, -1)
		resp, err = adm.DeleteRecords(ctx, dr)
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := resp.Lookup(topic, 0); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
			t.Fatalf("DeleteRecords past the end: %v, want OFFSET_OUT_OF_RANGE", r.Err)
		}
	})

	t.Run("Groups", func(t *testing.T) {
		const topic, idle, live = "adm-b", "adm-idle", "adm-live"
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: topic, Partition: 1, At: 0, LeaderEpoch: -1, Metadata: "meta"})
		cr, err := adm.CommitOffsets(ctx, idle, os)
		if err != nil || cr.Error() != nil {
			t.Fatalf("CommitOffsets: %v %v", err, cr.Error())
		}
		fo, err := adm.FetchOffsets(ctx, idle)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := fo.Lookup(topic, 1); !ok || o.Err != nil || o.At != 0 || o.Metadata != "meta" {
			t.Fatalf("FetchOffsets(%s): %+v (found %v)", idle, o, ok)
		}

		m := newKgo(t, b, "member", kgo.ConsumerGroup(live), kgo.ConsumeTopics(topic))
		go func() {
			for ctx.Err() == nil {
				if m.PollFetches(ctx).IsClientClosed() {
					return
				}
			}
		}()
		waitFor(t, ctx, "the live group to be stable with all of "+topic, func() error {
			as, err := groupAssignment(ctx, adm, live, topic)
			if err != nil {
				return err
			}
			if len(as["samsa-go-member"]) != 5 {
				return fmt.Errorf("assignment %v", as)
			}
			return nil
		})
		ds, err := adm.DescribeGroups(ctx, live, idle)
		if err != nil {
			t.Fatal(err)
		}
		if d := ds[live]; d.ProtocolType != "consumer" || d.Protocol != "cooperative-sticky" ||
			len(d.Members) != 1 || d.Members[0].ClientID != "samsa-go-member" || d.Members[0].MemberID == "" {
			t.Errorf("DescribeGroups(%s): %+v", live, d)
		}
		if d := ds[idle]; d.Err != nil || d.State != "Empty" || len(d.Members) != 0 {
			t.Errorf("DescribeGroups(%s): %+v", idle, d)
		}

		lg, err := adm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := lg[live]; !ok {
			t.Errorf("ListGroups lacks %s: %v", live, lg.Groups())
		}
		if _, ok := lg[idle]; !ok {
			t.Errorf("ListGroups lacks %s: %v", idle, lg.Groups())
		}
		if g := lg[live]; g.ProtocolType != "consumer" || g.State != "Stable" {
			t.Errorf("ListGroups %s: %+v", live, g)
		}
		lg, err = adm.ListGroups(ctx, "Empty")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := lg[live]; ok {
			t.Errorf("ListGroups(Empty) lists the stable group %s", live)
		}
		if _, ok := lg[idle]; !ok {
			t.Errorf("ListGroups(Empty) lacks %s: %v", idle, lg.Groups())
		}

		dg, err := adm.DeleteGroups(ctx, live)
		if err != nil {
			t.Fatal(err)
		}
		if r := dg[live]; !errors.Is(r.Err, kerr.NonEmptyGroup) {
			t.Errorf("DeleteGroups(active group): %v, want NON_EMPTY_GROUP", r.Err)
		}
		closeKgo(m, false)
		waitFor(t, ctx, "the live group to empty", func() error {
			ds, err := adm.DescribeGroups(ctx, live)
			if err != nil {
				return err
			}
			if st := ds[live].State; st != "Empty" {
				return fmt.Errorf("state %q", st)
			}
			return nil
		})
		dg, err = adm.DeleteGroups(ctx, live, idle, "adm-never")
		if err != nil {
			t.Fatal(err)
		}
		if dg[live].Err != nil || dg[idle].Err != nil {
			t.Errorf("DeleteGroups: %v / %v", dg[live].Err, dg[idle].Err)
		}
		if r := dg["adm-never"]; !errors.Is(r.Err, kerr.GroupIDNotFound) {
			t.Errorf("DeleteGroups(unknown): %v, want GROUP_ID_NOT_FOUND", r.Err)
		}
		lg, err = adm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(lg) != 0 {
			t.Errorf("groups left after DeleteGroups: %v", lg.Groups())
		}
		fo, err = adm.FetchOffsets(ctx, idle)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := fo.Lookup(topic, 1); ok && o.At >= 0 {
			t.Errorf("FetchOffsets after DeleteGroups still has %+v", o)
		}
	})

	t.Run("DescribeClusterBrokerMetadata", func(t *testing.T) {
		req := kmsg.NewPtrDescribeClusterRequest()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 || resp.ClusterID == "" || len(resp.Brokers) != 1 {
			t.Fatalf("DescribeCluster: %+v", resp)
		}
		br := resp.Brokers[0]
		if br.NodeID != 1 || br.Host != "127.0.0.1" || int(br.Port) != b.port || resp.ControllerID != 1 {
			t.Fatalf("DescribeCluster broker %+v controller %d, want node 1 at 127.0.0.1:%d", br, resp.ControllerID, b.port)
		}
		md, err := adm.BrokerMetadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if md.Cluster != resp.ClusterID || md.Controller != 1 || len(md.Brokers) != 1 ||
			md.Brokers[0].NodeID != 1 || md.Brokers[0].Host != "127.0.0.1" || int(md.Brokers[0].Port) != b.port {
			t.Fatalf("BrokerMetadata: %+v (DescribeCluster cluster id %q)", md, resp.ClusterID)
		}
		if len(md.Topics) != 0 {
			t.Errorf("BrokerMetadata returned topics: %v", md.Topics.Names())
		}
		av, err := adm.ApiVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range av.Sorted() {
			if v.Err != nil {
				t.Fatalf("ApiVersions from %d: %v", v.NodeID, v.Err)
			}
		}
	})

	t.Run("DeleteTopics", func(t *testing.T) {
		resp, err := adm.DeleteTopics(ctx, "adm-b")
		if err != nil {
			t.Fatal(err)
		}
		if r := resp["adm-b"]; r.Err != nil {
			t.Fatalf("DeleteTopics: %v (%s)", r.Err, r.ErrMessage)
		}
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if td.Has("adm-b") || !td.Has("adm-a") {
			t.Fatalf("topics after deleting adm-b: %v", td.Names())
		}
		resp, err = adm.DeleteTopics(ctx, "adm-b")
		if err != nil {
			t.Fatal(err)
		}
		if r := resp["adm-b"]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("deleting adm-b twice: %v, want UNKNOWN_TOPIC_OR_PARTITION", r.Err)
		}
		// The name can be used again, with a new id and no old data.
		r := createTopic(t, ctx, adm, "adm-b", 1, nil)
		lo, err := adm.ListEndOffsets(ctx, "adm-b")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := lo.Lookup("adm-b", 0); o.Err != nil || o.Offset != 0 {
			t.Fatalf("recreated adm-b: end offset %d err %v", o.Offset, o.Err)
		}
		if r.ID == (kadm.TopicID{}) {
			t.Fatalf("recreated topic has no id")
		}
	})
}
