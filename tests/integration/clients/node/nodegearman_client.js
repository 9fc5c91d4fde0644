'use strict'
// A client built on the npm package `node-gearman` 0.2.x for the compat
// tests. Prints one JSON object on its last line.
//
// usage: node nodegearman_client.js HOST PORT MODE FUNC [ARG...]
//   fg FUNC DATA             submitJob, collect 'data' until 'end'
//   chunks FUNC [DATA]       WORK_DATA chunks then WORK_COMPLETE
//   bg FUNC DATA             background submission (fire and forget)
//   priority FUNC            low, normal, high foreground jobs
//   unique FUNC UNIQ D1 D2   the same uniq from two connections
//   multi FUNC N             N foreground jobs in flight at once
//   clients FUNC N           N connections, one foreground job each, at once
//   big FUNC SIZE            a SIZE-byte workload through an echo worker
//   fail FUNC                a job whose worker calls error() (WORK_FAIL)
const crypto = require('crypto')
const Gearman = require('node-gearman')

const [host, port, mode, func, ...args] = process.argv.slice(2)
const connections = []
function connection() {
  const g = new Gearman(host, Number(port))
  g.on('error', (err) => { console.error('socket error', err); process.exit(2) })
  connections.push(g)
  return g
}
setTimeout(() => { console.error('client timed out'); process.exit(3) }, 60000).unref()

// Resolves with {chunks, error} once the job ends or fails.
function run(gearman, data, uniq, options) {
  return new Promise((resolve) => {
    const job = gearman.submitJob(func, data, uniq, options)
    const chunks = []
    job.on('data', (d) => chunks.push(Buffer.from(d)))
    job.on('end', () => resolve({ chunks, error: null, handle: job.handle }))
    job.on('error', (e) => resolve({ chunks, error: e.message, handle: job.handle }))
  })
}
const text = (r) => Buffer.concat(r.chunks).toString()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main() {
  const gearman = connection()
  let out = {}
  if (mode === 'fg') {
    const r = await run(gearman, args[0])
    out = { result: text(r), error: r.error, handle: r.handle }
  } else if (mode === 'chunks') {
    const r = await run(gearman, args[0] || 'x')
    out = { chunks: r.chunks.map(String), error: r.error }
  } else if (mode === 'bg') {
    gearman.submitJob(func, args[0], false, { background: true })
    await sleep(300)   // the library gives no acknowledgement for a bg job
    out = { submitted: true }
  } else if (mode === 'priority') {
    const results = await Promise.all([
      run(gearman, 'low', false, { priority: 'low' }),
      run(gearman, 'normal', false, {}),
      run(gearman, 'high', false, { priority: 'high' }),
    ])
    out = { results: results.map(text), errors: results.map((r) => r.error) }
  } else if (mode === 'unique') {
    const [uniq, first, second] = args
    const results = await Promise.all([run(gearman, first, uniq), run(connection(), second, uniq)])
    out = { results: results.map(text), handles: results.map((r) => r.handle) }
  } else if (mode === 'multi') {
    const n = Number(args[0])
    const results = await Promise.all([...Array(n).keys()].map((i) => run(gearman, `job-${i}`)))
    out = { results: results.map(text), handles: new Set(results.map((r) => r.handle)).size,
            errors: results.filter((r) => r.error).length }
  } else if (mode === 'clients') {
    const n = Number(args[0])
    const results = await Promise.all([...Array(n).keys()].map(
      (i) => run(i ? connection() : gearman, `client-${i}`)))
    out = { results: results.map(text), errors: results.filter((r) => r.error).length }
  } else if (mode === 'big') {
    const size = Number(args[0])
    const payload = Buffer.alloc(size)
    for (let i = 0; i < size; i++) payload[i] = '0123456789abcdef'.charCodeAt(i % 16)
    const r = await run(gearman, payload)
    const result = Buffer.concat(r.chunks)
    out = { size: result.length, error: r.error,
            same: crypto.createHash('sha256').update(result).digest('hex') ===
              crypto.createHash('sha256').update(payload).digest('hex') }
  } else if (mode === 'fail') {
    const r = await run(gearman, 'payload')
    out = { result: text(r), error: r.error }
  } else {
    console.error('unknown mode', mode)
    process.exit(2)
  }
  console.log(JSON.stringify(out))
  process.exit(0)
}

main().catch((e) => { console.error(e); process.exit(2) })
