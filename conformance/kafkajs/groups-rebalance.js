// kafkajs 2.2.4 rebalancing: five consumers on four partitions leave exactly one idle and own each partition once
// (kafkajs's round-robin assignor); a member that leaves hands its partitions on within seconds.
const { Kafka, logLevel } = require('kafkajs')

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function main () {
  const kafka = new Kafka({ clientId: 'osprey-conformance', brokers: [process.env.OSPREY_BOOTSTRAP], logLevel: logLevel.NOTHING })
  const run = Math.random().toString(16).slice(2, 10)
  const topic = `kafkajs-rebalance-${run}`
  const groupId = `kafkajs-five-${run}`
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 4, replicationFactor: 1 }], waitForLeaders: true })

  // Each member's latest assignment, as its GROUP_JOIN event reports it.
  const owned = new Map()
  const consumers = []
  for (let i = 0; i < 5; i++) {
    const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 300, rebalanceTimeout: 10000 })
    consumer.on(consumer.events.GROUP_JOIN, e => owned.set(i, (e.payload.memberAssignment[topic] || []).slice().sort()))
    await consumer.connect()
    await consumer.subscribe({ topic })
    await consumer.run({ eachMessage: async () => {} })
    consumers.push(consumer)
  }

  // Waits until the live members own the four partitions once each, with `idle` of them owning none, for 2 s.
  async function settle (live, idle) {
    const deadline = Date.now() + 60000
    let last = null
    let since = Date.now()
    while (Date.now() < deadline) {
      const now = live.map(i => owned.get(i) || [])
      const flat = now.flat().sort()
      const ok = JSON.stringify(flat) === '[0,1,2,3]' && now.filter(p => p.length === 0).length === idle
      const key = JSON.stringify(now)
      if (!ok) last = null
      else if (key !== last) { last = key; since = Date.now() } else if (Date.now() - since > 2000) return now
      await sleep(100)
    }
    throw new Error(`no settled assignment: ${JSON.stringify(live.map(i => owned.get(i)))}`)
  }

  const all = [0, 1, 2, 3, 4]
  const first = await settle(all, 1)
  const leaver = all[first.findIndex(p => p.includes(0))]
  const started = Date.now()
  await consumers[leaver].disconnect()
  const rest = all.filter(i => i !== leaver)
  await settle(rest, 0)
  if (Date.now() - started > 20000) throw new Error(`the leaver's partitions took ${(Date.now() - started) / 1000} s to move`)
  for (const i of rest) await consumers[i].disconnect()
  await admin.disconnect()
}

main().catch(e => { console.error(e); process.exit(1) })
