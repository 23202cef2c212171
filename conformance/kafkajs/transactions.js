// kafkajs 2.2.4 transactions: a transactional producer commits one transaction and aborts another; a consumer
// (read_committed, kafkajs's default) sees only the committed records, one with readUncommitted sees both; a
// second producer with the same transactional id fences the first.
const { Kafka, logLevel } = require('kafkajs')

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function readAll (kafka, topic, readUncommitted, expected) {
  const consumer = kafka.consumer({ groupId: `kafkajs-txn-check-${Math.random().toString(16).slice(2, 8)}`, readUncommitted })
  const values = []
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async ({ message }) => { values.push(message.value.toString()) } })
  const deadline = Date.now() + 30000
  while (values.length < expected && Date.now() < deadline) await sleep(100)
  await sleep(1500) // anything more would show up now
  await consumer.disconnect()
  return values.sort()
}

async function main () {
  const kafka = new Kafka({ clientId: 'osprey-conformance', brokers: [process.env.OSPREY_BOOTSTRAP], logLevel: logLevel.NOTHING })
  const run = Math.random().toString(16).slice(2, 10)
  const topic = `kafkajs-txn-${run}`
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true })
  await admin.disconnect()

  const producer = kafka.producer({ transactionalId: `kafkajs-tx-${run}`, maxInFlightRequests: 1, idempotent: true })
  await producer.connect()
  const committed = await producer.transaction()
  await committed.send({ topic, messages: [{ partition: 0, value: 'c1' }, { partition: 1, value: 'c2' }] })
  await committed.commit()
  const aborted = await producer.transaction()
  await aborted.send({ topic, messages: [{ partition: 0, value: 'a1' }, { partition: 1, value: 'a2' }] })
  await aborted.abort()

  // A successor with the same transactional id fences this producer.
  const open = await producer.transaction()
  await open.send({ topic, messages: [{ partition: 0, value: 'zombie' }] })
  const successor = kafka.producer({ transactionalId: `kafkajs-tx-${run}`, maxInFlightRequests: 1, idempotent: true })
  await successor.connect()
  const next = await successor.transaction()
  await next.send({ topic, messages: [{ partition: 1, value: 'c3' }] })
  await next.commit()
  let fenced = false
  try { await open.commit() } catch (e) { fenced = true }
  if (!fenced) throw new Error('the fenced producer could still commit')
  await successor.disconnect()
  await producer.disconnect().catch(() => {})

  const readCommitted = await readAll(kafka, topic, false, 3)
  if (JSON.stringify(readCommitted) !== '["c1","c2","c3"]') throw new Error(`read_committed saw ${JSON.stringify(readCommitted)}`)
  const readUncommitted = await readAll(kafka, topic, true, 6)
  if (JSON.stringify(readUncommitted) !== '["a1","a2","c1","c2","c3","zombie"]') throw new Error(`read_uncommitted saw ${JSON.stringify(readUncommitted)}`)
}

main().catch(e => { console.error(e); process.exit(1) })
