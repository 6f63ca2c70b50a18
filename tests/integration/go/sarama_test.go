package integration

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
)

// sarama logs through one package-level logger; its lines (all sarama tests mixed)
// are printed when a sarama test fails.
var saramaLogs = &logBuf{}

func init() {
	sarama.Logger = log.New(saramaLogs, "[sarama] ", log.Ltime|log.Lmicroseconds)
}

// saramaConfig is a config for the newest Kafka version sarama knows; sarama caps each
// request at the broker's advertised ApiVersions range.
func saramaConfig(t *testing.T, name string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.MaxVersion
	cfg.ClientID = "samsa-go-" + name
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 20 * time.Second
	cfg.Net.WriteTimeout = 5 * time.Second
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Admin.Timeout = 10 * time.Second
	cfg.Admin.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 500 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("sarama config: %v", err)
	}
	return cfg
}

func saramaFailLogs(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- sarama log tail (all sarama tests) ----\n%s", saramaLogs.tail(60))
		}
	})
}

func newSaramaAdmin(t *testing.T, b *broker) sarama.ClusterAdmin {
	adm, err := sarama.NewClusterAdmin([]string{b.addr()}, saramaConfig(t, "admin"))
	if err != nil {
		t.Fatalf("sarama.NewClusterAdmin: %v", err)
	}
	t.Cleanup(func() { adm.Close() })
	return adm
}

// newSaramaProducer is an idempotent SyncProducer (acks=all, one request in flight,
// retries on) with a manual partitioner.
func newSaramaProducer(t *testing.T, b *broker, name string) sarama.SyncProducer {
	cfg := saramaConfig(t, name)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer([]string{b.addr()}, cfg)
	if err != nil {
		t.Fatalf("sarama.NewSyncProducer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func saramaCreateTopic(t *testing.T, adm sarama.ClusterAdmin, topic string, parts int32, configs map[string]*string) {
	t.Helper()
	err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: parts, ReplicationFactor: 1, ConfigEntries: configs}, false)
	if err != nil {
		t.Fatalf("CreateTopic(%s): %v", topic, err)
	}
}

// readMessages reads n messages from pc, failing on errors or at the deadline.
func readMessages(t *testing.T, ctx context.Context, pc sarama.PartitionConsumer, n int) []*sarama.ConsumerMessage {
	t.Helper()
	var got []*sarama.ConsumerMessage
	for len(got) < n {
		select {
		case m := <-pc.Messages():
			got = append(got, m)
		case err := <-pc.Errors():
			t.Fatalf("partition consumer error: %v", err)
		case <-ctx.Done():
			t.Fatalf("got %d of %d messages before the deadline", len(got), n)
		}
	}
	return got
}

func saramaHeaders(hs []*sarama.RecordHeader) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, string(h.Key)+"="+string(h.Value))
	}
	return strings.Join(parts, ",")
}

