"use strict"
/**
 * Exercise every command against a running engine and print one JSON line per step:
 *   {"step": NAME, "result": ...}  or  {"step": NAME, "error": {"name", "code", "message"}}
 *
 * Usage: node smoke.js CONTROL_ENDPOINT [DEAD_ENDPOINT]
 * DEAD_ENDPOINT (nothing listening) checks that a call times out with ControlTimeout.
 * tests/test_node_client.py runs this against a real server and checks each line.
 */

const { Client } = require("./index.js")

async function step(name, action) {
  let line
  try {
    line = { step: name, result: await action() }
  } catch (error) {
    line = { step: name, error: { name: error.name, code: error.code, message: error.message } }
  }
  console.log(JSON.stringify(line))
}

async function main() {
  const [endpoint, deadEndpoint] = process.argv.slice(2)
  if (!endpoint) {
    console.error("usage: node smoke.js CONTROL_ENDPOINT [DEAD_ENDPOINT]")
    process.exit(2)
  }
  const ctl = new Client(endpoint, { timeoutMs: 2000, retries: 1 })
  await step("ping", () => ctl.ping())
  await step("list_labels", () => ctl.listLabels())
  await step("set_cues", () => ctl.setCues(["speech", "a dog barking"]))
  await step("set_mode", () => ctl.setMode("remove"))
  await step("set_gain", () => ctl.setGain(1, -6))
  await step("mute", () => ctl.mute(2))
  await step("solo", () => ctl.solo(1))
  await step("status", () => ctl.status())
  await step("stats", () => ctl.stats())
  await step("reset_stats", () => ctl.resetStats())
  await step("unknown_command", () => ctl.call("explode"))
  await step("bad_args", () => ctl.setGain(99, 0))
  await step("watch_status", async () => {
    for await (const [topic, message] of ctl.watch(["status"], { timeoutMs: 3000 })) {
      return { topic, mode: message.data.mode, seq: message.seq }
    }
  })
  if (deadEndpoint) {
    const dead = new Client(deadEndpoint, { timeoutMs: 200, retries: 1 })
    await step("timeout", () => dead.ping())
    dead.close()
  }
  ctl.close()
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
