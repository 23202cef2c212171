using Osprey.Protocol;
using Osprey.Protocol.Messages;

namespace Osprey.Client;

/// <summary>
/// The "consumer" protocol type's embedded formats: a member's subscription (JoinGroup metadata) and its
/// assignment (SyncGroup), each an int16 version followed by the struct. Readers accept newer versions, whose
/// extra fields come at the end.
/// </summary>
public static class ConsumerProtocol
{
    public const string ProtocolType = "consumer";

    public static byte[] EncodeSubscription(IEnumerable<string> topics) =>
        Encode(0, new ConsumerProtocolSubscription { Topics = [.. topics], UserData = null });

    public static IReadOnlyList<string> DecodeSubscription(ReadOnlyMemory<byte> bytes) =>
        bytes.Length < 2 ? [] : Decode(new ConsumerProtocolSubscription(), bytes).Topics;

    public static byte[] EncodeAssignment(IEnumerable<(string Topic, int Partition)> partitions) =>
        Encode(0, new ConsumerProtocolAssignment
        {
            AssignedPartitions = partitions.GroupBy(p => p.Topic).Select(g => new ConsumerProtocolAssignment.TopicPartition { Topic = g.Key, Partitions = [.. g.Select(p => p.Partition).Order()] }).ToList(),
            UserData = null,
        });

    public static IReadOnlyList<(string Topic, int Partition)> DecodeAssignment(ReadOnlyMemory<byte> bytes) =>
        bytes.Length < 2 ? [] : [.. Decode(new ConsumerProtocolAssignment(), bytes).AssignedPartitions.SelectMany(t => t.Partitions.Select(p => (t.Topic, p)))];

    /// <summary>
    /// Kafka's range assignor: per topic, the members subscribing to it in member-id order each take a contiguous
    /// range; the first (partitions mod members) take one more.
    /// </summary>
    public static Dictionary<string, List<(string Topic, int Partition)>> AssignRange(
        IReadOnlyDictionary<string, IReadOnlyList<string>> subscriptions, IReadOnlyDictionary<string, int> partitionCounts)
    {
        var result = subscriptions.Keys.ToDictionary(m => m, _ => new List<(string, int)>());
        foreach (var (topic, count) in partitionCounts)
        {
            var members = subscriptions.Where(s => s.Value.Contains(topic)).Select(s => s.Key).Order(StringComparer.Ordinal).ToList();
            if (members.Count == 0)
            {
                continue;
            }

            var (each, extra) = (count / members.Count, count % members.Count);
            var next = 0;
            for (var i = 0; i < members.Count; i++)
            {
                var take = each + (i < extra ? 1 : 0);
                result[members[i]].AddRange(Enumerable.Range(next, take).Select(p => (topic, p)));
                next += take;
            }
        }

        return result;
    }

    private static byte[] Encode(short version, IKafkaStruct message) => MessageCodec.SerializeVersioned(message, version);

    private static T Decode<T>(T message, ReadOnlyMemory<byte> bytes)
        where T : IKafkaStruct => MessageCodec.DeserializeVersioned(message, bytes, 3);
}
