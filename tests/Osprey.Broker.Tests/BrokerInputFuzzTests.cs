using CsCheck;
using Osprey.Broker.Config;
using Osprey.Broker.Groups;
using Osprey.Protocol;

namespace Osprey.Broker.Tests;

/// <summary>
/// Hostile input to the broker's own decoders: __consumer_offsets records (a corrupt one must be skipped, not
/// crash the coordinator's load) and Java properties files given with --config (a clear error at worst).
/// </summary>
public class BrokerInputFuzzTests
{
    private static readonly (byte[] Key, byte[]? Value)[] ValidRecords =
    [
        (GroupRecords.OffsetKey("g", "t", 3), GroupRecords.OffsetValue(new CommittedOffset(42, 7, "meta", 1000))),
        (GroupRecords.GroupKey("g"), GroupRecords.GroupValue(new ClassicGroup("g", 5) { ProtocolType = "consumer", Generation = 2 })),
        (GroupRecords.ConsumerGroupKey("g"), GroupRecords.ConsumerGroupValue(4)),
        (GroupRecords.ConsumerMemberKey("g", "m"), GroupRecords.ConsumerMemberValue(new ConsumerMember("m") { SubscribedTopicNames = ["a", "b"], SubscribedTopicRegex = "x.*" })),
        (GroupRecords.TargetEpochKey("g"), GroupRecords.TargetEpochValue(4)),
        (GroupRecords.TargetMemberKey("g", "m"), GroupRecords.TargetMemberValue([(Guid.NewGuid(), 0), (Guid.NewGuid(), 2)])),
        (GroupRecords.CurrentAssignmentKey("g", "m"), GroupRecords.CurrentAssignmentValue(new ConsumerMember("m") { MemberEpoch = 4, Assigned = [(Guid.NewGuid(), 1)] })),
    ];

    [Fact]
    public void EveryRecordKindRoundTrips()
    {
        var parsed = ValidRecords.Select(r => GroupRecords.Parse(r.Key, r.Value, r.Value is null)).ToList();
        Assert.Equal(42, Assert.IsType<GroupRecords.Offset>(parsed[0]).Value!.Offset);
        Assert.Equal(2, Assert.IsType<GroupRecords.Group>(parsed[1]).Value!.Generation);
        Assert.Equal(4, Assert.IsType<GroupRecords.ConsumerGroupEpoch>(parsed[2]).Epoch);
        Assert.Equal(["a", "b"], Assert.IsType<GroupRecords.ConsumerMemberMetadata>(parsed[3]).Value!.SubscribedTopicNames);
        Assert.Equal(4, Assert.IsType<GroupRecords.TargetEpoch>(parsed[4]).Epoch);
        Assert.Equal(2, Assert.IsType<GroupRecords.TargetMember>(parsed[5]).Partitions!.Count);
        Assert.Equal(4, Assert.IsType<GroupRecords.CurrentAssignment>(parsed[6]).Value!.MemberEpoch);
    }

    [Fact]
    public void CorruptGroupRecordsThrowOnlyProtocolErrors()
    {
        var cases = Gen.Int[0, ValidRecords.Length - 1].SelectMany(i => Gen.Select(
            Mutate(ValidRecords[i].Key),
            ValidRecords[i].Value is { } value ? Mutate(value) : Gen.Const(Array.Empty<byte>()),
            Gen.Bool,
            (key, value, isNull) => (key, value, isNull)));
        cases.Sample(
            c =>
            {
                try
                {
                    GroupRecords.Parse(c.key, c.value, c.isNull);
                }
                catch (KafkaProtocolException)
                {
                }
            },
            iter: 20_000,
            threads: 1);
    }

    [Fact]
    public void AnyPropertiesTextParsesWithoutCrashing()
    {
        var text = Gen.Frequency(
            (1, Gen.String),
            (3, Gen.OneOf<string>("a=b", "key value", "x:\\u00", "\\", "k\\\n  v", "#c", "!c", "=", "\\u12", " \t", "k=\\", "\\u0041=\\n").Array[0, 12].Select(parts => string.Join('\n', parts))));
        text.Sample(
            t =>
            {
                try
                {
                    foreach (var (name, _, line) in BrokerConfig.ParseProperties(t))
                    {
                        Assert.NotNull(name);
                        Assert.True(line >= 1);
                    }
                }
                catch (BrokerConfigException e)
                {
                    // A readable refusal that names the line, which `osprey start` prints.
                    Assert.Contains("line", e.Message, StringComparison.Ordinal);
                }
            },
            iter: 20_000,
            threads: 1);
    }

    private static Gen<byte[]> Mutate(byte[] valid) =>
        Gen.Int[0, 4].SelectMany(kind => kind switch
        {
            0 => Gen.Select(Gen.Int[0, valid.Length - 1], Gen.Byte, (i, b) =>
            {
                var copy = (byte[])valid.Clone();
                copy[i] = b;
                return copy;
            }),
            1 => Gen.Int[0, valid.Length].Select(length => valid[..length]),
            2 => Gen.Byte.Array[0, 40],
            3 => Gen.Byte.Array[1, 8].Select(extra => valid.Concat(extra).ToArray()),
            _ => Gen.Const(valid),
        });
}
