'use strict'
// A worker built on the npm package `node-gearman` 0.2.x (andris9) for the
// compat tests.
//
// usage: node nodegearman_worker.js HOST PORT PREFIX [RECORD_FILE]
// Registers PREFIX_<name> for:
//   rev       reverse the workload
//   echo      return the workload unchanged
//   slowrev   wait 0.4 s, then reverse
//   seq       "<n>:<workload>", n counting the jobs this process ran
//   chunks    worker.write() "part1", "part2" (WORK_DATA), then end("done")
//   stream    worker.write() "c0;" ... "c<n-1>;" for n = the workload, then
//             end("END"), all in one go
//   fail      worker.error() (WORK_FAIL)
//   record    append the workload as hex (one line) to RECORD_FILE, end()
const fs = require('fs')
const Gearman = require('node-gearman')

const [host, port, prefix, recordFile] = process.argv.slice(2)
const gearman = new Gearman(host, Number(port))
let counter = 0

const reverse = (buf) => Buffer.from(buf || []).reverse()

const functions = {
  rev: (payload, worker) => worker.end(reverse(payload)),
  echo: (payload, worker) => worker.end(payload),
  slowrev: (payload, worker) => setTimeout(() => worker.end(reverse(payload)), 400),
  seq: (payload, worker) => worker.end(`${++counter}:${payload.toString()}`),
  chunks: (payload, worker) => {
    worker.write('part1')
    worker.write('part2')
    worker.end('done')
  },
  stream: (payload, worker) => {
    for (let i = 0; i < Number(payload.toString()); i++) worker.write(`c${i};`)
    worker.end('END')
  },
  fail: (payload, worker) => worker.error(),
  record: (payload, worker) => {
    fs.appendFileSync(recordFile, Buffer.from(payload || []).toString('hex') + '\n')
    worker.end('')
  },
}

gearman.on('error', (err) => { console.error('socket error', err); process.exit(2) })
gearman.on('close', () => process.exit(0))
gearman.on('connect', () => console.log('worker ready'))
for (const [name, fn] of Object.entries(functions)) {
  gearman.registerWorker(`${prefix}_${name}`, fn)
}
gearman.connect()
