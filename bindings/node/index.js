"use strict"
/**
 * Node.js client of the rtsep control protocol, version 1 (spec: docs/protocol.md).
 *
 *   const { Client } = require("rtsep-client")
 *   const ctl = new Client("tcp://127.0.0.1:5570", { timeoutMs: 2000, retries: 2 })
 *   await ctl.setCues(["speech", "a dog barking"])
 *   console.log((await ctl.status()).outputs)
 *   for await (const [topic, message] of ctl.watch(["levels"])) console.log(message.data)
 *   ctl.close()
 *
 * Commands go over a DEALER socket with a timeout and Lazy-Pirate retries (on a timeout the
 * socket is closed and the request re-sent on a fresh one; every command is idempotent).
 * A refused command rejects with ControlError (.code, .message); no reply after every retry
 * rejects with ControlTimeout. One call at a time per Client.
 */

const zmq = require("zeromq")

const PROTOCOL_VERSION = 1
const DEFAULT_ENDPOINT = "tcp://127.0.0.1:5570"
const TOPICS = ["status", "levels", "sources", "applied", "overload"]

class ControlError extends Error {
  constructor(code, message, id = null) {
    super(`${code}: ${message}`)
    this.name = "ControlError"
    this.code = code
    this.id = id
  }
}

class ControlTimeout extends Error {
  constructor(message) {
    super(message)
    this.name = "ControlTimeout"
  }
}

function isTimeout(error) {
  return error && error.code === "EAGAIN"
}

class Client {
  /**
   * @param {string} endpoint command endpoint of the engine
   * @param {object} options timeoutMs (per attempt), retries (re-sends after a timeout),
   *   telemetryEndpoint (default: the one `status` names), curve ({publicKey, secretKey,
   *   serverKey}, Z85 strings) when the server uses CURVE
   */
  constructor(endpoint = DEFAULT_ENDPOINT, options = {}) {
    const { timeoutMs = 2000, retries = 2, telemetryEndpoint = null, curve = null } = options
    if (!(timeoutMs > 0) || !(retries >= 0)) {
      throw new RangeError("timeoutMs must be positive and retries at least 0")
    }
    this.endpoint = endpoint
    this.timeoutMs = timeoutMs
    this.retries = retries
    this.telemetryEndpoint = telemetryEndpoint
    this.curve = curve
    this.socket = null
    this.nextId = 1
  }

  _configure(socket) {
    socket.linger = 0
    if (this.curve) {
      socket.curveServerKey = this.curve.serverKey
      socket.curvePublicKey = this.curve.publicKey
      socket.curveSecretKey = this.curve.secretKey
    }
    if (/^tcp:\/\/\[/.test(this.endpoint)) socket.ipv6 = true
    return socket
  }

  _commandSocket() {
    if (this.socket === null) {
      this.socket = this._configure(new zmq.Dealer({ sendTimeout: this.timeoutMs }))
      this.socket.connect(this.endpoint)
    }
    return this.socket
  }

  _dropCommandSocket() {
    if (this.socket !== null) {
      this.socket.close()
      this.socket = null
    }
  }

  /** Send one command; resolves with its `result`. */
  async call(cmd, args = {}) {
    const id = this.nextId++
    const payload = JSON.stringify({ v: PROTOCOL_VERSION, id, cmd, args })
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      const socket = this._commandSocket()
      try {
        await socket.send(payload)
        const deadline = Date.now() + this.timeoutMs
        for (;;) {
          const remaining = deadline - Date.now()
          if (remaining <= 0) break
          socket.receiveTimeout = remaining
          const frames = await socket.receive()
          const reply = JSON.parse(frames[frames.length - 1].toString("utf8"))
          if (reply.id !== id && reply.id !== null) continue // a stale reply
          if (reply.ok === true) return reply.result
          const error = reply.error || {}
          throw new ControlError(error.code || "internal", error.message || "", reply.id)
        }
      } catch (error) {
        if (!isTimeout(error)) throw error
      }
      this._dropCommandSocket()
    }
    throw new ControlTimeout(
      `no reply from ${this.endpoint} to '${cmd}' after ${this.retries + 1} attempt(s) of ` +
        `${this.timeoutMs} ms: is the engine running with this control endpoint?`,
    )
  }

  ping() { return this.call("ping") }
  status() { return this.call("status") }
  /** cues: array of labels or free text; [] = separate everything. */
  setCues(cues) { return this.call("set_cues", { cues }) }
  /** mode: "separate" | "extract" | "remove". */
  setMode(mode) { return this.call("set_mode", { mode }) }
  /** output: 0-based index; db: gain in dB. */
  setGain(output, db) { return this.call("set_gain", { output, db }) }
  mute(output, on = true) { return this.call("mute", { output, on }) }
  solo(output, on = true) { return this.call("solo", { output, on }) }
  listLabels() { return this.call("list_labels") }
  stats() { return this.call("stats") }
  resetStats() { return this.call("reset_stats") }

  async _resolveTelemetry() {
    if (this.telemetryEndpoint === null) {
      this.telemetryEndpoint = (await this.status()).telemetry
    }
    const wildcard = /^tcp:\/\/(\*|0\.0\.0\.0|\[::\]):(\d+)$/.exec(this.telemetryEndpoint)
    const command = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):/.exec(this.endpoint)
    return wildcard && command ? `tcp://${command[1]}:${wildcard[2]}` : this.telemetryEndpoint
  }

  /**
   * Async generator of [topic, message] telemetry; message.data holds the payload.
   * topics: subset of TOPICS ([] = all). The current status arrives first thing.
   * Rejects with ControlTimeout after timeoutMs without a message (default: wait forever).
   * Stop with `break` in a for-await loop (the socket is closed).
   */
  async *watch(topics = [], { timeoutMs = -1 } = {}) {
    const socket = this._configure(new zmq.Subscriber({ receiveTimeout: timeoutMs }))
    try {
      socket.connect(await this._resolveTelemetry())
      if (topics.length === 0) socket.subscribe()
      else socket.subscribe(...topics)
      for (;;) {
        let frames
        try {
          frames = await socket.receive()
        } catch (error) {
          if (isTimeout(error)) throw new ControlTimeout(`no telemetry for ${timeoutMs} ms`)
          throw error
        }
        const topic = frames[0].toString("ascii")
        if (topics.length === 0 || topics.includes(topic)) {
          yield [topic, JSON.parse(frames[1].toString("utf8"))]
        }
      }
    } finally {
      socket.close()
    }
  }

  /** Close the command socket. */
  close() {
    this._dropCommandSocket()
  }
}

module.exports = {
  Client,
  ControlError,
  ControlTimeout,
  DEFAULT_ENDPOINT,
  PROTOCOL_VERSION,
  TOPICS,
}