// TestSaramaProduceConsume: an idempotent SyncProducer (SendMessage and SendMessages)
// to three partitions, read back with Consumer/PartitionConsumer from the oldest
// offset, from a given offset and from the newest one.
func TestSaramaProduceConsume(t *testing.T) {
	t.Parallel()
	saramaFailLogs(t)
	b := startBroker(t)
	ctx := testCtx(t)
	adm := newSaramaAdmin(t, b)
	const topic = "sarama-roundtrip"
	const parts, per = 3, 10
	saramaCreateTopic(t, adm, topic, parts, nil)
	prod := newSaramaProducer(t, b, "producer")

	type sent struct{ key, value, headers string }
	var produced [parts][]sent
	msg := func(p int32, i int, how string) *sarama.ProducerMessage {
		return &sarama.ProducerMessage{
			Topic:     topic,
			Partition: p,
			Key:       sarama.StringEncoder(fmt.Sprintf("k%d-%d", p, i)),
			Value:     sarama.StringEncoder(fmt.Sprintf("%s p%d i%d", how, p, i)),
			Headers:   []sarama.RecordHeader{{Key: []byte("how"), Value: []byte(how)}},
		}
	}
	record := func(m *sarama.ProducerMessage) {
		k, _ := m.Key.Encode()
		v, _ := m.Value.Encode()
		produced[m.Partition] = append(produced[m.Partition],
			sent{string(k), string(v), string(m.Headers[0].Key) + "=" + string(m.Headers[0].Value)})
	}
	// One at a time.
	for i := 0; i < per; i++ {
		for p := int32(0); p < parts; p++ {
			m := msg(p, i, "single")
			gp, off, err := prod.SendMessage(m)
			if err != nil {
				t.Fatalf("SendMessage: %v", err)
			}
			if gp != p || off != int64(len(produced[p])) {
				t.Fatalf("SendMessage to %d stored at %d/%d, want %d/%d", p, gp, off, p, len(produced[p]))
			}
			record(m)
		}
	}
	// A batch.
	var batch []*sarama.ProducerMessage
	for i := 0; i < per; i++ {
		for p := int32(0); p < parts; p++ {
			batch = append(batch, msg(p, i, "batch"))
		}
	}
	if err := prod.SendMessages(batch); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	for _, m := range batch {
		if want := int64(len(produced[m.Partition])); m.Offset != want {
			t.Fatalf("SendMessages: message to %d stored at offset %d, want %d", m.Partition, m.Offset, want)
		}
		record(m)
	}

	// The broker saw an idempotent producer: one producer per partition whose last
	// sequence number counts every record.
	kadmCl, _ := newKadm(t, b)
	var ts kadm.TopicsSet
	ts.Add(topic, 0, 1, 2)
	dp, err := kadmCl.DescribeProducers(ctx, ts)
	if err != nil {
		t.Fatalf("DescribeProducers: %v", err)
	}
	for _, d := range dp.SortedPartitions() {
		ps := d.ActiveProducers.Sorted()
		if d.Err != nil || len(ps) != 1 || ps[0].LastSequence != int32(2*per-1) {
			t.Fatalf("DescribeProducers %s/%d: err %v producers %+v; want one idempotent producer with last sequence %d",
				d.Topic, d.Partition, d.Err, ps, 2*per-1)
		}
	}

	cfg := saramaConfig(t, "consumer")
	cons, err := sarama.NewConsumer([]string{b.addr()}, cfg)
	if err != nil {
		t.Fatalf("sarama.NewConsumer: %v", err)
	}
	t.Cleanup(func() { cons.Close() })
	ps, err := cons.Partitions(topic)
	if err != nil || len(ps) != parts {
		t.Fatalf("Consumer.Partitions: %v %v", ps, err)
	}
	for p := int32(0); p < parts; p++ {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition(%d, oldest): %v", p, err)
		}
		got := readMessages(t, ctx, pc, len(produced[p]))
		for i, m := range got {
			w := produced[p][i]
			if m.Topic != topic || m.Partition != p || m.Offset != int64(i) || string(m.Key) != w.key ||
				string(m.Value) != w.value || saramaHeaders(m.Headers) != w.headers || m.Timestamp.IsZero() {
				t.Fatalf("partition %d message %d: %s/%d@%d key %q value %q headers %q ts %v; want offset %d %+v",
					p, i, m.Topic, m.Partition, m.Offset, m.Key, m.Value, saramaHeaders(m.Headers), m.Timestamp, i, w)
			}
		}
		if hw := pc.HighWaterMarkOffset(); hw != int64(len(produced[p])) {
			t.Errorf("partition %d high watermark %d, want %d", p, hw, len(produced[p]))
		}
		pc.Close()
	}

	// From a given offset.
	pc, err := cons.ConsumePartition(topic, 1, 15)
	if err != nil {
		t.Fatalf("ConsumePartition(1, 15): %v", err)
	}
	got := readMessages(t, ctx, pc, len(produced[1])-15)
	for i, m := range got {
		if m.Offset != int64(15+i) || string(m.Value) != produced[1][15+i].value {
			t.Fatalf("from offset 15: message %d at %d %q", i, m.Offset, m.Value)
		}
	}
	pc.Close()
	if _, err := cons.ConsumePartition(topic, 1, 1000); !errors.Is(err, sarama.ErrOffsetOutOfRange) {
		t.Fatalf("ConsumePartition past the end: %v, want ErrOffsetOutOfRange", err)
	}

	// From the newest offset: only what is produced afterwards.
	pc, err = cons.ConsumePartition(topic, 2, sarama.OffsetNewest)
	if err != nil {
		t.Fatalf("ConsumePartition(2, newest): %v", err)
	}
	defer pc.Close()
	_, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 2, Value: sarama.StringEncoder("late")})
	if err != nil {
		t.Fatalf("SendMessage(late): %v", err)
	}
	got = readMessages(t, ctx, pc, 1)
	if got[0].Offset != off || string(got[0].Value) != "late" || got[0].Key != nil {
		t.Fatalf("newest: got %d %q key %v, want %d late and a null key", got[0].Offset, got[0].Value, got[0].Key, off)
	}

	client, err := sarama.NewClient([]string{b.addr()}, saramaConfig(t, "client"))
	if err != nil {
		t.Fatalf("sarama.NewClient: %v", err)
	}
	defer client.Close()
	for p := int32(0); p < parts; p++ {
		newest, err1 := client.GetOffset(topic, p, sarama.OffsetNewest)
		oldest, err2 := client.GetOffset(topic, p, sarama.OffsetOldest)
		want := int64(len(produced[p]))
		if p == 2 {
			want++
		}
		if err1 != nil || err2 != nil || newest != want || oldest != 0 {
			t.Fatalf("GetOffset(%d): newest %d (%v) oldest %d (%v), want %d and 0", p, newest, err1, oldest, err2, want)
		}
	}
}

