'use strict'
// A local three-node cluster for a kafkajs test file, started with `samsa cluster up`
// (docs/cli.md, "Local cluster") in a fresh temporary dir on a random base port below the
// ephemeral range (another one if a port is taken). Node I serves clients on
// base + 10*(I-1). As the Java and Go cluster tests do it: the nodes run detached, in their
// own sessions, so close() (also run at process exit and by the watchdog) runs
// `cluster down --purge` and then SIGKILLs any node still listed in DIR/pids.

const assert = require('node:assert/strict')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const SERVER = process.env.SAMSA_SERVER
const CLI = process.env.SAMSA_CLI || (SERVER && path.join(path.dirname(SERVER), 'tools', 'samsa'))
const UP_TIMEOUT_MS = 60000
const DOWN_TIMEOUT_MS = 40000

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

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
    try {
      const f = path.join(this.dir, `node${node}`, 'server.log')
      return fs.readFileSync(f, 'utf8').trimEnd().split('\n').slice(-n).join('\n')
    } catch (e) {
      return `(no log: ${e.message})`
    }
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

module.exports = { Cluster }
