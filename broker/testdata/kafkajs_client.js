// kafkajs_client.js drives KafkaJS (a pure-JavaScript Kafka client) against
// a broker for TestKafkaJS.
//
//   node kafkajs_client.js produce BROKER TOPIC N
//     admin: create TOPIC (3 partitions, a retention.ms override), read its
//     metadata and offsets back; then an idempotent producer (acks=all)
//     sends N records keyed k0..k6 with a header, half gzip, half plain.
//   node kafkajs_client.js consume BROKER TOPIC GROUP N
//     a group consumer, manual commits after every record, prints
//     "partition offset key value header" per record until it has N.
//
// It prints OK (produce) or the records (consume) and exits 0, or prints the
// error and exits 1.
const { Kafka, logLevel, CompressionTypes } = require('kafkajs');

const [mode, broker, topic] = process.argv.slice(2, 5);
const kafka = new Kafka({ clientId: 'spool-kafkajs-test', brokers: [broker], logLevel: logLevel.ERROR });

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function produce(n) {
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
  });
  check(created === true, `createTopics returned ${created}`);
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  check(again === false, 'creating an existing topic did not report it');
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  check(md.topics[0].partitions.length === 3, `metadata: ${JSON.stringify(md)}`);
  const cfg = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: topic, configNames: ['retention.ms'] }] });
  const ret = cfg.resources[0].configEntries.find((e) => e.configName === 'retention.ms');
  check(ret && ret.configValue === '3600000', `describeConfigs: ${JSON.stringify(cfg.resources[0])}`);
  await admin.disconnect();

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const batch = (from, to) => {
    const msgs = [];
    for (let i = from; i < to; i++) msgs.push({ key: `k${i % 7}`, value: `${i}`, headers: { seq: `h${i}` } });
    return msgs;
  };
  const half = Math.floor(n / 2);
  await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: batch(0, half) });
  await producer.send({ topic, acks: -1, messages: batch(half, n) });
  await producer.disconnect();

  const admin2 = kafka.admin();
  await admin2.connect();
  const offsets = await admin2.fetchTopicOffsets(topic);
  const total = offsets.reduce((s, p) => s + (Number(p.high) - Number(p.low)), 0);
  check(total === n, `fetchTopicOffsets: ${JSON.stringify(offsets)}`);
  await admin2.disconnect();
  console.log('OK');
}

async function consume(group, n) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  await new Promise((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const h = message.headers.seq ? message.headers.seq.toString() : '-';
          console.log(`${partition} ${message.offset} ${message.key} ${message.value} ${h}`);
          await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
          if (++seen === n) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
}

(async () => {
  if (mode === 'produce') await produce(Number(process.argv[5]));
  else if (mode === 'consume') await consume(process.argv[5], Number(process.argv[6]));
  else throw new Error(`unknown mode ${mode}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
