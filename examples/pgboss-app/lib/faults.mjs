// Fault injection, switched by environment or at runtime by flags (flag FAULT_<NAME>, else env
// FAULT_<NAME>, else env <NAME>): FAIL_RATE[_IMPORT|_EVALUATION] (0..1), SLOW_MS[_IMPORT|_EVALUATION],
// LEAK_MB_PER_SEC (retained JS heap, capped by LEAK_MAX_MB), CRASH_AFTER_SECONDS (exit 1 that long after
// the value is first seen). FAULT_SCOPE = pgboss (default) | legacy | all says which workers fail/slow down.

const TYPE_KEYS = { 'import-article': 'IMPORT', evaluation: 'EVALUATION' }
const ELEMENTS_PER_MB = 131072 // 8-byte doubles

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export class InjectedFailure extends Error {}

export class Faults {
  constructor ({ flags, config, log }) {
    this.flags = flags
    this.config = config
    this.log = log
    this.leaked = []
    this.crashAt = null
    this._armedWith = 0
    this._timer = setInterval(() => this._tick(), 250)
    this._timer.unref()
    this._leakTick = Date.now()
  }

  scope () {
    return (this.flags.raw('FAULT_SCOPE') ?? 'pgboss').toLowerCase()
  }

  applies (system) {
    const scope = this.scope()
    return scope === 'all' || scope === system
  }

  failRate (type) {
    return Math.max(this.flags.faultNumber(`FAIL_RATE_${TYPE_KEYS[type]}`), this.flags.faultNumber('FAIL_RATE'))
  }

  slowMs (type) {
    return this.flags.faultNumber(`SLOW_MS_${TYPE_KEYS[type]}`) || this.flags.faultNumber('SLOW_MS')
  }

  /** Do the (simulated) work of one job on `system`; throws InjectedFailure at the configured rate. */
  async work (type, system) {
    const faulty = this.applies(system)
    await sleep(this.config.jobMs + (faulty ? this.slowMs(type) : 0))
    if (faulty && Math.random() < this.failRate(type)) {
      throw new InjectedFailure(`injected failure (${type} on ${system}, rate ${this.failRate(type)})`)
    }
  }

  leakedMb () {
    return this.leaked.length
  }

  crash (reason) {
    this.log(`crashing on purpose: ${reason}`)
    process.exit(1)
  }

  _tick () {
    const now = Date.now()
    const rate = this.flags.faultNumber('LEAK_MB_PER_SEC')
    const cap = this.flags.faultNumber('LEAK_MAX_MB') || 512
    const due = Math.floor((rate * (now - this._leakTick)) / 1000)
    if (rate > 0 && due >= 1) {
      for (let i = 0; i < due && this.leaked.length < cap; i++) {
        this.leaked.push(Array.from({ length: ELEMENTS_PER_MB }, Math.random))
      }
      this._leakTick = now
    } else if (rate <= 0) {
      this._leakTick = now
    }
    const after = this.flags.faultNumber('CRASH_AFTER_SECONDS')
    if (after > 0 && after !== this._armedWith) {
      this._armedWith = after
      this.crashAt = now + after * 1000
      this.log(`crash armed: exiting in ${after} s`)
    } else if (after <= 0) {
      this._armedWith = 0
      this.crashAt = null
    }
    if (this.crashAt !== null && now >= this.crashAt) this.crash(`CRASH_AFTER_SECONDS=${after}`)
  }

  describe () {
    return {
      scope: this.scope(),
      failRate: { 'import-article': this.failRate('import-article'), evaluation: this.failRate('evaluation') },
      slowMs: { 'import-article': this.slowMs('import-article'), evaluation: this.slowMs('evaluation') },
      leakMbPerSec: this.flags.faultNumber('LEAK_MB_PER_SEC'),
      leakedMb: this.leakedMb(),
      crashAt: this.crashAt === null ? null : new Date(this.crashAt).toISOString()
    }
  }
}
