'use strict'
// Integration test: kafkajs 2.2.4 against a real samsa-server (node --test).
//
// One broker for the whole file, started on a free loopback port with a temporary data dir
// and killed (data dir removed) when the file ends, fails, or hangs (watchdog): broker.js.
//
// Reading records without a consumer group. kafkajs's Consumer always joins a group
// (FindCoordinator/JoinGroup), which the broker does not serve yet, so the records are read
// the way the Consumer reads them internally, minus the group: the test asks the Kafka
// object for a Cluster exactly as kafka.consumer() does (the client's own private
// createCluster factory, so brokers, socket factory, logger and retry settings are the
// client's), finds each partition's leader with cluster.findLeaderForPartitions() and
// cluster.findBroker(), calls Broker#fetch() (kafkajs's Fetch request encoder, its
// response and RecordBatch decoders, decompression included) and wraps each partition's
// data in kafkajs's own consumer Batch class, which drops records below the fetch offset and
// control records just as ConsumerGroup#fetch does. That is the consumer's protocol path end
// to end with "assign()" semantics: we choose partitions and offsets ourselves.
// The only internals touched are that factory symbol and src/consumer/batch.js; kafkajs is
// pinned to 2.2.4 exactly in package.json.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Kafka, Partitioners, CompressionTypes, logLevel } = require('kafkajs')
const Batch = require('kafkajs/src/consumer/batch')
const { Broker } = require('./broker')

const TOPIC = 'js-events'
const PARTITIONS = 4
const RECORDS = 100000
const BATCH = 1000 // messages per producer.send()
const KEYS = 1000 // keys repeat: one key's records share a partition, in send order

const broker = new Broker({ name: 'kafkajs', watchdogMs: 480000 })

// ---- reading with kafkajs's fetch path (see the comment at the top) ----

function createCluster(kafka) {
  const sym = Object.getOwnPropertySymbols(kafka).find(
    s => s.description === 'private:Kafka:createCluster'
  )
  assert.ok(sym, 'kafkajs internals changed: no private:Kafka:createCluster on the Kafka object')
  return kafka[sym]({ metadataMaxAge: 300000, allowAutoTopicCreation: false })
}

// Reads partitions [0, count) of `topic` from `from` (offset per partition, default 0)
// until each reaches `until[p]`; returns { [p]: [message, ...] } with kafkajs messages.
async function readAll(cluster, topic, partitions, until, from = {}) {
  await cluster.addTargetTopic(topic)
  await cluster.refreshMetadata()
  const next = {}
  const got = {}
  for (const p of partitions) {
    next[p] = from[p] || 0
    got[p] = []
  }
  const deadline = Date.now() + 120000
  for (;;) {
    const pending = partitions.filter(p => next[p] < until[p])
    if (pending.length === 0) return got
    assert.ok(Date.now() < deadline, `reading ${topic}: still missing ${JSON.stringify(
      pending.map(p => ({ p, at: next[p], until: until[p] })))} after 120 s`)
    const byLeader = cluster.findLeaderForPartitions(topic, pending)
    const led = Object.values(byLeader).flat()
    const leaderless = pending.filter(p => !led.includes(p))
    assert.deepEqual(leaderless, [], `${topic}: no leader in metadata for these partitions`)
    for (const [nodeId, leaderPartitions] of Object.entries(byLeader)) {
      const b = await cluster.findBroker({ nodeId })
      const { responses } = await b.fetch({
        maxWaitTime: 500,
        minBytes: 1,
        maxBytes: 10485760,
        topics: [{
          topic,
          partitions: leaderPartitions.map(p => ({
            partition: p,
            fetchOffset: String(next[p]),
            maxBytes: 1048576,
          })),
        }],
      })
      for (const { topicName, partitions: parts } of responses) {
        assert.equal(topicName, topic)
        for (const pd of parts) {
          assert.equal(pd.errorCode, 0, `fetch ${topic} [${pd.partition}] error ${pd.errorCode}`)
          const batch = new Batch(topicName, String(next[pd.partition]), pd)
          for (const m of batch.messages) {
            assert.equal(Number(m.offset), next[pd.partition],
              `${topic} [${pd.partition}]: got offset ${m.offset}, want ${next[pd.partition]}`)
            got[pd.partition].push(m)
            next[pd.partition]++
          }
        }
      }
    }
  }
}

// ---- the records ----

