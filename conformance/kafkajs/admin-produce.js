// kafkajs 2.2.4 (pure JavaScript, up to Produce v7 / Fetch v11 / Metadata v6): create a topic, produce keyed
// messages with acks=all (GZIP, the codec kafkajs ships), and check the offsets each answer gave against the records
// read back, and the watermarks.
const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

async function main () {
  const kafka = new Kafka({ clientId: 'osprey-conformance', brokers: [process.env.OSPREY_BOOTSTRAP], logLevel: logLevel.ERROR })
  const topic = `kafkajs-${Math.random().toString(16).slice(2, 10)}`
  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true })
  if (!created) throw new Error('createTopics returned false')

  const producer = kafka.producer()
  await producer.connect()
  const sent = []
  for (let batch = 0; batch < 5; batch++) {
    const messages = Array.from({ length: 10 }, (_, i) => ({ key: `key-${i % 4}`, value: `value-${batch}-${i}` }))
    const results = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages })
    for (const r of results) {
      if (r.errorCode !== 0) throw new Error(`produce error ${JSON.stringify(r)}`)
      sent.push({ batch, partition: r.partition, baseOffset: Number(r.baseOffset) })
    }
  }
  await producer.disconnect()

  const offsets = await admin.fetchTopicOffsets(topic)
  const total = offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0)
  if (total !== 50) throw new Error(`watermarks ${JSON.stringify(offsets)} hold ${total} records, expected 50`)
  // Every offset the producer was given is where its records really are: read everything back (with offsets) and
  // check that each answer's base offset holds the first record of that send, and that each partition's offsets
  // run from 0 without gaps.
  const consumer = kafka.consumer({ groupId: `kafkajs-check-${Math.random().toString(16).slice(2, 10)}` })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const stored = new Map()
  await consumer.run({ eachMessage: async ({ partition, message }) => { stored.set(`${partition}:${message.offset}`, message.value.toString()) } })
  const deadline = Date.now() + 60000
  while (stored.size < 50 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  await consumer.disconnect()
  if (stored.size !== 50) throw new Error(`read back ${stored.size} records of 50`)
  for (const p of [0, 1]) {
    const mine = [...stored.keys()].filter(k => k.startsWith(`${p}:`)).map(k => Number(k.split(':')[1])).sort((x, y) => x - y)
    if (mine.some((o, i) => o !== i)) throw new Error(`partition ${p} offsets ${JSON.stringify(mine)} are not 0..n-1`)
  }
  for (const s of sent) {
    const first = stored.get(`${s.partition}:${s.baseOffset}`)
    if (!first || !first.startsWith(`value-${s.batch}-`)) throw new Error(`send ${s.batch} was answered partition ${s.partition} offset ${s.baseOffset}, which holds ${first}`)
  }

  const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
  const partitions = metadata.topics[0].partitions.map(p => p.partitionId).sort()
  if (JSON.stringify(partitions) !== '[0,1]') throw new Error(`partitions ${partitions}`)
  await admin.deleteTopics({ topics: [topic] })
  const left = await admin.listTopics()
  if (left.includes(topic)) throw new Error('topic still listed after deleteTopics')
  await admin.disconnect()
}

main().catch(e => { console.error(e); process.exit(1) })
