using System.CommandLine;
using System.Text;
using System.Threading.Channels;
using Osprey.Client;
using Osprey.Protocol.Records;

namespace Osprey.Cli.Commands;

/// <summary>
/// <c>osprey produce TOPIC</c>: each line of stdin becomes a record (key and value split at --key-separator when
/// given), sent idempotently with acks=all by default. Lines are batched per partition while they keep coming and
/// sent as soon as input pauses, so it works both in pipes and typed by hand.
/// </summary>
internal static class ProduceCommand
{
    private const int MaxBatchBytes = 512 * 1024;

    public static Command Create()
    {
        var bootstrap = ClientCommand.Bootstrap();
        var topic = new Argument<string>("topic") { Description = "The topic to write to." };
        var keySeparator = new Option<string?>("--key-separator", "-k") { Description = "Split each line at the first occurrence: key before, value after." };
        var headers = new Option<string[]>("--header", "-H") { Description = "key=value header added to every record; repeatable." };
        var partition = new Option<int?>("--partition", "-p") { Description = "Write every record to this partition (default: by key, or spread)." };
        var compression = new Option<string>("--compression", "-z") { Description = "none, gzip, snappy, lz4 or zstd.", DefaultValueFactory = _ => "none" };
        compression.AcceptOnlyFromAmong("none", "gzip", "snappy", "lz4", "zstd");
        var acks = new Option<string>("--acks") { Description = "all (default, idempotent), 1 or 0.", DefaultValueFactory = _ => "all" };
        acks.AcceptOnlyFromAmong("all", "-1", "1", "0");
        var batchSize = new Option<int>("--batch-size") { Description = "Most records in one batch.", DefaultValueFactory = _ => 1000 };
        var nullMarker = new Option<string?>("--null-value-marker") { Description = "A value equal to this is sent as null: a tombstone, which deletes its key from a compacted topic." };
        var command = new Command("produce", "Write stdin lines to a topic as records.") { bootstrap, topic, keySeparator, headers, partition, compression, acks, batchSize, nullMarker };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var producer = new LineProducer(
                client,
                result.GetValue(topic)!,
                result.GetValue(keySeparator),
                ClientCommand.KeyValues(result.GetValue(headers), "--header").Select(h => new Header(h.Key, Encoding.UTF8.GetBytes(h.Value))).ToArray(),
                result.GetValue(partition),
                result.GetValue(compression) switch
                {
                    "gzip" => CompressionType.Gzip,
                    "snappy" => CompressionType.Snappy,
                    "lz4" => CompressionType.Lz4,
                    "zstd" => CompressionType.Zstd,
                    _ => CompressionType.None,
                },
                result.GetValue(acks) switch { "0" => (short)0, "1" => (short)1, _ => (short)-1 },
                Math.Max(1, result.GetValue(batchSize)))
            {
                NullValueMarker = result.GetValue(nullMarker),
            };
            var count = await producer.RunAsync(Console.In, cancellationToken);
            await Console.Error.WriteLineAsync($"osprey: produced {count} record(s) to '{result.GetValue(topic)}'.");
            return 0;
        }));
        return command;
    }

    private sealed class LineProducer(KafkaClient client, string topic, string? keySeparator, Header[] headers, int? fixedPartition, CompressionType compression, short acks, int batchSize)
    {
        private readonly Dictionary<int, RecordBatchBuilder> _pending = [];
        private readonly Dictionary<int, int> _sequences = [];
        private readonly Dictionary<int, BrokerConnection> _leaders = [];
        private long _producerId = -1;
        private short _epoch = -1;
        private int _next;
        private int _partitions;
        private long _produced;

        /// <summary>A value equal to this becomes a null value (a tombstone).</summary>
        public string? NullValueMarker { get; init; }

        public async Task<long> RunAsync(TextReader input, CancellationToken cancellationToken)
        {
            var info = await client.TopicAsync(topic, cancellationToken, allowAutoCreate: true);
            _partitions = info.Partitions.Count;
            if (fixedPartition is { } p && (p < 0 || p >= _partitions))
            {
                throw new ArgumentException($"Topic '{topic}' has no partition {p} (it has {_partitions}).");
            }

            if (acks == -1)
            {
                (_producerId, _epoch) = await client.InitProducerIdAsync(cancellationToken);
            }

            var lines = Channel.CreateBounded<string>(10_000);
            var reader = Task.Run(
                async () =>
                {
                    try
                    {
                        while (await input.ReadLineAsync(cancellationToken) is { } line)
                        {
                            await lines.Writer.WriteAsync(line, cancellationToken);
                        }
                    }
                    finally
                    {
                        lines.Writer.Complete();
                    }
                },
                cancellationToken);

            while (await lines.Reader.WaitToReadAsync(cancellationToken))
            {
                while (lines.Reader.TryRead(out var line))
                {
                    var target = Add(line);
                    if (_pending[target].RecordCount >= batchSize || _pending[target].UncompressedSizeInBytes >= MaxBatchBytes)
                    {
                        await FlushAsync(target, cancellationToken);
                    }
                }

                // Input paused (or ended): send what is waiting.
                foreach (var partition in _pending.Keys.ToList())
                {
                    await FlushAsync(partition, cancellationToken);
                }
            }

            await reader;
            return _produced;
        }

        private int Add(string line)
        {
            byte[]? key = null;
            var value = line;
            if (keySeparator is { Length: > 0 } separator)
            {
                var at = line.IndexOf(separator, StringComparison.Ordinal);
                if (at >= 0)
                {
                    key = Encoding.UTF8.GetBytes(line[..at]);
                    value = line[(at + separator.Length)..];
                }
            }

            var partition = fixedPartition ?? (key is not null ? Partitioner.ForKey(key, _partitions) : _next % _partitions);
            if (!_pending.TryGetValue(partition, out var builder))
            {
                builder = new RecordBatchBuilder(compression) { ProducerId = _producerId, ProducerEpoch = _epoch };
                _pending[partition] = builder;
            }

            builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), key, value == NullValueMarker ? null : Encoding.UTF8.GetBytes(value), headers);
            return partition;
        }

        private async Task FlushAsync(int partition, CancellationToken cancellationToken)
        {
            if (!_pending.Remove(partition, out var builder))
            {
                return;
            }

            using (builder)
            {
                if (_producerId >= 0)
                {
                    var sequence = _sequences.GetValueOrDefault(partition);
                    builder.BaseSequence = sequence;
                    _sequences[partition] = (int)((sequence + (long)builder.RecordCount) % ((long)int.MaxValue + 1));
                }

                if (!_leaders.TryGetValue(partition, out var leader) || leader.IsBroken)
                {
                    leader = _leaders[partition] = await client.LeaderAsync(topic, partition, cancellationToken);
                }

                await client.ProduceAsync(leader, topic, partition, builder.Build(), acks, cancellationToken);
                _produced += builder.RecordCount;
            }

            if (fixedPartition is null)
            {
                _next++; // records without a key move to the next partition batch by batch
            }
        }
    }
}
