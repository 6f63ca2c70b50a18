'use strict'
// The samsa-server of one kafkajs test file (kafkajs.test.js, groups.test.js): started on a
// free loopback port with a temporary data dir, and killed (data dir removed) when the file
// ends, fails, or hangs (watchdog).

const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const SERVER = process.env.SAMSA_SERVER
const CONFIG =
  process.env.SAMSA_CONFIG || path.join(__dirname, '..', '..', '..', 'config', 'server.properties')

// Bounds on start-up (until the broker prints its port) and on a SIGTERM shutdown, after
// which the broker is killed.
const START_TIMEOUT_MS = 15000
const STOP_TIMEOUT_MS = 15000

class Broker {
  // name: the test file's, for its data dir and the watchdog's message; overrides: extra
  // server settings ('key=value'); watchdogMs: how long the file may run in all.
  constructor({ name, overrides = [], watchdogMs }) {
    this.name = name
    this.overrides = overrides
    this.proc = null
    this.port = 0 // 0 until the first start; restarts keep the port
    this.dir = null
    this.stderr = []
    // Whatever happens, the broker does not outlive this process.
    process.on('exit', () => {
      this.kill()
      this.removeDir()
    })
    const watchdog = setTimeout(() => {
      console.error(`FAIL: watchdog: ${name} test file still running after ${watchdogMs / 1000} s`)
      console.error(this.tail())
      this.kill()
      this.removeDir()
      process.exit(2)
    }, watchdogMs)
    watchdog.unref()
  }

  // The last n lines the broker wrote to stderr.
  tail(n = 30) {
    return this.stderr.join('').split('\n').slice(-n).join('\n')
  }

  kill() {
    const proc = this.proc
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      try {
        proc.kill('SIGKILL')
      } catch (_) {}
    }
  }

  removeDir() {
    if (this.dir) {
      fs.rmSync(this.dir, { recursive: true, force: true })
      this.dir = null
    }
  }

  // Starts the broker on this.port (0: a free one) with this.dir as its data dir, so a
  // restart finds the same port and data; resolves once it listens.
  start() {
    assert.ok(SERVER, 'SAMSA_SERVER must point to the samsa-server binary')
    if (!this.dir) this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `samsa-${this.name}-`))
    const port = this.port
    const overrides = [
      `log.dirs=${path.join(this.dir, 'data')}`,
      `listeners=PLAINTEXT://127.0.0.1:${port}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      ...this.overrides,
    ]
    const proc = spawn(SERVER, ['-c', CONFIG, ...overrides.flatMap(o => ['--override', o])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.proc = proc
    proc.stderr.setEncoding('utf8')
    proc.stderr.on('data', d => this.stderr.push(d))
    return new Promise((resolve, reject) => {
      let out = ''
      let done = false
      const timer = setTimeout(
        () => reject(new Error(`broker did not print its port in ${START_TIMEOUT_MS / 1000} s`)),
        START_TIMEOUT_MS)
      proc.stdout.setEncoding('utf8')
      proc.stdout.on('data', d => {
        out += d
        const m = /^samsa-server listening on port (\d+)/m.exec(out)
        if (m && !done) {
          done = true
          if (port) assert.equal(Number(m[1]), port)
          this.port = Number(m[1])
          clearTimeout(timer)
          resolve()
        }
      })
      proc.on('exit', (code, sig) => {
        clearTimeout(timer)
        if (!done) reject(new Error(`broker exited (code ${code}, signal ${sig}):\n${this.tail()}`))
      })
    })
  }

  // Stops the broker with SIGTERM; resolves to how it exited ({ code, sig }), or undefined
  // if it was not running.
  async stop() {
    const proc = this.proc
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise(resolve => proc.once('exit', (code, sig) => resolve({ code, sig })))
    proc.kill('SIGTERM')
    const t = setTimeout(() => this.kill(), STOP_TIMEOUT_MS)
    const r = await exited
    clearTimeout(t)
    return r
  }

  // Stops the broker for good at the end of the file and removes its data dir; a broker
  // that was still running must exit cleanly on SIGTERM.
  async close() {
    const r = await this.stop()
    this.removeDir()
    if (r) assert.equal(r.code, 0, `broker exited with ${r.code}/${r.sig} on SIGTERM`)
  }

  // Runs fn, adding the broker's stderr tail to the message of whatever it throws.
  async withLog(fn) {
    try {
      return await fn()
    } catch (e) {
      e.message += `\n---- broker stderr (last lines) ----\n${this.tail()}`
      throw e
    }
  }
}

module.exports = { Broker }
