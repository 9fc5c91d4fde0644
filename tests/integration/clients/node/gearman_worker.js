'use strict'
// A worker built on the npm package `gearman` 2.x (mreinstein/node-gearman,
// a thin layer over the raw packets) for the compat tests.
//
// usage: node gearman_worker.js HOST PORT PREFIX [grab|grabuniq]
// Registers PREFIX_<name> for:
//   rev       reverse the workload
//   echo      return the workload unchanged
//   slowrev   wait 0.4 s, then reverse
//   seq       "<n>:<workload>", n counting the jobs this process ran
//   urev      wait 0.4 s, then "<unique>:<reversed>" (the unique comes with
//             JOB_ASSIGN_UNIQ, so only meaningful with grabuniq)
//   progress  WORK_STATUS 1/2, WORK_DATA part1, WORK_WARNING warn1,
//             WORK_STATUS 2/2, then WORK_COMPLETE with the reversed workload
//   gated     WORK_STATUS 1/2, wait (<= 20 s) until the file named by the
//             workload exists, then complete with "released"
//   fail      sendWorkFail
//   exc       sendWorkException "boom: <workload>"
//   tmo       registered with addFunction(name, 5000): the library sends
//             CAN_DO_TIMEOUT with the timeout as 4 binary bytes; reverses
const fs = require('fs')
const gearman = require('gearman')

const [host, port, prefix, grabMode = 'grab'] = process.argv.slice(2)
const worker = gearman(host, Number(port))
let counter = 0

const reverse = (buf) => Buffer.from(buf).reverse()

const functions = {
  rev: (job, done) => done(reverse(job.payload)),
  echo: (job, done) => done(job.payload),
  slowrev: (job, done) => setTimeout(() => done(reverse(job.payload)), 400),
  seq: (job, done) => done(`${++counter}:${job.payload.toString()}`),
  urev: (job, done) => setTimeout(
    () => done(`${job.unique_id}:${reverse(job.payload).toString()}`), 400),
  progress: (job, done) => {
    worker.sendWorkStatus(job.handle, '1', '2')
    worker.sendWorkData(job.handle, 'part1')
    worker.sendWorkWarning(job.handle, 'warn1')
    worker.sendWorkStatus(job.handle, '2', '2')
    done(reverse(job.payload))
  },
  gated: (job, done) => {
    worker.sendWorkStatus(job.handle, '1', '2')
    const path = job.payload.toString()
    const deadline = Date.now() + 20000
    const poll = () => {
      if (fs.existsSync(path) || Date.now() > deadline) done('released')
      else setTimeout(poll, 20)
    }
    poll()
  },
  fail: (job, done) => { worker.sendWorkFail(job.handle); done(null) },
  exc: (job, done) => {
    worker.sendWorkException(job.handle, 'boom: ' + job.payload.toString())
    done(null)
  },
  tmo: (job, done) => done(reverse(job.payload)),
}

function run(job) {
  const name = job.func_name.slice(prefix.length + 1)
  functions[name](job, (result) => {
    if (result !== null) worker.sendWorkComplete(job.handle, result)
    worker.preSleep()
  })
}

worker.on('JOB_ASSIGN', run)
worker.on('JOB_ASSIGN_UNIQ', run)
worker.on('NOOP', () => (grabMode === 'grabuniq' ? worker.grabUniqueJob() : worker.grabJob()))
worker.on('NO_JOB', () => worker.preSleep())
worker.on('ERROR', (code, text) => console.error('server error', code, text))
worker.on('error', (err) => { console.error('socket error', err); process.exit(2) })
worker.on('close', () => process.exit(0))

worker.connect(() => {
  for (const name of Object.keys(functions)) {
    if (name === 'tmo') worker.addFunction(`${prefix}_${name}`, 5000)
    else worker.addFunction(`${prefix}_${name}`)
  }
  worker.preSleep()
  console.log('worker ready')
})
