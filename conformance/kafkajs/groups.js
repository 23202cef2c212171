// kafkajs 2.2.4 consumer groups: two consumers with consumer.run share a topic, each message handled once;
// their offsets are committed, and a consumer that comes later in the same group gets only what is new.
const { Kafka, logLevel, AssignerProtocol } = require('kafkajs')

async function main () {
  const kafka = new Kafka({ clientId: 'osprey-conformance', brokers: [process.env.OSPREY_BOOTSTRAP], logLevel: logLevel.NOTHING })
  const run = Math.random().toString(16).slice(2, 10)
  const topic = `kafkajs-groups-${run}`
  const groupId = `kafkajs-group-${run}`
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 4, replicationFactor: 1 }], waitForLeaders: true })
  const producer = kafka.producer()
  await producer.connect()

  const seen = new Map()
  const consumers = [kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500 }), kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500 })]
  for (const [i, consumer] of consumers.entries()) {
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ partition, message }) => { seen.set(message.value.toString(), (seen.get(message.value.toString()) || []).concat([`${i}:${partition}`])) } })
  }

  // The records are sent once the group has settled (both members hold partitions, as the broker describes it),
  // so no rebalance can hand a record to a second member: each must be handled exactly once.
  const settled = Date.now() + 60000
  for (;;) {
    const { groups } = await admin.describeGroups([groupId])
    const members = groups[0].members.map(m => AssignerProtocol.MemberAssignment.decode(m.memberAssignment))
    const held = members.flatMap(a => (a && a.assignment[topic]) || []).sort()
    if (groups[0].state === 'Stable' && members.length === 2 && members.every(a => a && (a.assignment[topic] || []).length > 0) && JSON.stringify(held) === '[0,1,2,3]') break
    if (Date.now() > settled) throw new Error(`the group did not settle: ${JSON.stringify(groups[0].state)} ${JSON.stringify(held)}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  await producer.send({ topic, messages: Array.from({ length: 40 }, (_, i) => ({ partition: i % 4, value: `${i}` })) })

  const deadline = Date.now() + 60000
  while (seen.size < 40 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  if (seen.size !== 40) throw new Error(`read ${seen.size} distinct values of 40`)
  for (const consumer of consumers) await consumer.disconnect()
  const twice = [...seen.entries()].filter(([, handlers]) => handlers.length !== 1)
  if (twice.length > 0) throw new Error(`handled more than once: ${JSON.stringify(twice.slice(0, 5))}`)
  const byPartition = new Map()
  for (const handlers of seen.values()) for (const h of handlers) { const [who, p] = h.split(':'); byPartition.set(p, (byPartition.get(p) || new Set()).add(who)) }
  if ([...byPartition.values()].some(who => who.size !== 1) || new Set([...byPartition.values()].map(w => [...w][0])).size !== 2) {
    throw new Error(`partitions were not split between the two members: ${JSON.stringify([...byPartition.entries()].map(([p, w]) => [p, [...w]]))}`)
  }

  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
  const committed = offsets[0].partitions.map(p => Number(p.offset)).sort()
  if (JSON.stringify(committed) !== '[10,10,10,10]') throw new Error(`committed ${JSON.stringify(offsets)}`)

  await producer.send({ topic, messages: [{ partition: 0, value: 'new-0' }, { partition: 3, value: 'new-3' }] })
  const later = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500 })
  const after = []
  await later.connect()
  await later.subscribe({ topic, fromBeginning: true })
  await later.run({ eachMessage: async ({ message }) => { after.push(message.value.toString()) } })
  const until = Date.now() + 60000
  while (after.length < 2 && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 100))
  await new Promise(resolve => setTimeout(resolve, 500))
  await later.disconnect()
  if (JSON.stringify(after.sort()) !== '["new-0","new-3"]') throw new Error(`the later consumer read ${JSON.stringify(after)}`)
  await producer.disconnect()
  await admin.disconnect()
}

main().catch(e => { console.error(e); process.exit(1) })
