'use strict'
// Independent SPDY/3.1 (npm spdy's spdy-transport) and WebSocket (npm ws) clients for Hull's
// streaming server. Usage: node client.js '<json spec>'; prints one JSON result line.
// spec: { proto: "spdy"|"ws"|"ws-spdy", kind: "exec"|"portforward", url, protocols: [..], method, portCount,
//         stdin: "text"|null, stdout, stderr, tty, resize: [{Width,Height}], port, payload, writeAfterEnd }
// proto "ws-spdy" is SPDY tunnelled through a WebSocket (subprotocol "SPDY/3.1+<protocol>"), as kubectl 1.31+
// port-forwards; it uses npm websocket-driver, since ws (like every WHATWG client) refuses '/' in a subprotocol name. writeAfterEnd: bytes to keep writing on the data stream after the server ended it; the result
// says whether the server then reset the stream (reset: true) instead of leaving the writer stalled.
const net = require('net')
const { Duplex } = require('stream')
const transport = require('spdy-transport')
const WebSocket = require('ws')
const websocketDriver = require('websocket-driver')

const spec = JSON.parse(process.argv[2])
if (spec.stdinRepeat) spec.stdin = spec.stdin.repeat(spec.stdinRepeat)
const result = { stdout: '', stderr: '', error: '', data: '' }
let done = false
function finish (extra) {
  if (done) return
  done = true
  Object.assign(result, extra || {})
  // exit only once the pipe took everything: large outputs are written asynchronously
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
}
setTimeout(() => finish({ timeout: true }), spec.timeoutMs || 15000)

