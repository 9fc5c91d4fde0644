'use strict'
// A client built on the npm package `gearman` 2.x for the compat tests.
// Prints one JSON object on its last line.
//
// usage: node gearman_client.js HOST PORT MODE FUNC [ARG...]
//   fg FUNC DATA             submitJob, wait for WORK_COMPLETE
//   progress FUNC DATA       every WORK_* event of one foreground job
//   bgstatus FUNC RELEASE    background job polled with getJobStatus
//   bgunique FUNC UNIQ RELEASE  background job with a unique_id, polled
//                            with getJobStatusUnique
//   attach FUNC UNIQ RELEASE a background job with a unique_id; once it
//                            runs, a foreground submission with the same
//                            unique_id attaches to it and gets its result
//   priority FUNC            low, normal, high foreground jobs
//   unique FUNC UNIQ D1 D2   two submissions with the same unique_id
//   multi FUNC N             N foreground jobs in flight at once
//   big FUNC SIZE            a SIZE-byte workload through an echo worker
//   fail FUNC                a job whose worker sends WORK_FAIL
//   exc FUNC [exceptions]    a job whose worker sends WORK_EXCEPTION;
//                            with "exceptions" setOption('exceptions') first
//   admin FUNC               echo, adminStatus, adminWorkers, adminDropFunction
//   abilities FUNC           this connection registers FUNC_a, FUNC_b, FUNC_c,
//                            then removeFunction(FUNC_b), then resetAbilities;
//                            adminStatus worker counts after each step
const crypto = require('crypto')
const gearman = require('gearman')

const [host, port, mode, func, ...args] = process.argv.slice(2)
const client = gearman(host, Number(port))
const TIMEOUT = 20000

function finish(out) {
  console.log(JSON.stringify(out))
  process.exit(0)
}
setTimeout(() => { console.error('client timed out'); process.exit(3) }, 60000).unref()
client.on('error', (err) => { console.error('socket error', err); process.exit(2) })

// JOB_CREATED carries no reference to the submission: handles come back in
// submission order, so a FIFO of waiters pairs them up.
const created = []
client.on('JOB_CREATED', (handle) => created.shift()(handle))
const submit = (data, options = {}) => new Promise((resolve) => {
  created.push(resolve)
  client.submitJob(func, data, options)
})
const nextEvent = (name) => new Promise((resolve) => {
  const listener = (ev) => { client.removeEventListener(name, listener); resolve(ev) }
  client.on(name, listener)
})
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function status(handle) {
  const reply = nextEvent('STATUS_RES')
  client.getJobStatus(handle)
  const st = await reply
  // the library reads the denominator with a 1-byte read: '2' -> 50
  return [st.known, st.running, st.percent_done_num, st.percent_done_den]
}

