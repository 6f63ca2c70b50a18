'use strict'
// A local three-node cluster for a kafkajs test file, started with `samsa cluster up`
// (docs/cli.md, "Local cluster") in a fresh temporary dir on a random base port below the
// ephemeral range (another one if a port is taken). Node I serves clients on
// base + 10*(I-1). As the Java and Go cluster tests do it: the nodes run detached, in their
// own sessions, so close() (also run at process exit and by the watchdog) runs
// `cluster down --purge` and then SIGKILLs any node still listed in DIR/pids.

const assert = require('node:assert/strict')
const { execFile, spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const SERVER = process.env.SAMSA_SERVER
const CLI = process.env.SAMSA_CLI || (SERVER && path.join(path.dirname(SERVER), 'tools', 'samsa'))
const UP_TIMEOUT_MS = 60000
const DOWN_TIMEOUT_MS = 40000

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// The node leading the metadata quorum (the active controller), by `samsa cluster status
// --json` (DescribeQuorum; a Kafka broker forwards it to the active controller) against
// addr, or null when the CLI is missing or cannot tell.
function quorumLeader(addr) {
  if (!CLI || !fs.existsSync(CLI)) return Promise.resolve(null)
  return new Promise(resolve => {
    execFile(CLI, ['cluster', 'status', '--json', '-b', addr], { timeout: 15000 }, (err, stdout) => {
      try {
        const q = JSON.parse(stdout).quorum
        resolve(q && q.available ? q.leader_id : null)
      } catch (_) {
        resolve(null)
      }
    })
  })
}

// The last n lines of node's log (nodeN/server.log under dir), for failure messages.
function logTail(dir, node, n) {
  try {
    const f = path.join(dir, `node${node}`, 'server.log')
    return fs.readFileSync(f, 'utf8').trimEnd().split('\n').slice(-n).join('\n')
  } catch (e) {
    return `(no log: ${e.message})`
  }
}

class Cluster {
  // name: the test file's, for its dir and the watchdog's message; watchdogMs: how long
  // the file may run in all.
  constructor({ name, nodes = 3, watchdogMs }) {
    this.name = name
    this.nodes = nodes
    this.tmp = null
    this.dir = null
    this.base = 0
    this.controller = -1
    process.on('exit', () => this.close())
    const watchdog = setTimeout(() => {
      console.error(`FAIL: watchdog: ${name} test file still running after ${watchdogMs / 1000} s`)
      for (let n = 1; n <= this.nodes; n++) console.error(`---- node ${n} ----\n${this.tail(n)}`)
      this.close()
      process.exit(2)
    }, watchdogMs)
    watchdog.unref()
  }

  addr(node) {
    return `127.0.0.1:${this.base + 10 * (node - 1)}`
  }

  // The client addresses of every node but those in except.
  addrs(...except) {
    const out = []
    for (let n = 1; n <= this.nodes; n++) if (!except.includes(n)) out.push(this.addr(n))
    return out
  }

  cli(...args) {
    const r = spawnSync(CLI, ['cluster', ...args], {
      encoding: 'utf8',
      timeout: args[0] === 'up' ? UP_TIMEOUT_MS : DOWN_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    return { ok: r.status === 0, out: `${r.stdout || ''}${r.stderr || ''}` }
  }

  // Runs `samsa cluster up`; resolves once it reported the cluster ready.
  up() {
    assert.ok(SERVER, 'SAMSA_SERVER must point to the samsa-server binary')
    assert.ok(CLI && fs.existsSync(CLI), `samsa CLI ${CLI} not found (set SAMSA_CLI)`)
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `samsa-${this.name}-`))
    this.dir = path.join(this.tmp, 'cluster')
    let last = ''
    for (let attempt = 0; attempt < 5; attempt++) {
      this.base = 20000 + Math.floor(Math.random() * 1000) * 10
      const r = this.cli('up', '--nodes', `${this.nodes}`, '--dir', this.dir,
        '--base-port', `${this.base}`, '--server', SERVER)
      const m = /Active controller: node (\d+)/.exec(r.out)
      if (r.ok && m && r.out.includes(`bootstrap.servers=${this.addrs().join(',')}`)) {
        this.controller = Number(m[1])
        return
      }
      last = r.out
      this.killNodes()
      fs.rmSync(this.dir, { recursive: true, force: true })
      if (!/is not free|Address already in use/.test(r.out)) break
    }
    throw new Error(`samsa cluster up failed:\n${last}`)
  }

  pids() {
    try {
      return fs.readFileSync(path.join(this.dir, 'pids'), 'utf8').split('\n')
        .filter(l => /^\d+$/.test(l.trim())).map(Number)
    } catch (_) {
      return []
    }
  }

  // Whether pid is a samsa-server of this cluster (its command line names a node's
  // properties file here). A zombie's command line is empty.
  isNode(pid) {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${this.dir}/node`)
    } catch (_) {
      return false
    }
  }

  killNodes() {
    for (const pid of this.pids()) {
      if (this.isNode(pid)) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch (_) {}
      }
    }
  }

  activeController() {
    return quorumLeader(this.addr(1))
  }

  // SIGKILLs node and resolves once it is gone.
  async kill(node) {
    const pid = this.pids()[node - 1]
    assert.ok(pid && this.isNode(pid), `node ${node} is not running (pids ${this.pids()})`)
    process.kill(pid, 'SIGKILL')
    const deadline = Date.now() + 10000
    while (this.isNode(pid)) {
      assert.ok(Date.now() < deadline, `node ${node} (pid ${pid}) still alive 10 s after SIGKILL`)
      await sleep(20)
    }
  }

  // Starts node again after it was killed, as `cluster up` starts a node (its properties
  // file, its own session, stdin from /dev/null, output appended to its server.log), and
  // puts its new pid in DIR/pids so that close() stops it too. Resolves once the log shows
  // it listening for clients again.
  async restart(node) {
    const pids = this.pids()
    assert.ok(!this.isNode(pids[node - 1]), `node ${node} is still running`)
    const nodeDir = path.join(this.dir, `node${node}`)
    const log = path.join(nodeDir, 'server.log')
    const from = fs.statSync(log).size
    const fd = fs.openSync(log, 'a')
    const proc = spawn(SERVER, ['-c', path.join(nodeDir, 'server.properties')], {
      detached: true,
      stdio: ['ignore', fd, fd],
    })
    fs.closeSync(fd)
    proc.unref()
    let exited = null
    proc.on('exit', (code, sig) => { exited = `code ${code}, signal ${sig}` })
    pids[node - 1] = proc.pid
    fs.writeFileSync(path.join(this.dir, 'pids'), pids.join('\n') + '\n')
    const want = `samsa-server listening on port ${this.base + 10 * (node - 1)} `
    const deadline = Date.now() + UP_TIMEOUT_MS
    for (;;) {
      if (fs.readFileSync(log).subarray(from).toString('utf8').includes(want)) return
      assert.ok(exited === null, `node ${node} exited on restart (${exited}):\n${this.tail(node)}`)
      assert.ok(Date.now() < deadline, `node ${node} not listening after its restart:\n${this.tail(node)}`)
      await sleep(50)
    }
  }

  // The last n lines of node's log.
  tail(node, n = 30) {
    return logTail(this.dir, node, n)
  }

  // `cluster down --purge`, then SIGKILL for any node it left, then the dir goes.
  close() {
    if (!this.tmp) return
    if (fs.existsSync(path.join(this.dir, 'cluster'))) {
      const r = this.cli('down', '--dir', this.dir, '--purge')
      if (!r.ok) console.error(`samsa cluster down --purge ${this.dir}:\n${r.out}`)
    }
    this.killNodes()
    fs.rmSync(this.tmp, { recursive: true, force: true })
    this.tmp = null
  }

  // Runs fn, adding the nodes' log tails to the message of whatever it throws.
  async withLogs(fn) {
    try {
      return await fn()
    } catch (e) {
      for (let n = 1; n <= this.nodes; n++) e.message += `\n---- node ${n} log tail ----\n${this.tail(n)}`
      throw e
    }
  }
}

// The same interface on Apache Kafka 4.4 (tests/reference/kafka.sh: three KRaft nodes, each
// broker and controller, as `samsa cluster up` makes them; Kafka's defaults otherwise), for
// a test file run with SAMSA_JS_TARGET=kafka. The JVMs run detached, in their own sessions;
// close() (also run at process exit and by the watchdog) runs `kafka.sh stop DIR` (SIGTERM,
// SIGKILL after 20 s) and then SIGKILLs any node still listed in DIR/pids. Node I is
// node.id I; its client address is the I-th of the bootstrap kafka.sh prints.
const KAFKA_SH = path.join(__dirname, '..', '..', 'reference', 'kafka.sh')
const KAFKA_UP_TIMEOUT_S = 180

class KafkaCluster {
  constructor({ name, nodes = 3, watchdogMs }) {
    this.name = name
    this.nodes = nodes
    this.tmp = null
    this.dir = null
    this.bootstrap = []
    this.argv = {} // node -> { argv, cwd } of its JVM, read before a kill, for restart()
    process.on('exit', () => this.close())
    const watchdog = setTimeout(() => {
      console.error(`FAIL: watchdog: ${name} test file (on Kafka) still running after ${watchdogMs / 1000} s`)
      for (let n = 1; n <= this.nodes; n++) console.error(`---- node ${n} ----\n${this.tail(n)}`)
      this.close()
      process.exit(2)
    }, watchdogMs)
    watchdog.unref()
  }

  addr(node) {
    return this.bootstrap[node - 1]
  }

  addrs(...except) {
    const out = []
    for (let n = 1; n <= this.nodes; n++) if (!except.includes(n)) out.push(this.addr(n))
    return out
  }

  up() {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `kafka-${this.name}-`))
    this.dir = path.join(this.tmp, 'cluster')
    const r = spawnSync(KAFKA_SH, ['start', this.dir, '--nodes', `${this.nodes}`,
      '--timeout', `${KAFKA_UP_TIMEOUT_S}`], {
      encoding: 'utf8',
      timeout: (KAFKA_UP_TIMEOUT_S + 60) * 1000,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const out = (r.stdout || '').trim()
    if (r.status !== 0 || out.split(',').length !== this.nodes) {
      throw new Error(`kafka.sh start failed (status ${r.status}, ${r.signal || 'no signal'}):\n` +
        `${r.stdout || ''}${r.stderr || ''}`)
    }
    this.bootstrap = out.split(',')
  }

  // DIR/pids as kafka.sh writes it: "node pid" lines. Index node-1.
  pids() {
    const out = []
    try {
      for (const l of fs.readFileSync(path.join(this.dir, 'pids'), 'utf8').split('\n')) {
        const m = /^(\d+) (\d+)$/.exec(l.trim())
        if (m) out[Number(m[1]) - 1] = Number(m[2])
      }
    } catch (_) {}
    return out
  }

  writePids(pids) {
    fs.writeFileSync(path.join(this.dir, 'pids'), pids.map((p, i) => `${i + 1} ${p}`).join('\n') + '\n')
  }

  props(node) {
    return path.join(this.dir, `node${node}`, 'server.properties')
  }

  // Whether pid is the JVM of node (its command line names the node's properties file).
  isNode(pid, node) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      return node ? cmd.includes(this.props(node)) : cmd.includes(`${this.dir}/node`)
    } catch (_) {
      return false
    }
  }

  killNodes() {
    for (const pid of this.pids()) {
      if (pid && this.isNode(pid)) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch (_) {}
      }
    }
  }

  activeController() {
    return quorumLeader(this.addr(1))
  }

  // SIGKILLs node's JVM and resolves once it is gone; keeps its command line for restart().
  async kill(node) {
    const pid = this.pids()[node - 1]
    assert.ok(pid && this.isNode(pid, node), `node ${node} is not running (pids ${this.pids()})`)
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(a => a !== '')
    this.argv[node] = { argv, cwd: fs.readlinkSync(`/proc/${pid}/cwd`) }
    process.kill(pid, 'SIGKILL')
    const deadline = Date.now() + 10000
    while (this.isNode(pid, node)) {
      assert.ok(Date.now() < deadline, `node ${node} (pid ${pid}) still alive 10 s after SIGKILL`)
      await sleep(20)
    }
  }

  // Starts node's JVM again with the command line it had (its own session, output appended
  // to its stdout.log), puts the new pid in DIR/pids, and resolves once its server.log says
  // it has started.
  async restart(node) {
    const pids = this.pids()
    assert.ok(!this.isNode(pids[node - 1], node), `node ${node} is still running`)
    const saved = this.argv[node]
    assert.ok(saved, `node ${node} was not killed by this test`)
    const nodeDir = path.join(this.dir, `node${node}`)
    const log = path.join(nodeDir, 'server.log')
    const from = fs.statSync(log).size
    const fd = fs.openSync(path.join(nodeDir, 'stdout.log'), 'a')
    const proc = spawn(saved.argv[0], saved.argv.slice(1), {
      cwd: saved.cwd,
      detached: true,
      stdio: ['ignore', fd, fd],
    })
    fs.closeSync(fd)
    proc.unref()
    let exited = null
    proc.on('exit', (code, sig) => { exited = `code ${code}, signal ${sig}` })
    pids[node - 1] = proc.pid
    this.writePids(pids)
    const deadline = Date.now() + KAFKA_UP_TIMEOUT_S * 1000
    for (;;) {
      if (/Kafka Server started/.test(fs.readFileSync(log).subarray(from).toString('utf8'))) return
      assert.ok(exited === null, `node ${node} exited on restart (${exited}):\n${this.tail(node)}`)
      assert.ok(Date.now() < deadline, `node ${node} not started after its restart:\n${this.tail(node)}`)
      await sleep(100)
    }
  }

  tail(node, n = 30) {
    return logTail(this.dir, node, n)
  }

  // `kafka.sh stop DIR`, then SIGKILL for any node it left, then the dir goes (unless
  // SAMSA_KEEP_KAFKA_DIR=1: its path is printed).
  close() {
    if (!this.tmp) return
    if (fs.existsSync(path.join(this.dir, 'pids'))) {
      const r = spawnSync(KAFKA_SH, ['stop', this.dir, '--timeout', '20'], {
        encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'],
      })
      if (r.status !== 0) console.error(`kafka.sh stop ${this.dir}:\n${r.stdout || ''}${r.stderr || ''}`)
    }
    this.killNodes()
    if (process.env.SAMSA_KEEP_KAFKA_DIR === '1') console.error(`kept ${this.dir}`)
    else fs.rmSync(this.tmp, { recursive: true, force: true })
    this.tmp = null
  }

  withLogs(fn) {
    return Cluster.prototype.withLogs.call(this, fn)
  }
}

// The cluster a test file runs on: Samsa (`samsa cluster up`), or Apache Kafka 4.4 with
// SAMSA_JS_TARGET=kafka.
function target() {
  const t = process.env.SAMSA_JS_TARGET || 'samsa'
  assert.ok(t === 'samsa' || t === 'kafka', `SAMSA_JS_TARGET must be samsa or kafka, not ${t}`)
  return t
}

function newCluster(opts) {
  return target() === 'kafka' ? new KafkaCluster(opts) : new Cluster(opts)
}

module.exports = { Cluster, KafkaCluster, newCluster, target }