function spdyUpgrade (cb) {
  const u = new URL(spec.url)
  const socket = net.connect(Number(u.port), u.hostname, () => {
    let req = `${spec.method || 'POST'} ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
      'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n'
    for (const p of spec.protocols) req += `X-Stream-Protocol-Version: ${p}\r\n`
    socket.write(req + 'Content-Length: 0\r\n\r\n')
  })
  let buf = Buffer.alloc(0)
  function onData (chunk) {
    buf = Buffer.concat([buf, chunk])
    const end = buf.indexOf('\r\n\r\n')
    if (end < 0) return
    socket.removeListener('data', onData)
    const head = buf.slice(0, end).toString('latin1').split('\r\n')
    const status = Number(head[0].split(' ')[1])
    const headers = {}
    for (const line of head.slice(1)) {
      const i = line.indexOf(':')
      const k = line.slice(0, i).trim().toLowerCase()
      headers[k] = (headers[k] ? headers[k] + ', ' : '') + line.slice(i + 1).trim()
    }
    const rest = buf.slice(end + 4)
    if (status !== 101) {
      let body = rest.toString()
      socket.on('data', d => { body += d.toString() })
      socket.on('end', () => finish({ status, headers, body }))
      setTimeout(() => finish({ status, headers, body }), 500)
      return
    }
    result.status = status
    result.protocol = headers['x-stream-protocol-version']
    socket.pause()
    if (rest.length) socket.unshift(rest)
    const conn = transport.connection.create(socket, { protocol: 'spdy', isServer: false })
    conn.start(3.1)
    cb(conn, socket)
  }
  socket.on('data', onData)
  socket.on('error', e => finish({ socketError: String(e) }))
}

function open (conn, headers) {
  return new Promise((resolve, reject) => {
    const s = conn.request({ method: 'POST', path: '/', host: 'hull', headers }, err => err ? reject(err) : resolve(s))
    s.on('error', e => { result.streamError = String(e) })
  })
}

function collect (stream, key) {
  return new Promise(resolve => {
    stream.on('data', d => { result[key] += d.toString() })
    stream.on('end', resolve)
    stream.on('close', resolve)
    stream.resume()
  })
}

function exitCodeFrom (errorText) {
  if (!errorText) return 0
  try {
    const st = JSON.parse(errorText)
    if (st.status === 'Success') return 0
    if (st.reason === 'NonZeroExitCode') return Number(st.details.causes.find(c => c.reason === 'ExitCode').message)
  } catch (e) {}
  return -1
}

async function spdyExec (conn, socket) {
  const error = await open(conn, { streamtype: 'error' })
  error.end()
  const stdin = spec.stdin != null ? await open(conn, { streamtype: 'stdin' }) : null
  const stdout = spec.stdout !== false ? await open(conn, { streamtype: 'stdout' }) : null
  const stderr = spec.stderr && !spec.tty ? await open(conn, { streamtype: 'stderr' }) : null
  const resize = spec.tty ? await open(conn, { streamtype: 'resize' }) : null
  const waits = [collect(error, 'error')]
  if (stdout) waits.push(collect(stdout, 'stdout'))
  if (stderr) waits.push(collect(stderr, 'stderr'))
  if (resize) for (const r of spec.resize || []) resize.write(JSON.stringify(r))
  if (stdin) {
    if (spec.stdin.length) stdin.write(spec.stdin)
    if (!spec.keepStdinOpen) stdin.end()
  }
  if (spec.disconnectAfterMs) {
    setTimeout(() => { socket.destroy(); finish({ disconnected: true }) }, spec.disconnectAfterMs)
    return
  }
  await Promise.all(waits)
  finish({ exitCode: exitCodeFrom(result.error) })
}

async function spdyPortForward (conn) {
  const error = await open(conn, { streamtype: 'error', port: String(spec.port), requestid: '0' })
  error.end()
  const data = await open(conn, { streamtype: 'data', port: String(spec.port), requestid: '0' })
  const waits = [collect(error, 'error'), collect(data, 'data')]
  data.write(spec.payload)
  await Promise.all(waits)
  if (spec.writeAfterEnd) {
    // The server ended its side; whatever we still send must not hang on flow control.
    const closed = new Promise(resolve => { data.on('close', resolve); data.on('error', resolve) })
    data.write(Buffer.alloc(spec.writeAfterEnd, 120))
    result.reset = await Promise.race([closed.then(() => true), new Promise(resolve => setTimeout(() => resolve(false), 5000))])
  }
  finish({})
}

function wsOpen (protocols) {
  const u = new URL(spec.url)
  u.protocol = 'ws:'
  const ws = new WebSocket(u.toString(), protocols)
  ws.on('unexpected-response', (req, res) => {
    let body = ''
    res.on('data', d => { body += d })
    res.on('end', () => finish({ status: res.statusCode, headers: res.headers, body }))
  })
  ws.on('error', e => { result.wsError = String(e) })
  return ws
}

function wsSpdyRun () {
  const u = new URL(spec.url)
  u.protocol = 'ws:'
  const driver = websocketDriver.client(u.toString(), { protocols: spec.protocols.map(p => 'SPDY/3.1+' + p) })
  const socket = net.connect(Number(u.port), u.hostname, () => driver.start())
  socket.pipe(driver.io)
  driver.io.pipe(socket)
  socket.on('error', e => finish({ socketError: String(e) }))
  driver.on('error', e => finish({ wsError: String(e) })) // a refused upgrade: "Unexpected response code: 403"
  driver.on('open', () => {
    result.status = 101
    result.protocol = driver.protocol
    // The tunnel as client-go's TunnelingConnection: each write one binary message, messages read as one byte stream.
    const tunnel = new Duplex({
      write (chunk, encoding, done) { driver.binary(chunk); done() },
      read () {}
    })
    driver.messages.on('data', m => tunnel.push(Buffer.isBuffer(m) ? m : Buffer.from(m)))
    driver.on('close', () => tunnel.push(null))
    const conn = transport.connection.create(tunnel, { protocol: 'spdy', isServer: false })
    conn.start(3.1)
    spdyPortForward(conn).catch(e => finish({ exception: String(e) }))
  })
}

function wsRun () {
  const ws = wsOpen(spec.protocols)
  const base64 = (ws.protocol || '').includes('base64')
  const seen = {}
  const portBuf = {}
  ws.on('open', () => {
    result.status = 101
    result.protocol = ws.protocol
    const send = (ch, data) => base64 ? ws.send(String(ch) + Buffer.from(data).toString('base64')) : ws.send(Buffer.concat([Buffer.from([ch]), Buffer.from(data)]))
    if (spec.kind === 'portforward') {
      // one data channel (2i) and one error channel (2i+1) per port
      for (let i = 0; i < (spec.portCount || 1); i++) send(2 * i, spec.payload)
      return
    }
    for (const r of spec.resize || []) send(4, JSON.stringify(r))
    if (spec.stdin != null) {
      if (spec.stdin.length) send(0, spec.stdin)
      if (ws.protocol === 'v5.channel.k8s.io' && !spec.keepStdinOpen) ws.send(Buffer.from([255, 0]))
    }
    if (spec.disconnectAfterMs) setTimeout(() => { ws.terminate(); finish({ disconnected: true }) }, spec.disconnectAfterMs)
  })
  ws.on('message', (msg, isBinary) => {
    let ch, data
    if (isBinary) { ch = msg[0]; data = msg.slice(1) } else { const s = msg.toString(); ch = s.charCodeAt(0) - 48; data = Buffer.from(s.slice(1), 'base64') }
    if (spec.kind === 'portforward') {
      if (!seen[ch]) { // the first two bytes of each channel are the port, little-endian
        portBuf[ch] = Buffer.concat([portBuf[ch] || Buffer.alloc(0), data])
        if (portBuf[ch].length < 2) return
        seen[ch] = true
        result['port' + ch] = portBuf[ch].readUInt16LE(0)
        data = portBuf[ch].slice(2)
      }
      const key = (ch % 2 === 0 ? 'data' : 'error') + (ch < 2 ? '' : Math.floor(ch / 2))
      result[key] = (result[key] || '') + data.toString()
      return
    }
    if (ch === 1) result.stdout += data.toString()
    if (ch === 2) result.stderr += data.toString()
    if (ch === 3) result.error += data.toString()
  })
  ws.on('close', () => finish(spec.kind === 'portforward' ? {} : { exitCode: exitCodeFrom(result.error) }))
}

if (spec.proto === 'ws') wsRun()
else if (spec.proto === 'ws-spdy') wsSpdyRun()
else spdyUpgrade((conn, socket) => (spec.kind === 'portforward' ? spdyPortForward(conn) : spdyExec(conn, socket)).catch(e => finish({ exception: String(e) })))
