"""confluent-kafka-python 1.7.0: topic configs on create, describe_configs with sources, alter_configs, broker
configs, create_partitions, an invalid config refused, delete_topics."""
import os
import sys
import uuid

from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewPartitions, NewTopic

bootstrap = os.environ["OSPREY_BOOTSTRAP"]
topic = "ckp-cfg-" + uuid.uuid4().hex[:8]
admin = AdminClient({"bootstrap.servers": bootstrap})

admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config={"retention.ms": "3600000", "cleanup.policy": "compact"})])[topic].result(30)

def describe(kind, name):
    resource = ConfigResource(kind, name)
    return admin.describe_configs([resource])[resource].result(30)

configs = describe(ConfigResource.Type.TOPIC, topic)
if configs["retention.ms"].value != "3600000" or configs["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value:
    sys.exit(f"retention.ms {configs['retention.ms'].value} from {configs['retention.ms'].source}")
if configs["segment.bytes"].value != "1073741824" or configs["segment.bytes"].source != ConfigSource.DEFAULT_CONFIG.value:
    sys.exit(f"segment.bytes {configs['segment.bytes'].value} from {configs['segment.bytes'].source}")

# Legacy AlterConfigs replaces the topic's overrides as a whole.
resource = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.ms": "7200000"})
admin.alter_configs([resource])[resource].result(30)
configs = describe(ConfigResource.Type.TOPIC, topic)
if configs["retention.ms"].value != "7200000" or configs["cleanup.policy"].value != "delete":
    sys.exit(f"after alter: retention.ms {configs['retention.ms'].value}, cleanup.policy {configs['cleanup.policy'].value}")

bad = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.ms": "soon"})
try:
    admin.alter_configs([bad])[bad].result(30)
    sys.exit("an invalid retention.ms was accepted")
except Exception as e:
    if "retention.ms" not in str(e):
        sys.exit(f"invalid config error does not name the setting: {e}")

broker = describe(ConfigResource.Type.BROKER, "1")
if broker["num.partitions"].value != "1" or not broker["num.partitions"].is_read_only:
    sys.exit(f"broker num.partitions {broker['num.partitions'].value} read-only {broker['num.partitions'].is_read_only}")

admin.create_partitions([NewPartitions(topic, 3)])[topic].result(30)
partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
if sorted(partitions) != [0, 1, 2]:
    sys.exit(f"after create_partitions: {sorted(partitions)}")

admin.delete_topics([topic])[topic].result(30)
if topic in admin.list_topics(timeout=10).topics:
    sys.exit("topic still listed after delete_topics")
