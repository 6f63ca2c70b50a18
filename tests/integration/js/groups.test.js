'use strict'
// Integration test: kafkajs 2.2.4 consumer groups against a real samsa-server (node --test).
//
// A consumer group (subscribe + run with eachMessage, explicit commitOffsets) reads every
// record of a topic and commits; the broker is restarted (SIGTERM, same port and data dir);
// a second run of the same group resumes exactly at the committed offsets. The admin side
// (listGroups, describeGroups, fetchOffsets, deleteGroups) is checked along the way.
//
// One broker for the file, on a free loopback port with a temporary data dir, killed and
// removed when the file ends, fails or hangs (watchdog): broker.js. The restart keeps its
// port and data dir.

const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { Kafka, Partitioners, logLevel } = require('kafkajs')
const { Broker } = require('./broker')

const TOPIC = 'js-group-topic'
const PARTITIONS = 3
const FIRST = 3000
const SECOND = 600
const GROUP = 'js-group'

const broker = new Broker({
  name: 'kafkajs-groups',
  overrides: ['group.initial.rebalance.delay.ms=0', 'group.min.session.timeout.ms=1000'],
  watchdogMs: 240000,
})

function newKafka() {
  return new Kafka({
    clientId: 'samsa-it-kafkajs-groups',
    brokers: [`127.0.0.1:${broker.port}`],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
    connectionTimeout: 5000,
    requestTimeout: 30000,
  })
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function until(pred, ms, what) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await pred()
    if (v) return v
    assert.ok(Date.now() < deadline, `timed out after ${ms} ms waiting for ${what}`)
    await sleep(50)
  }
}

async function produce(kafka, n, tag) {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    for (let i = 0; i < n; i += 500) {
      const messages = []
      for (let j = i; j < Math.min(n, i + 500); j++) {
        messages.push({ key: `k-${j % 60}`, value: `${tag}-${j}` })
      }
      await producer.send({ topic: TOPIC, acks: -1, messages })
    }
  } finally {
    await producer.disconnect()
  }
}

async function endOffsets(admin) {
  const out = {}
  for (const { partition, high } of await admin.fetchTopicOffsets(TOPIC)) out[partition] = Number(high)
  return out
}

async function committedOffsets(admin) {
  const [{ partitions }] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] })
  const out = {}
  for (const { partition, offset } of partitions) out[partition] = Number(offset)
  return out
}

// One run of the group: subscribe, eachMessage until `want` records (then `settleMs` more
// to catch any extra), commitOffsets of what was processed, disconnect (LeaveGroup).
async function runGroup(kafka, want, settleMs = 1500) {
  const consumer = kafka.consumer({
    groupId: GROUP,
    sessionTimeout: 10000,
    rebalanceTimeout: 15000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 100,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
  })
  const got = []
  const next = {}
  let crashed = null
  consumer.on(consumer.events.CRASH, e => {
    crashed = e.payload.error
  })
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        assert.equal(topic, TOPIC)
        got.push([partition, Number(message.offset)])
        next[partition] = Number(message.offset) + 1
      },
    })
    await until(() => crashed || got.length >= want, 60000, `${want} records (have ${got.length})`)
    assert.equal(crashed, null, `consumer crashed: ${crashed}`)
    await sleep(settleMs)
    await consumer.commitOffsets(
      Object.entries(next).map(([p, o]) => ({ topic: TOPIC, partition: Number(p), offset: String(o) }))
    )
  } finally {
    await consumer.disconnect()
  }
  return got
}

function assertContiguous(got, from, to, what) {
  const byPart = {}
  for (const [p, o] of got) (byPart[p] = byPart[p] || []).push(o)
  for (let p = 0; p < PARTITIONS; p++) {
    const offs = (byPart[p] || []).slice().sort((a, b) => a - b)
    const want = []
    for (let o = from[p] || 0; o < to[p]; o++) want.push(o)
    assert.deepEqual(offs, want, `${what}: partition ${p} offsets are not exactly [${from[p] || 0}, ${to[p]})`)
  }
}

describe('kafkajs 2.2.4 consumer groups against samsa-server', { timeout: 200000 }, () => {
  let kafka, admin

  before(async () => {
    await broker.start()
    kafka = newKafka()
    admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }], waitForLeaders: true })
  })

  after(async () => {
    try {
      if (admin) await admin.disconnect()
    } catch (_) {}
    await broker.close()
  })

  let firstEnds

  it(`a group consumes all ${FIRST} records once and commits them`, () => broker.withLog(async () => {
    await produce(kafka, FIRST, 'first')
    firstEnds = await endOffsets(admin)
    assert.equal(Object.values(firstEnds).reduce((a, b) => a + b, 0), FIRST)
    const got = await runGroup(kafka, FIRST)
    assertContiguous(got, {}, firstEnds, 'first run')
    assert.equal(got.length, FIRST, 'records delivered more than once')
    assert.deepEqual(await committedOffsets(admin), firstEnds)

    const { groups } = await admin.describeGroups([GROUP])
    assert.equal(groups.length, 1)
    assert.equal(groups[0].state, 'Empty')
    assert.equal(groups[0].protocolType, 'consumer')
    assert.deepEqual(groups[0].members, [])
    const listed = (await admin.listGroups()).groups.filter(g => g.groupId === GROUP)
    assert.deepEqual(listed, [{ groupId: GROUP, protocolType: 'consumer' }])
  }))

  it('after a broker restart the group resumes at its committed offsets', () => broker.withLog(async () => {
    await produce(kafka, SECOND, 'second')
    const ends = await endOffsets(admin)
    await admin.disconnect()
    admin = null
    const r = await broker.stop()
    assert.equal(r.code, 0, `broker exited with ${r.code}/${r.sig} on SIGTERM`)
    await broker.start()
    kafka = newKafka()
    admin = kafka.admin()
    await admin.connect()
    assert.deepEqual(await committedOffsets(admin), firstEnds, 'commits lost in the restart')

    const got = await runGroup(kafka, SECOND)
    assertContiguous(got, firstEnds, ends, 'second run')
    assert.equal(got.length, SECOND, 'records delivered more than once')
    assert.deepEqual(await committedOffsets(admin), ends)

    // An empty group can be deleted; its offsets go with it.
    await admin.deleteGroups([GROUP])
    const listed = (await admin.listGroups()).groups.filter(g => g.groupId === GROUP)
    assert.deepEqual(listed, [])
    const after = await committedOffsets(admin)
    for (let p = 0; p < PARTITIONS; p++) assert.equal(after[p], -1, `partition ${p} offset after delete`)
  }))
})
