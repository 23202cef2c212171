// kafkajs 2.2.4: an idempotent producer (InitProducerId, sequence numbers) keeps every message once and in order,
// also when produce answers are lost and it retries (injected below: the broker appended, the client never heard);
// the same loss makes a non-idempotent producer write duplicates, which shows the retries really happen.
// describeConfigs/alterConfigs on a topic, createPartitions, fetchTopicOffsetsByTimestamp, deleteTopics.
const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs')
const Connection = require('kafkajs/src/network/connection')
const { KafkaJSConnectionError } = require('kafkajs/src/errors')

// Loses the answers of the next `lose` Produce requests after the broker has handled them, as a dropped
// connection would: kafkajs retries the same batch.
let lose = 0
let lost = 0
const send = Connection.prototype.send
Connection.prototype.send = async function (args) {
  const answer = await send.call(this, args)
  if (args.request.apiKey === 0 && lose > 0) {
    lose--
    lost++
    throw new KafkaJSConnectionError('injected: the produce answer was lost')
  }
  return answer
}

async function main () {
  const kafka = new Kafka({ clientId: 'osprey-conformance', brokers: [process.env.OSPREY_BOOTSTRAP], logLevel: logLevel.ERROR })
  const topic = `kafkajs-idem-${Math.random().toString(16).slice(2, 10)}`
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }], waitForLeaders: true })

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 5, initialRetryTime: 50 } })
  await producer.connect()
  const offsets = { 0: [], 1: [] }
  for (let batch = 0; batch < 10; batch++) {
    const messages = Array.from({ length: 20 }, (_, i) => ({ partition: i % 2, value: `${batch * 20 + i}`, timestamp: `${5000000 + batch * 20 + i}` }))
    if (batch % 3 === 1) lose = 1 // every third send's first answer is lost: the retry must not write it again
    const results = await producer.send({ topic, acks: -1, messages })
    for (const r of results) {
      if (r.errorCode !== 0) throw new Error(`produce error ${JSON.stringify(r)}`)
      offsets[r.partition].push(Number(r.baseOffset))
    }
  }
  await producer.disconnect()
  if (lost !== 3) throw new Error(`${lost} produce answers were lost, expected 3: the injection did not happen`)
  for (const p of [0, 1]) {
    const expected = Array.from({ length: 10 }, (_, i) => i * 10)
    if (JSON.stringify(offsets[p]) !== JSON.stringify(expected)) throw new Error(`partition ${p} base offsets ${offsets[p]}`)
  }

  const watermarks = await admin.fetchTopicOffsets(topic)
  if (watermarks.some(w => w.high !== '100' || w.low !== '0')) throw new Error(`watermarks ${JSON.stringify(watermarks)}`)
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, 5000000 + 100)
  const p0 = byTime.find(o => o.partition === 0)
  if (p0.offset !== '50') throw new Error(`offset by timestamp ${JSON.stringify(byTime)}`)

  // The control: the same lost answer makes a plain producer's retry write the batch twice.
  const control = `${topic}-plain`
  await admin.createTopics({ topics: [{ topic: control, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true })
  const plain = kafka.producer({ idempotent: false, retry: { retries: 5, initialRetryTime: 50 } })
  await plain.connect()
  lose = 1
  await plain.send({ topic: control, acks: -1, messages: Array.from({ length: 5 }, (_, i) => ({ partition: 0, value: `${i}` })) })
  await plain.disconnect()
  const plainMarks = await admin.fetchTopicOffsets(control)
  if (plainMarks[0].high !== '10') throw new Error(`a plain producer with a lost answer stored ${plainMarks[0].high} records, expected the duplicate 10`)
  await admin.deleteTopics({ topics: [control] })

  await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }] })
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'segment.bytes'] }] })
  const entries = Object.fromEntries(described.resources[0].configEntries.map(e => [e.configName, e]))
  if (entries['retention.ms'].configValue !== '7200000' || entries['retention.ms'].isDefault) throw new Error(`retention.ms ${JSON.stringify(entries['retention.ms'])}`)
  if (entries['segment.bytes'].configValue !== '1073741824' || !entries['segment.bytes'].isDefault) throw new Error(`segment.bytes ${JSON.stringify(entries['segment.bytes'])}`)
  if (Object.keys(entries).length !== 2) throw new Error(`asked for two configs, got ${Object.keys(entries)}`)

  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
  if (metadata.topics[0].partitions.length !== 3) throw new Error(`after createPartitions: ${metadata.topics[0].partitions.length}`)
  await admin.deleteTopics({ topics: [topic] })
  await admin.disconnect()
}

main().catch(e => { console.error(e); process.exit(1) })