// saramaHandler records every message a member is handed and marks it; sarama's
// offset manager commits the marks (auto-commit, and when a session ends).
type saramaHandler struct {
	name string
	log  *groupLog
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			k := fmt.Sprintf("%d/%d", m.Partition, m.Offset)
			h.log.mu.Lock()
			h.log.seen[k] = append(h.log.seen[k], h.name)
			h.log.values[k] = string(m.Value)
			h.log.mu.Unlock()
			sess.MarkMessage(m, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}

type saramaMember struct {
	cg     sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func startSaramaMember(t *testing.T, b *broker, name, group, topic string, glog *groupLog) *saramaMember {
	cfg := saramaConfig(t, name)
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = true
	cfg.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cg, err := sarama.NewConsumerGroup([]string{b.addr()}, group, cfg)
	if err != nil {
		t.Fatalf("sarama.NewConsumerGroup(%s): %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	m := &saramaMember{cg: cg, cancel: cancel, done: make(chan struct{})}
	h := &saramaHandler{name: name, log: glog}
	addErr := func(err error) {
		glog.mu.Lock()
		glog.errs = append(glog.errs, fmt.Sprintf("%s: %v", name, err))
		glog.mu.Unlock()
	}
	go func() {
		for err := range cg.Errors() {
			addErr(err)
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			// Consume returns at every rebalance; calling it again rejoins.
			if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				addErr(err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends the member's session (its marks are committed) and leaves the group.
func (m *saramaMember) stop() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		m.cg.Close()
	})
}

// saramaAssignment describes group with sarama's admin and returns member client
// id -> partitions of topic once the group is Stable.
func saramaAssignment(adm sarama.ClusterAdmin, group, topic string) (map[string][]int32, error) {
	ds, err := adm.DescribeConsumerGroups([]string{group})
	if err != nil {
		return nil, err
	}
	if len(ds) != 1 {
		return nil, fmt.Errorf("%d descriptions", len(ds))
	}
	d := ds[0]
	if d.Err != sarama.ErrNoError {
		return nil, d.Err
	}
	if d.State != "Stable" {
		return nil, fmt.Errorf("state %q", d.State)
	}
	out := map[string][]int32{}
	for _, mem := range d.Members {
		a, err := mem.GetMemberAssignment()
		if err != nil || a == nil {
			return nil, fmt.Errorf("member %s assignment %v %v", mem.ClientId, a, err)
		}
		ps := append([]int32(nil), a.Topics[topic]...)
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out[mem.ClientId] = ps
	}
	return out, nil
}

func saramaCommitted(adm sarama.ClusterAdmin, group, topic string, parts int32, want int64) error {
	var ps []int32
	for p := int32(0); p < parts; p++ {
		ps = append(ps, p)
	}
	resp, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	if err != nil {
		return err
	}
	for _, p := range ps {
		blk := resp.GetBlock(topic, p)
		if blk == nil {
			return fmt.Errorf("no offset block for partition %d", p)
		}
		if blk.Err != sarama.ErrNoError {
			return blk.Err
		}
		if blk.Offset != want {
			return fmt.Errorf("partition %d committed at %d, want %d", p, blk.Offset, want)
		}
	}
	return nil
}

func saramaProduceRound(t *testing.T, prod sarama.SyncProducer, topic string, parts int32, per int, tag string) {
	t.Helper()
	var msgs []*sarama.ProducerMessage
	for i := 0; i < per; i++ {
		for p := int32(0); p < parts; p++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p,
				Value: sarama.StringEncoder(fmt.Sprintf("%s-%d-%d", tag, p, i))})
		}
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatalf("SendMessages(%s): %v", tag, err)
	}
}

// TestSaramaConsumerGroup: two sarama ConsumerGroup members with a handler that marks
// every message; one leaves, the other takes over; every message is handled once.
func TestSaramaConsumerGroup(t *testing.T) {
	t.Parallel()
	saramaFailLogs(t)
	b := startBroker(t, "group.initial.rebalance.delay.ms=500")
	ctx := testCtx(t)
	adm := newSaramaAdmin(t, b)
	const topic, group = "sarama-group", "sarama-group-g"
	const parts, per = 4, 25
	saramaCreateTopic(t, adm, topic, parts, nil)
	prod := newSaramaProducer(t, b, "producer")
	glog := newGroupLog()
	checkErrs := func() {
		t.Helper()
		if errs := glog.errors(); len(errs) > 0 {
			t.Fatalf("member errors:\n%s", strings.Join(errs, "\n"))
		}
	}

	startSaramaMember(t, b, "member-a", group, topic, glog)
	mb := startSaramaMember(t, b, "member-b", group, topic, glog)
	waitFor(t, ctx, "both members to own two partitions each", func() error {
		checkErrs()
		as, err := saramaAssignment(adm, group, topic)
		if err != nil {
			return err
		}
		if len(as["samsa-go-member-a"]) != 2 || len(as["samsa-go-member-b"]) != 2 {
			return fmt.Errorf("assignment %v", as)
		}
		return nil
	})
	saramaProduceRound(t, prod, topic, parts, per, "one")
	waitFor(t, ctx, "the first 100 messages", func() error {
		checkErrs()
		if n := glog.count(); n != parts*per {
			return fmt.Errorf("seen %d", n)
		}
		return nil
	})
	waitFor(t, ctx, "commits at 25 on every partition", func() error {
		return saramaCommitted(adm, group, topic, parts, per)
	})
	glog.mu.Lock()
	byMember := map[string]int{}
	for _, ms := range glog.seen {
		byMember[ms[0]]++
	}
	glog.mu.Unlock()
	if byMember["member-a"] != 2*per || byMember["member-b"] != 2*per {
		t.Fatalf("messages per member %v, want %d each", byMember, 2*per)
	}

	mb.stop()
	waitFor(t, ctx, "member-a to own all partitions", func() error {
		as, err := saramaAssignment(adm, group, topic)
		if err != nil {
			return err
		}
		if len(as) != 1 || len(as["samsa-go-member-a"]) != parts {
			return fmt.Errorf("assignment %v", as)
		}
		return nil
	})
	saramaProduceRound(t, prod, topic, parts, per, "two")
	waitFor(t, ctx, "the next 100 messages", func() error {
		checkErrs()
		if n := glog.count(); n != 2*parts*per {
			return fmt.Errorf("seen %d", n)
		}
		return nil
	})
	waitFor(t, ctx, "commits at 50 on every partition", func() error {
		return saramaCommitted(adm, group, topic, parts, 2*per)
	})
	checkErrs()
	glog.mu.Lock()
	defer glog.mu.Unlock()
	for k, ms := range glog.seen {
		if len(ms) != 1 {
			t.Fatalf("message %s (%s) handled %d times: %v", k, glog.values[k], len(ms), ms)
		}
		if strings.HasPrefix(glog.values[k], "two-") && ms[0] != "member-a" {
			t.Fatalf("message %s produced after member-b left was handled by %s", k, ms[0])
		}
	}
}

// TestSaramaAdmin exercises sarama's ClusterAdmin against one broker.
func TestSaramaAdmin(t *testing.T) {
	t.Parallel()
	saramaFailLogs(t)
	b := startBroker(t, "group.initial.rebalance.delay.ms=200")
	ctx := testCtx(t)
	adm := newSaramaAdmin(t, b)

	t.Run("CreateTopic", func(t *testing.T) {
		saramaCreateTopic(t, adm, "sa-a", 3, map[string]*string{"retention.ms": strp("3600000")})
		saramaCreateTopic(t, adm, "sa-b", 2, nil)
		if err := adm.CreateTopic("sa-validate", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, true); err != nil {
			t.Fatalf("CreateTopic(validateOnly): %v", err)
		}
		cases := []struct {
			topic string
			d     sarama.TopicDetail
			want  error
		}{
			{"sa-a", sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, sarama.ErrTopicAlreadyExists},
			{"bad name", sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, sarama.ErrInvalidTopic},
			{"sa-rf2", sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 2}, sarama.ErrInvalidReplicationFactor},
			{"sa-cfg", sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1,
				ConfigEntries: map[string]*string{"cleanup.policy": strp("sometimes")}}, sarama.ErrInvalidConfig},
		}
		for _, c := range cases {
			if err := adm.CreateTopic(c.topic, &c.d, false); !errors.Is(err, c.want) {
				t.Errorf("CreateTopic(%q, %+v): %v, want %v", c.topic, c.d, err, c.want)
			}
		}
	})

	t.Run("ListDescribeTopics", func(t *testing.T) {
		lt, err := adm.ListTopics()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := lt["sa-a"]; !ok || d.NumPartitions != 3 || d.ReplicationFactor != 1 ||
			d.ConfigEntries["retention.ms"] == nil || *d.ConfigEntries["retention.ms"] != "3600000" {
			t.Fatalf("ListTopics sa-a: %+v (found %v)", d, ok)
		}
		for _, n := range []string{"sa-validate", "sa-rf2", "sa-cfg"} {
			if _, ok := lt[n]; ok {
				t.Errorf("ListTopics lists %s", n)
			}
		}
		md, err := adm.DescribeTopics([]string{"sa-a", "sa-missing"})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range md {
			switch m.Name {
			case "sa-a":
				if m.Err != sarama.ErrNoError || len(m.Partitions) != 3 {
					t.Errorf("DescribeTopics sa-a: %v, %d partitions", m.Err, len(m.Partitions))
				}
				for _, p := range m.Partitions {
					if p.Err != sarama.ErrNoError || p.Leader != 1 || len(p.Replicas) != 1 || len(p.Isr) != 1 {
						t.Errorf("sa-a partition %d: %+v", p.ID, p)
					}
				}
			case "sa-missing":
				if m.Err != sarama.ErrUnknownTopicOrPartition {
					t.Errorf("DescribeTopics sa-missing: %v", m.Err)
				}
			default:
				t.Errorf("DescribeTopics returned %s", m.Name)
			}
		}
		brokers, controller, err := adm.DescribeCluster()
		if err != nil || len(brokers) != 1 || controller != 1 || brokers[0].ID() != 1 ||
			brokers[0].Addr() != b.addr() {
			t.Fatalf("DescribeCluster: %v controller %d err %v", brokers, controller, err)
		}
	})

	entry := func(t *testing.T, topic, name string) sarama.ConfigEntry {
		t.Helper()
		es, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
		if err != nil {
			t.Fatalf("DescribeConfig(%s): %v", topic, err)
		}
		for _, e := range es {
			if e.Name == name {
				return e
			}
		}
		t.Fatalf("DescribeConfig(%s) has no %s", topic, name)
		return sarama.ConfigEntry{}
	}

	t.Run("Configs", func(t *testing.T) {
		if e := entry(t, "sa-a", "retention.ms"); e.Value != "3600000" || e.Source != sarama.SourceTopic || e.Default {
			t.Fatalf("retention.ms: %+v", e)
		}
		if e := entry(t, "sa-a", "cleanup.policy"); e.Value != "delete" || e.Source == sarama.SourceTopic {
			t.Fatalf("cleanup.policy: %+v", e)
		}
		// AlterConfig replaces the topic's set of configs.
		err := adm.AlterConfig(sarama.TopicResource, "sa-a", map[string]*string{"segment.ms": strp("600000")}, false)
		if err != nil {
			t.Fatalf("AlterConfig: %v", err)
		}
		if e := entry(t, "sa-a", "segment.ms"); e.Value != "600000" || e.Source != sarama.SourceTopic {
			t.Fatalf("segment.ms after AlterConfig: %+v", e)
		}
		if e := entry(t, "sa-a", "retention.ms"); e.Source == sarama.SourceTopic {
			t.Fatalf("retention.ms survived AlterConfig: %+v", e)
		}
		// IncrementalAlterConfig changes only what it names.
		err = adm.IncrementalAlterConfig(sarama.TopicResource, "sa-a", map[string]sarama.IncrementalAlterConfigsEntry{
			"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: strp("7200000")},
		}, false)
		if err != nil {
			t.Fatalf("IncrementalAlterConfig(set): %v", err)
		}
		if e := entry(t, "sa-a", "retention.ms"); e.Value != "7200000" || e.Source != sarama.SourceTopic {
			t.Fatalf("retention.ms after incremental set: %+v", e)
		}
		if e := entry(t, "sa-a", "segment.ms"); e.Value != "600000" || e.Source != sarama.SourceTopic {
			t.Fatalf("segment.ms lost by an incremental alter of another key: %+v", e)
		}
		err = adm.IncrementalAlterConfig(sarama.TopicResource, "sa-a", map[string]sarama.IncrementalAlterConfigsEntry{
			"segment.ms": {Operation: sarama.IncrementalAlterConfigsOperationDelete},
		}, false)
		if err != nil {
			t.Fatalf("IncrementalAlterConfig(delete): %v", err)
		}
		if e := entry(t, "sa-a", "segment.ms"); e.Source == sarama.SourceTopic {
			t.Fatalf("segment.ms after incremental delete: %+v", e)
		}
		// validateOnly changes nothing.
		err = adm.IncrementalAlterConfig(sarama.TopicResource, "sa-a", map[string]sarama.IncrementalAlterConfigsEntry{
			"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: strp("1")},
		}, true)
		if err != nil {
			t.Fatalf("IncrementalAlterConfig(validateOnly): %v", err)
		}
		if e := entry(t, "sa-a", "retention.ms"); e.Value != "7200000" {
			t.Fatalf("validateOnly changed retention.ms to %q", e.Value)
		}
		err = adm.AlterConfig(sarama.TopicResource, "sa-a", map[string]*string{"retention.ms": strp("-7")}, false)
		if !errors.Is(err, sarama.ErrInvalidConfig) {
			t.Fatalf("AlterConfig(retention.ms=-7): %v, want ErrInvalidConfig", err)
		}
		err = adm.IncrementalAlterConfig(sarama.TopicResource, "sa-missing", map[string]sarama.IncrementalAlterConfigsEntry{
			"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: strp("1000")},
		}, false)
		if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			t.Fatalf("IncrementalAlterConfig(missing topic): %v, want ErrUnknownTopicOrPartition", err)
		}
	})

	t.Run("CreatePartitions", func(t *testing.T) {
		if err := adm.CreatePartitions("sa-b", 4, nil, false); err != nil {
			t.Fatalf("CreatePartitions(4): %v", err)
		}
		md, err := adm.DescribeTopics([]string{"sa-b"})
		if err != nil || len(md) != 1 || len(md[0].Partitions) != 4 {
			t.Fatalf("sa-b after CreatePartitions(4): %v %+v", err, md)
		}
		if err := adm.CreatePartitions("sa-b", 3, nil, false); !errors.Is(err, sarama.ErrInvalidPartitions) {
			t.Fatalf("CreatePartitions(4 -> 3): %v, want ErrInvalidPartitions", err)
		}
	})

	t.Run("DeleteRecords", func(t *testing.T) {
		prod := newSaramaProducer(t, b, "producer")
		for i := 0; i < 5; i++ {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "sa-b", Partition: 3,
				Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
				t.Fatal(err)
			}
		}
		if err := adm.DeleteRecords("sa-b", map[int32]int64{3: 2}); err != nil {
			t.Fatalf("DeleteRecords: %v", err)
		}
		client, err := sarama.NewClient([]string{b.addr()}, saramaConfig(t, "client"))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		if o, err := client.GetOffset("sa-b", 3, sarama.OffsetOldest); err != nil || o != 2 {
			t.Fatalf("oldest offset after DeleteRecords(2): %d %v", o, err)
		}
		if err := adm.DeleteRecords("sa-b", map[int32]int64{3: 99}); !errors.Is(err, sarama.ErrOffsetOutOfRange) {
			t.Fatalf("DeleteRecords past the end: %v, want ErrOffsetOutOfRange", err)
		}
		cons, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		pc, err := cons.ConsumePartition("sa-b", 3, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		if m := readMessages(t, ctx, pc, 1)[0]; m.Offset != 2 || string(m.Value) != "2" {
			t.Fatalf("first message after DeleteRecords: %d %q", m.Offset, m.Value)
		}
	})

	t.Run("ConsumerGroups", func(t *testing.T) {
		const group = "sa-group"
		glog := newGroupLog()
		m := startSaramaMember(t, b, "sa-member", group, "sa-b", glog)
		prod := newSaramaProducer(t, b, "group-producer")
		saramaProduceRound(t, prod, "sa-b", 4, 2, "g") // sa-b/3 now ends at 7
		waitFor(t, ctx, "the member to commit everything", func() error {
			if errs := glog.errors(); len(errs) > 0 {
				t.Fatalf("member errors: %v", errs)
			}
			resp, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{"sa-b": {0, 1, 2, 3}})
			if err != nil {
				return err
			}
			for p, want := range map[int32]int64{0: 2, 1: 2, 2: 2, 3: 7} {
				blk := resp.GetBlock("sa-b", p)
				if blk == nil || blk.Err != sarama.ErrNoError || blk.Offset != want {
					return fmt.Errorf("partition %d: %+v, want %d", p, blk, want)
				}
			}
			return nil
		})
		lg, err := adm.ListConsumerGroups()
		if err != nil {
			t.Fatal(err)
		}
		if lg[group] != "consumer" {
			t.Fatalf("ListConsumerGroups: %v", lg)
		}
		ds, err := adm.DescribeConsumerGroups([]string{group})
		if err != nil || len(ds) != 1 {
			t.Fatalf("DescribeConsumerGroups: %v %v", ds, err)
		}
		d := ds[0]
		if d.Err != sarama.ErrNoError || d.State != "Stable" || d.ProtocolType != "consumer" ||
			d.Protocol != "range" || len(d.Members) != 1 {
			t.Fatalf("DescribeConsumerGroups: %+v", d)
		}
		for _, mem := range d.Members {
			a, err := mem.GetMemberAssignment()
			if err != nil || mem.ClientId != "samsa-go-sa-member" || len(a.Topics["sa-b"]) != 4 {
				t.Fatalf("member %+v assignment %+v %v", mem, a, err)
			}
		}
		if err := adm.DeleteConsumerGroup(group); !errors.Is(err, sarama.ErrNonEmptyGroup) {
			t.Fatalf("DeleteConsumerGroup(active): %v, want ErrNonEmptyGroup", err)
		}
		m.stop()
		waitFor(t, ctx, "the group to be empty", func() error {
			ds, err := adm.DescribeConsumerGroups([]string{group})
			if err != nil {
				return err
			}
			if ds[0].State != "Empty" {
				return fmt.Errorf("state %q", ds[0].State)
			}
			return nil
		})
		// OffsetDelete of one partition, then the whole group.
		if err := adm.DeleteConsumerGroupOffset(group, "sa-b", 0); err != nil {
			t.Fatalf("DeleteConsumerGroupOffset: %v", err)
		}
		resp, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{"sa-b": {0, 1}})
		if err != nil {
			t.Fatal(err)
		}
		if blk := resp.GetBlock("sa-b", 0); blk == nil || blk.Offset != -1 {
			t.Fatalf("offset of sa-b/0 after DeleteConsumerGroupOffset: %+v", blk)
		}
		if blk := resp.GetBlock("sa-b", 1); blk == nil || blk.Offset != 2 {
			t.Fatalf("offset of sa-b/1 after deleting sa-b/0's: %+v", blk)
		}
		if err := adm.DeleteConsumerGroup(group); err != nil {
			t.Fatalf("DeleteConsumerGroup: %v", err)
		}
		if err := adm.DeleteConsumerGroup(group); !errors.Is(err, sarama.ErrGroupIDNotFound) {
			t.Fatalf("DeleteConsumerGroup twice: %v, want ErrGroupIDNotFound", err)
		}
		lg, err = adm.ListConsumerGroups()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := lg[group]; ok {
			t.Fatalf("ListConsumerGroups after delete: %v", lg)
		}
	})

	t.Run("DeleteTopic", func(t *testing.T) {
		if err := adm.DeleteTopic("sa-b"); err != nil {
			t.Fatalf("DeleteTopic: %v", err)
		}
		lt, err := adm.ListTopics()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := lt["sa-b"]; ok {
			t.Fatalf("sa-b listed after DeleteTopic")
		}
		if _, ok := lt["sa-a"]; !ok {
			t.Fatalf("sa-a missing after deleting sa-b")
		}
		if err := adm.DeleteTopic("sa-b"); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			t.Fatalf("DeleteTopic twice: %v, want ErrUnknownTopicOrPartition", err)
		}
	})
}
