using System.Text;
using Osprey.Protocol.Records;
using Osprey.Storage;

// Usage: crash-host DATA_DIR PARTITIONS
// Appends batches to PARTITIONS partitions of topic "crash" with durable (fsync) acknowledgement, many at a time,
// and prints "ack PARTITION LAST_OFFSET" for each acknowledged append, until killed.
var dataDir = args[0];
var partitions = int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
var manager = new LogManager(dataDir, new LogManagerOptions(), TimeProvider.System);
manager.LoadAll(_ => new LogConfig { SegmentBytes = 64 * 1024 });
var logs = Enumerable.Range(0, partitions).Select(p => manager.GetOrCreate("crash", p, new LogConfig { SegmentBytes = 64 * 1024 })).ToArray();
var output = Console.Out;
var outputLock = new Lock();
Console.Out.WriteLine("ready");
Console.Out.Flush();

await Task.WhenAll(Enumerable.Range(0, partitions * 4).Select(worker => Task.Run(async () =>
{
    var log = logs[worker % partitions];
    for (var i = 0; ; i++)
    {
        using var builder = new RecordBatchBuilder();
        for (var r = 0; r < 5; r++)
        {
            builder.Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Encoding.UTF8.GetBytes($"w{worker}"), Encoding.UTF8.GetBytes($"worker {worker} batch {i} record {r}"));
        }

        var result = await manager.AppendAsync(log, builder.Build(), durable: true);
        lock (outputLock)
        {
            output.WriteLine($"ack {log.Partition} {result.LastOffset}");
            output.Flush();
        }
    }
})));
