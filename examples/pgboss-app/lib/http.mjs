// HTTP API: POST /api/import, POST /api/evaluations, GET /api/admin/pgboss-status, GET /api/health,
// GET /api/flags, POST /api/admin/crash. JSON in, JSON out.
import { createServer } from 'node:http'

class HttpError extends Error {
  constructor (status, message) { super(message); this.status = status }
}

async function readJson (req) {
  let size = 0
  const chunks = []
  for await (const chunk of req) {
    size += chunk.length
    if (size > 65536) throw new HttpError(413, 'body larger than 64 KB')
    chunks.push(chunk)
  }
  if (!size) return {}
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object')
    return body
  } catch (err) {
    throw new HttpError(400, `body must be a JSON object (${err.message})`)
  }
}

function requireString (body, name) {
  const v = body[name]
  if (typeof v !== 'string' || !v.trim()) throw new HttpError(400, `"${name}" (a non-empty string) is required`)
  return v
}

function optionalKey (body) {
  if (body.key === undefined) return undefined
  if (typeof body.key !== 'string' || !body.key || body.key.length > 200) throw new HttpError(400, '"key" must be a string of 1-200 characters')
  return body.key
}

export function buildServer (app) {
  const routes = {
    'POST /api/import': async (req) => {
      const body = await readJson(req)
      return app.manager.create('import-article', { url: requireString(body, 'url') }, optionalKey(body))
    },
    'POST /api/evaluations': async (req) => {
      const body = await readJson(req)
      const payload = { evaluationId: requireString(body, 'evaluationId'), agentId: requireString(body, 'agentId') }
      return app.manager.create('evaluation', payload, optionalKey(body))
    },
    'GET /api/admin/pgboss-status': () => app.status(),
    'GET /api/health': () => app.health(),
    'GET /api/flags': () => app.flags.describe(),
    'POST /api/admin/crash': () => {
      setTimeout(() => app.faults.crash('POST /api/admin/crash'), 50)
      return { crashing: true, pid: process.pid }
    }
  }
  return createServer(async (req, res) => {
    const path = (req.url || '/').split('?')[0]
    const handler = routes[`${req.method} ${path}`]
    let status = 200
    let payload
    try {
      if (!handler) {
        const known = Object.keys(routes).some((r) => r.endsWith(` ${path}`))
        throw new HttpError(known ? 405 : 404, known ? `${req.method} not allowed on ${path}` : `no route ${path}`)
      }
      payload = await handler(req)
    } catch (err) {
      status = err.status ?? 500
      payload = { error: err.message }
      if (status === 500) app.log(`${req.method} ${path} failed: ${err.stack ?? err.message}`)
    }
    const text = JSON.stringify(payload)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  })
}
