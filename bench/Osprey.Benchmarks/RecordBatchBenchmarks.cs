using System.Text;
using BenchmarkDotNet.Attributes;
using Osprey.Protocol.Records;

namespace Osprey.Benchmarks;

/// <summary>
/// One batch of 1,000 records with 1 KB values (text-like, so codecs have something to do) and 16-byte keys:
/// build (encode + compress + CRC) and read (CRC + decompress + iterate every record).
/// </summary>
[MemoryDiagnoser]
public class RecordBatchBenchmarks
{
    private const int Records = 1000;
    private readonly PooledBufferWriter _decompressed = new();
    private byte[][] _keys = [];
    private byte[][] _values = [];
    private byte[] _batch = [];

    [Params(CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd)]
    public CompressionType Codec { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        string[] words = ["order", "customer", "amount", "currency", "EUR", "USD", "status", "shipped", "pending", "id", "sku", "warehouse"];
        _keys = Enumerable.Range(0, Records).Select(i => Encoding.UTF8.GetBytes($"key-{i:D12}")).ToArray();
        _values = Enumerable.Range(0, Records).Select(_ =>
        {
            var sb = new StringBuilder();
            while (sb.Length < 1024)
            {
                sb.Append('"').Append(words[random.Next(words.Length)]).Append("\":").Append(random.Next(100_000)).Append(',');
            }

            return Encoding.UTF8.GetBytes(sb.ToString(0, 1024));
        }).ToArray();
        _batch = Build();
    }

    [GlobalCleanup]
    public void Cleanup() => _decompressed.Dispose();

    [Benchmark]
    public int Encode() => Build().Length;

    [Benchmark]
    public long Decode()
    {
        long sum = 0;
        var batch = RecordBatch.Parse(_batch);
        batch.EnsureValidCrc();
        foreach (var record in batch.GetRecords(_decompressed))
        {
            sum += record.Offset + record.Value.Length + record.Key.Length;
        }

        return sum;
    }

    private byte[] Build()
    {
        using var builder = new RecordBatchBuilder(Codec);
        for (var i = 0; i < Records; i++)
        {
            builder.Append(1_700_000_000_000 + i, _keys[i], keyIsNull: false, _values[i], valueIsNull: false);
        }

        return builder.ToArray();
    }
}

/// <summary>Reading the header and iterating an uncompressed batch must allocate nothing per record.</summary>
[MemoryDiagnoser]
public class RecordIterationBenchmarks
{
    private byte[] _batch = [];

    [Params(1, 1000)]
    public int RecordCount { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        using var builder = new RecordBatchBuilder();
        var value = new byte[1024];
        for (var i = 0; i < RecordCount; i++)
        {
            builder.Append(1_700_000_000_000 + i, [1, 2, 3], value, [new Header("trace", [9])]);
        }

        _batch = builder.ToArray();
    }

    [Benchmark]
    public long ReadHeader() => RecordBatchHeader.Parse(_batch).LastOffset;

    [Benchmark]
    public long IterateRecords()
    {
        long sum = 0;
        foreach (var record in RecordBatch.Parse(_batch).GetRecords())
        {
            sum += record.Offset + record.Value.Length;
            foreach (var header in record.Headers)
            {
                sum += header.Value.Length;
            }
        }

        return sum;
    }
}

/// <summary>CRC-32C over 1 MB, as record batch validation does.</summary>
public class Crc32CBenchmarks
{
    private readonly byte[] _data = new byte[1024 * 1024];

    [GlobalSetup]
    public void Setup() => new Random(1).NextBytes(_data);

    [Benchmark]
    public uint Crc32COneMegabyte() => Crc32C.Compute(_data);
}