async function main() {
  const out = {}
  if (mode === 'fg') {
    const done = nextEvent('WORK_COMPLETE')
    out.created = await submit(args[0])
    const ev = await done
    out.handle = ev.handle
    out.result = ev.payload.toString()
  } else if (mode === 'progress') {
    const events = []
    for (const name of ['WORK_STATUS', 'WORK_DATA', 'WORK_WARNING']) {
      client.on(name, (ev) => events.push([name, ev.percent_num || (ev.payload || ev.warning).toString(),
                                         ev.percent_den || null]))
    }
    const done = nextEvent('WORK_COMPLETE')
    out.created = await submit(args[0])
    out.result = (await done).payload.toString()
    out.events = events
  } else if (mode === 'bgstatus') {
    out.created = await submit(args[0], { background: true })
    const deadline = Date.now() + TIMEOUT
    let st = await status(out.created)
    while (JSON.stringify(st) !== '["1","1","1",50]' && Date.now() < deadline) {
      await sleep(20)
      st = await status(out.created)
    }
    out.running = st
    require('fs').writeFileSync(args[0], '')
    while (st[0] === '1' && Date.now() < deadline) {
      await sleep(20)
      st = await status(out.created)
    }
    out.finished = st
  } else if (mode === 'bgunique') {
    const [uniq, release] = args
    const statusUnique = async () => {
      const reply = nextEvent('STATUS_RES_UNIQUE')
      client.getJobStatusUnique(uniq)
      const st = await reply
      // parsed with the STATUS_RES format: the 5th field is read as one byte
      return [st.unique_id, st.known, st.running, st.percent_done_num, st.percent_done_den]
    }
    out.created = await submit(release, { background: true, unique_id: uniq })
    const deadline = Date.now() + TIMEOUT
    let st = await statusUnique()
    while (st[3] !== '1' && Date.now() < deadline) {
      await sleep(20)
      st = await statusUnique()
    }
    out.running = st
    require('fs').writeFileSync(release, '')
    while (st[1] === '1' && Date.now() < deadline) {
      await sleep(20)
      st = await statusUnique()
    }
    out.finished = st
  } else if (mode === 'attach') {
    const [uniq, release] = args
    out.bg = await submit(release, { background: true, unique_id: uniq })
    const deadline = Date.now() + TIMEOUT
    let st = await status(out.bg)
    while (st[2] !== '1' && Date.now() < deadline) {
      await sleep(20)
      st = await status(out.bg)
    }
    const events = []
    for (const name of ['WORK_STATUS', 'WORK_COMPLETE', 'WORK_FAIL']) {
      client.on(name, (ev) => events.push([name, ev.handle, ev.payload ? ev.payload.toString() : null]))
    }
    out.fg = await submit('ignored', { unique_id: uniq })
    require('fs').writeFileSync(release, '')
    while (events.length < 1 && Date.now() < deadline) await sleep(20)
    await sleep(200)
    out.events = events
  } else if (mode === 'priority') {
    const byHandle = {}
    const results = {}
    client.on('WORK_COMPLETE', (ev) => { results[byHandle[ev.handle]] = ev.payload.toString() })
    for (const [priority, data] of [['low', 'low'], ['normal', 'normal'], ['high', 'high']]) {
      byHandle[await submit(data, { priority })] = data
    }
    while (Object.keys(results).length < 3) await sleep(20)
    out.results = results
  } else if (mode === 'unique') {
    const [uniq, first, second] = args
    const completions = []
    client.on('WORK_COMPLETE', (ev) => completions.push([ev.handle, ev.payload.toString()]))
    out.handles = [await submit(first, { unique_id: uniq }), await submit(second, { unique_id: uniq })]
    while (completions.length < 2) await sleep(20)
    await sleep(200)   // a third completion would be a bug
    out.completions = completions
  } else if (mode === 'multi') {
    const n = Number(args[0])
    const results = {}
    client.on('WORK_COMPLETE', (ev) => { results[ev.handle] = ev.payload.toString() })
    const handles = await Promise.all([...Array(n).keys()].map((i) => submit(`job-${i}`)))
    while (Object.keys(results).length < n) await sleep(20)
    out.handles = new Set(handles).size
    out.results = handles.map((h) => results[h]).sort()
  } else if (mode === 'big') {
    const size = Number(args[0])
    const payload = Buffer.alloc(size)
    for (let i = 0; i < size; i++) payload[i] = '0123456789abcdef'.charCodeAt(i % 16)
    const done = nextEvent('WORK_COMPLETE')
    await submit(payload)
    const result = (await done).payload
    out.size = result.length
    out.same = crypto.createHash('sha256').update(result).digest('hex') ===
      crypto.createHash('sha256').update(payload).digest('hex')
  } else if (mode === 'fail') {
    const failed = nextEvent('WORK_FAIL')
    out.created = await submit('payload')
    out.fail_handle = (await failed).handle
  } else if (mode === 'exc') {
    if (args[0] === 'exceptions') {
      const opt = nextEvent('OPTION_RES')
      client.setOption('exceptions')
      out.option = (await opt).option_name
    }
    const events = []
    client.on('WORK_EXCEPTION', (ev) => events.push(['WORK_EXCEPTION', ev.handle, ev.exception]))
    client.on('WORK_FAIL', (ev) => events.push(['WORK_FAIL', ev.handle]))
    out.created = await submit('payload')
    while (events.length < 1) await sleep(20)
    await sleep(200)
    out.events = events
  } else if (mode === 'admin') {
    const echoed = nextEvent('ECHO_RES')
    client.echo('ping')
    out.echo = (await echoed).toString()
    const st = await new Promise((resolve) => client.adminStatus(resolve))
    out.status = st[func] || null
    out.status_has_dot = '.' in st
    const workers = await new Promise((resolve) => client.adminWorkers(resolve))
    out.workers = workers.filter((w) => w.functions.includes(func))
      .map((w) => ({ id: w.id, functions: w.functions.slice().sort() }))
    const dropBusy = await new Promise((resolve) => client.adminDropFunction(func, resolve))
    out.drop_busy = dropBusy && dropBusy.message
    const dropUnknown = await new Promise((resolve) => client.adminDropFunction(func + '_nope', resolve))
    out.drop_unknown = dropUnknown && dropUnknown.message
  } else if (mode === 'abilities') {
    const names = ['a', 'b', 'c'].map((n) => `${func}_${n}`)
    const counts = async (want) => {
      // registrations take effect asynchronously (another connection asks)
      let st = {}
      for (const deadline = Date.now() + TIMEOUT; Date.now() < deadline; await sleep(20)) {
        st = await new Promise((resolve) => client.adminStatus(resolve))
        if (names.map((n) => (st[n] ? st[n].available_workers : null)).join() === want.join()) break
      }
      return names.map((n) => (st[n] ? st[n].available_workers : null))
    }
    names.forEach((n) => client.addFunction(n))
    out.registered = await counts([1, 1, 1])
    client.removeFunction(names[1])
    out.cant_do = await counts([1, 0, 1])
    client.resetAbilities()
    out.reset = await counts([0, 0, 0])
  } else {
    console.error('unknown mode', mode)
    process.exit(2)
  }
  finish(out)
}

client.connect(() => { main().catch((e) => { console.error(e); process.exit(2) }) })