function record(i) {
  return {
    key: `key-${String(i % KEYS).padStart(4, '0')}`,
    value: `value-${String(i).padStart(6, '0')}-${'x'.repeat((i * 7919) % 150)}`,
    headers: { idx: String(i), src: 'kafkajs' },
  }
}

// ---- the tests ----

describe('kafkajs 2.2.4 against samsa-server', { timeout: 420000 }, () => {
  let kafka, admin, producer, cluster

  before(async () => {
    await broker.start()
    kafka = new Kafka({
      clientId: 'samsa-it-kafkajs',
      brokers: [`127.0.0.1:${broker.port}`],
      logLevel: logLevel.WARN,
      retry: { retries: 3 },
      connectionTimeout: 5000,
      requestTimeout: 30000,
    })
    admin = kafka.admin()
    await admin.connect()
    producer = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    })
    await producer.connect()
    cluster = createCluster(kafka)
    await cluster.connect()
  })

  after(async () => {
    for (const c of [producer, admin, cluster]) {
      try {
        if (c) await c.disconnect()
      } catch (_) {}
    }
    await broker.close()
  })

  it('createTopics, fetchTopicMetadata, fetchTopicOffsets', () => broker.withLog(async () => {
    const created = await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
    })
    assert.equal(created, true, 'createTopics returned false for a new topic')
    // Creating it again: kafkajs maps TOPIC_ALREADY_EXISTS to false.
    assert.equal(
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] }),
      false,
      'second createTopics of the same topic did not report TOPIC_ALREADY_EXISTS'
    )

    const { topics } = await admin.fetchTopicMetadata({ topics: [TOPIC] })
    assert.equal(topics.length, 1)
    assert.equal(topics[0].name, TOPIC)
    const parts = [...topics[0].partitions].sort((a, b) => a.partitionId - b.partitionId)
    assert.deepEqual(parts.map(p => p.partitionId), [0, 1, 2, 3])
    for (const p of parts) {
      assert.equal(p.partitionErrorCode, 0, `partition ${p.partitionId} error`)
      assert.equal(p.leader, 1, `partition ${p.partitionId} leader`)
      assert.deepEqual(p.replicas, [1])
      assert.deepEqual(p.isr, [1])
    }

    const offsets = await admin.fetchTopicOffsets(TOPIC)
    assert.deepEqual(
      [...offsets].sort((a, b) => a.partition - b.partition),
      [0, 1, 2, 3].map(partition => ({ partition, offset: '0', high: '0', low: '0' }))
    )

    const listed = await admin.listTopics()
    assert.ok(listed.includes(TOPIC), `listTopics ${JSON.stringify(listed)} lacks ${TOPIC}`)
  }))

  // Per-partition expected records, filled by the produce test, checked by the read test.
  const expected = {}
  for (let p = 0; p < PARTITIONS; p++) expected[p] = []

  it(`produces ${RECORDS} keyed records with acks=-1`, () => broker.withLog(async () => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [TOPIC] })
    const partitionMetadata = topics[0].partitions
    const partitioner = Partitioners.DefaultPartitioner()
    const t0 = Date.now()
    for (let start = 0; start < RECORDS; start += BATCH) {
      const messages = []
      for (let i = start; i < Math.min(start + BATCH, RECORDS); i++) messages.push(record(i))
      const result = await producer.send({ topic: TOPIC, acks: -1, messages })
      // One RecordMetadata per partition written; its base offset is where this send's
      // records for that partition start: right after everything sent there before.
      const perPartition = {}
      for (const m of messages) {
        const p = partitioner({ topic: TOPIC, partitionMetadata, message: m })
        ;(perPartition[p] = perPartition[p] || []).push(m)
      }
      const written = result.map(r => r.partition).sort()
      assert.deepEqual(written, Object.keys(perPartition).map(Number).sort(),
        `send at ${start}: partitions in the response`)
      for (const r of result) {
        assert.equal(r.topicName, TOPIC)
        assert.equal(r.errorCode, 0, `send at ${start}: partition ${r.partition} error`)
        assert.equal(Number(r.baseOffset), expected[r.partition].length,
          `send at ${start}: partition ${r.partition} base offset`)
        expected[r.partition].push(...perPartition[r.partition])
      }
    }
    const counts = Object.values(expected).map(a => a.length)
    assert.equal(counts.reduce((a, b) => a + b, 0), RECORDS)
    for (let p = 0; p < PARTITIONS; p++) assert.ok(counts[p] > 0, `partition ${p} got no records`)
    console.log(`# produced ${RECORDS} records in ${Date.now() - t0} ms, per partition ${counts}`)

    const offsets = await admin.fetchTopicOffsets(TOPIC)
    for (const o of offsets) {
      assert.equal(o.high, String(expected[o.partition].length), `high watermark of ${o.partition}`)
      assert.equal(o.low, '0', `low watermark of ${o.partition}`)
    }
  }))

  it('reads every record back through Broker#fetch, content and order exact', () =>
    broker.withLog(async () => {
      assert.equal(expected[0].length + expected[1].length + expected[2].length +
        expected[3].length, RECORDS, 'the produce test did not run to completion')
      const t0 = Date.now()
      const until = {}
      for (let p = 0; p < PARTITIONS; p++) until[p] = expected[p].length
      const got = await readAll(cluster, TOPIC, [0, 1, 2, 3], until)
      for (let p = 0; p < PARTITIONS; p++) {
        assert.equal(got[p].length, expected[p].length, `partition ${p} record count`)
        for (let j = 0; j < got[p].length; j++) {
          const m = got[p][j]
          const e = expected[p][j]
          const where = `partition ${p} offset ${j}`
          assert.equal(m.key.toString(), e.key, `${where}: key`)
          assert.equal(m.value.toString(), e.value, `${where}: value`)
          assert.deepEqual(
            Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, v.toString()])),
            e.headers, `${where}: headers`)
          assert.ok(Number(m.timestamp) > 0, `${where}: timestamp ${m.timestamp}`)
        }
      }
      console.log(`# read ${RECORDS} records in ${Date.now() - t0} ms`)
    }))

  it('round-trips a gzip-compressed batch', () => broker.withLog(async () => {
    const topic = 'js-gzip'
    assert.equal(await admin.createTopics({
      topics: [{ topic, numPartitions: 1 }], waitForLeaders: true }), true)
    const messages = Array.from({ length: 500 }, (_, i) => ({ key: `g${i}`, value: `gz-${i}` }))
    const [r] = await producer.send({
      topic, acks: -1, compression: CompressionTypes.GZIP, messages })
    assert.equal(r.errorCode, 0)
    assert.equal(r.baseOffset, '0')
    // Read from the middle of the compressed batch: Batch drops the records before it.
    const got = await readAll(cluster, topic, [0], { 0: 500 }, { 0: 123 })
    assert.deepEqual(
      got[0].map(m => [Number(m.offset), m.key.toString(), m.value.toString()]),
      messages.slice(123).map((m, i) => [123 + i, m.key, m.value]))
  }))

  it('an idempotent producer (idempotent: true) writes each record once, in order', () =>
    broker.withLog(async () => {
      const topic = 'js-idempotent'
      assert.equal(await admin.createTopics({
        topics: [{ topic, numPartitions: 2 }], waitForLeaders: true }), true)
      const idem = kafka.producer({
        idempotent: true, maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false,
      })
      await idem.connect()
      try {
        const sent = []
        for (let b = 0; b < 20; b++) {
          const messages = Array.from({ length: 100 }, (_, i) => ({
            partition: (b + i) % 2, value: `idem-${b * 100 + i}` }))
          sent.push(...messages)
          const res = await idem.send({ topic, acks: -1, messages })
          for (const r of res) assert.equal(r.errorCode, 0)
        }
        const got = await readAll(cluster, topic, [0, 1], { 0: 1000, 1: 1000 })
        for (const p of [0, 1]) {
          assert.deepEqual(
            got[p].map(m => [Number(m.offset), m.value.toString()]),
            sent.filter(m => m.partition === p).map((m, i) => [i, m.value]))
        }
      } finally {
        await idem.disconnect()
      }
    }))

  it('describeConfigs and alterConfigs of a topic', () => broker.withLog(async () => {
    const { ConfigResourceTypes } = require('kafkajs')
    const describe = async () => {
      const { resources } = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: TOPIC }], includeSynonyms: false })
      assert.equal(resources.length, 1)
      assert.equal(resources[0].errorCode, 0, `describeConfigs error ${resources[0].errorMessage}`)
      return Object.fromEntries(resources[0].configEntries.map(c => [c.configName, c.configValue]))
    }
    const before = await describe()
    assert.equal(before['cleanup.policy'], 'delete')
    assert.equal(before['retention.ms'], '604800000')
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: TOPIC,
        configEntries: [{ name: 'retention.ms', value: '7200000' }] }],
    })
    assert.equal((await describe())['retention.ms'], '7200000')
  }))

  it('createPartitions grows the topic and the new partitions take records', () =>
    broker.withLog(async () => {
      await admin.createPartitions({ topicPartitions: [{ topic: TOPIC, count: 6 }] })
      const { topics } = await admin.fetchTopicMetadata({ topics: [TOPIC] })
      assert.deepEqual(topics[0].partitions.map(p => p.partitionId).sort(), [0, 1, 2, 3, 4, 5])
      const offsets = await admin.fetchTopicOffsets(TOPIC)
      const byP = Object.fromEntries(offsets.map(o => [o.partition, o]))
      assert.equal(byP[4].high, '0')
      assert.equal(byP[5].high, '0')
      assert.equal(byP[0].high, String(expected[0].length), 'old partitions keep their data')

      // Shrinking is refused (INVALID_PARTITIONS).
      await assert.rejects(
        admin.createPartitions({ topicPartitions: [{ topic: TOPIC, count: 2 }] }),
        e => e.type === 'INVALID_PARTITIONS' || (e.cause && e.cause.type === 'INVALID_PARTITIONS'),
        'createPartitions to fewer partitions was not refused with INVALID_PARTITIONS')

      // Write to partition 5 explicitly. A kafkajs producer only refreshes its metadata
      // after metadataMaxAge and silently drops records for partitions it does not know
      // (send() resolves with []), so use a fresh producer.
      const p2 = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
      await p2.connect()
      try {
        const r = await p2.send({ topic: TOPIC, acks: -1,
          messages: [{ partition: 5, key: 'p5', value: 'fifth' }] })
        assert.deepEqual(r.map(x => [x.partition, x.errorCode, x.baseOffset]), [[5, 0, '0']])
      } finally {
        await p2.disconnect()
      }
      const got = await readAll(cluster, TOPIC, [5], { 5: 1 })
      assert.equal(got[5][0].value.toString(), 'fifth')
    }))

  it('deleteTopicRecords moves the log start', () => broker.withLog(async () => {
    const cut = Math.floor(expected[1].length / 2)
    await admin.deleteTopicRecords({ topic: TOPIC, partitions: [{ partition: 1, offset: String(cut) }] })
    const offsets = await admin.fetchTopicOffsets(TOPIC)
    const o1 = offsets.find(o => o.partition === 1)
    assert.equal(o1.low, String(cut), 'low watermark after deleteTopicRecords')
    assert.equal(o1.high, String(expected[1].length))
    const got = await readAll(cluster, TOPIC, [1], { 1: cut + 3 }, { 1: cut })
    assert.equal(got[1][0].value.toString(), expected[1][cut].value)
  }))

  it('deleteTopics removes a topic', () => broker.withLog(async () => {
    const topic = 'js-doomed'
    assert.equal(await admin.createTopics({
      topics: [{ topic, numPartitions: 2 }], waitForLeaders: true }), true)
    await producer.send({ topic, acks: -1, messages: [{ key: 'a', value: 'b' }] })
    await admin.deleteTopics({ topics: [topic], timeout: 10000 })
    const listed = await admin.listTopics()
    assert.ok(!listed.includes(topic), `listTopics still lists ${topic}: ${JSON.stringify(listed)}`)
    assert.ok(listed.includes(TOPIC), `listTopics lost ${TOPIC}: ${JSON.stringify(listed)}`)
    // Deleting it again is UNKNOWN_TOPIC_OR_PARTITION (a quiet client without retries, as
    // kafkajs logs and retries that error).
    const quiet = new Kafka({ clientId: 'samsa-it-kafkajs-quiet',
      brokers: [`127.0.0.1:${broker.port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } })
    const admin2 = quiet.admin()
    await admin2.connect()
    try {
      await assert.rejects(
        admin2.deleteTopics({ topics: [topic], timeout: 5000 }),
        e => [e, e.cause, e.originalError].some(x => x && x.type === 'UNKNOWN_TOPIC_OR_PARTITION'),
        'deleting a deleted topic did not fail with UNKNOWN_TOPIC_OR_PARTITION')
    } finally {
      await admin2.disconnect()
    }
    // The name is free again, and the new topic starts empty.
    assert.equal(await admin.createTopics({
      topics: [{ topic, numPartitions: 1 }], waitForLeaders: true }), true)
    const offsets = await admin.fetchTopicOffsets(topic)
    assert.deepEqual(offsets, [{ partition: 0, offset: '0', high: '0', low: '0' }])
  }))
})
