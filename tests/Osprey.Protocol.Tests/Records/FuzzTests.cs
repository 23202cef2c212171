using System.Buffers.Binary;
using Osprey.Protocol.Records;
using static Osprey.Protocol.Tests.Records.RecordTestHelpers;

namespace Osprey.Protocol.Tests.Records;

/// <summary>
/// Mutates valid batches at random and checks that reading them (header, CRC, records, headers, markers)
/// fails only with <see cref="KafkaProtocolException"/>: never an index, overflow, codec or memory error.
/// </summary>
public class FuzzTests
{
    private static readonly byte[] Interesting = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF];

    private static List<byte[]> Seeds()
    {
        var records = new[]
        {
            new TestRecord(1_000, "key", "value", new Header("h1", Utf8("v1")), new Header("h2", null)),
            new TestRecord(1_005, null, "x"),
            new TestRecord(999, "tomb", (string?)null),
            new TestRecord(1_010, "long", new string('z', 300)),
        };
        var seeds = new List<byte[]>();
        foreach (var compression in Enum.GetValues<CompressionType>())
        {
            seeds.Add(Build(records, compression, b => b.BaseOffset = 10));
        }

        seeds.Add(ControlRecords.CreateEndTransactionMarkerBatch(new EndTransactionMarker(ControlRecordType.Commit, 4), 1, 0, 5));
        seeds.Add([.. seeds[0], .. seeds[2], .. seeds[3]]);
        return seeds;
    }

    private static byte[] Mutate(byte[] seed, Random random)
    {
        var bytes = seed.ToList();
        var mutations = random.Next(1, 4);
        for (var m = 0; m < mutations; m++)
        {
            switch (random.Next(6))
            {
                case 0:
                    var bit = random.Next(bytes.Count * 8);
                    bytes[bit / 8] ^= (byte)(1 << (bit % 8));
                    break;
                case 1:
                    bytes[random.Next(bytes.Count)] = Interesting[random.Next(Interesting.Length)];
                    break;
                case 2:
                    bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                    break;
                case 3:
                    bytes.RemoveRange(random.Next(bytes.Count), 1);
                    break;
                case 4:
                    bytes.Insert(random.Next(bytes.Count), (byte)random.Next(256));
                    break;
                default:
                    var cut = random.Next(bytes.Count);
                    bytes.RemoveRange(cut, bytes.Count - cut);
                    break;
            }

            if (bytes.Count == 0)
            {
                return [];
            }
        }

        var result = bytes.ToArray();
        // Often repair the length and CRC so the mutation reaches the records instead of stopping at the header.
        if (result.Length >= RecordBatchHeader.Size && random.Next(2) == 0)
        {
            BinaryPrimitives.WriteInt32BigEndian(result.AsSpan(8), result.Length - RecordBatchHeader.LogOverhead);
            result[16] = 2;
            try
            {
                RecordBatch.UpdateCrc(result);
            }
            catch (KafkaProtocolException)
            {
                // The mutation made the header itself invalid; read it as it is.
            }
        }

        return result;
    }

    private static long Exercise(byte[] bytes, bool lenient, PooledBufferWriter buffer)
    {
        long checksum = 0;
        foreach (var batch in RecordBatch.Enumerate(bytes, lenient))
        {
            checksum += batch.VerifyCrc() ? 1 : 0;
            foreach (var record in batch.GetRecords(buffer, maxDecompressedSize: 1 << 20))
            {
                checksum += record.Offset + record.Timestamp + record.Key.Length + record.Value.Length;
                foreach (var header in record.Headers)
                {
                    checksum += header.Key.Length + header.Value.Length + header.GetKeyString().Length;
                }

                if (batch.Header.IsControlBatch)
                {
                    checksum += ControlRecords.ParseEndTransactionMarker(record).CoordinatorEpoch;
                }
            }
        }

        return checksum;
    }

    [Fact]
    public void MutatedBatchesOnlyEverThrowKafkaProtocolException()
    {
        var seeds = Seeds();
        var random = new Random(20240611);
        using var buffer = new PooledBufferWriter();
        var rejected = 0;
        // OSPREY_FUZZ_CASES (the long run) scales this like the message fuzz tests.
        var iterations = int.TryParse(Environment.GetEnvironmentVariable("OSPREY_FUZZ_CASES"), out var n) ? n : 30_000;
        for (var i = 0; i < iterations; i++)
        {
            var seed = seeds[random.Next(seeds.Count)];
            var mutated = Mutate(seed, random);
            try
            {
                _ = Exercise(mutated, lenient: random.Next(2) == 0, buffer);
            }
            catch (KafkaProtocolException e)
            {
                rejected++;
                Assert.True(
                    e.ErrorCode is ErrorCode.CorruptMessage or ErrorCode.UnsupportedForMessageFormat,
                    $"iteration {i}: unexpected code {e.ErrorCode}: {e.Message}");
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {i}: {e.GetType().Name}: {e.Message}\ninput: {Convert.ToHexString(mutated)}\n{e}");
            }
        }

        // The fuzzer must actually hit both outcomes to mean anything.
        Assert.InRange(rejected, iterations / 10, iterations - (iterations / 20));
    }

    [Fact]
    public void EverySeedIsValid()
    {
        using var buffer = new PooledBufferWriter();
        foreach (var seed in Seeds())
        {
            _ = Exercise(seed, lenient: false, buffer);
        }
    }
}
