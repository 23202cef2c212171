using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Osprey.Client;

namespace Osprey.Cli.Commands;

/// <summary>
/// <c>osprey consume TOPIC</c>: reads a topic's partitions (all, or one) from the latest offset, the beginning, an
/// offset or a point in time, and prints each record: its value, key and value, or a JSON line with everything.
/// Runs until Ctrl+C, --max records, or --timeout-ms without a new record.
/// </summary>
internal static class ConsumeCommand
{
    public static Command Create()
    {
        var bootstrap = ClientCommand.Bootstrap();
        var topic = new Argument<string>("topic") { Description = "The topic to read." };
        var partition = new Option<int?>("--partition", "-p") { Description = "Read only this partition." };
        var fromBeginning = new Option<bool>("--from-beginning") { Description = "Start at the earliest offset (default: only new records)." };
        var offset = new Option<long?>("--offset") { Description = "Start at this offset (in every partition read)." };
        var fromTime = new Option<string?>("--from-time") { Description = "Start at the first record at or after this time (ISO 8601, or ms since the epoch)." };
        var max = new Option<long?>("--max", "-n") { Description = "Stop after this many records." };
        var timeout = new Option<int?>("--timeout-ms") { Description = "Stop when no record arrives for this long." };
        var format = new Option<string>("--format", "-f") { Description = "value, key-value or json (one JSON object per line).", DefaultValueFactory = _ => "value" };
        format.AcceptOnlyFromAmong("value", "key-value", "json");
        var separator = new Option<string>("--key-separator") { Description = "Between key and value with --format key-value.", DefaultValueFactory = _ => "\t" };
        var group = new Option<string?>("--group", "-g") { Description = "Read as a member of this consumer group: partitions shared with its other members, positions committed." };
        var command = new Command("consume", "Print the records of a topic.") { bootstrap, topic, partition, fromBeginning, offset, fromTime, max, timeout, format, separator, group };
        command.Validators.Add(result =>
        {
            if (new[] { result.GetValue(fromBeginning), result.GetValue(offset) is not null, result.GetValue(fromTime) is not null }.Count(b => b) > 1)
            {
                result.AddError("Give at most one of --from-beginning, --offset and --from-time.");
            }

            if (result.GetValue(group) is not null && (result.GetValue(offset) is not null || result.GetValue(fromTime) is not null || result.GetValue(partition) is not null))
            {
                result.AddError("--group reads from the group's committed positions: it does not combine with --offset, --from-time or --partition.");
            }
        });
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result.GetValue(bootstrap)!, async client =>
        {
            var name = result.GetValue(topic)!;
            var info = await client.TopicAsync(name, cancellationToken);
            var positions = new Dictionary<int, long>();
            GroupMember? member = null;
            var groupId = result.GetValue(group);
            if (groupId is not null)
            {
                member = new GroupMember(client, groupId, [name]);
                await JoinAsync(client, member, name, result.GetValue(fromBeginning), positions, cancellationToken);
            }
            else
            {
                var partitions = result.GetValue(partition) is { } only
                    ? info.Partitions.Any(p => p.Partition == only) ? [only] : throw new ArgumentException($"Topic '{name}' has no partition {only} (it has {info.Partitions.Count}).")
                    : info.Partitions.Select(p => p.Partition).ToList();
                var start = result.GetValue(fromBeginning) ? -2L
                    : result.GetValue(offset) is { } o ? o
                    : result.GetValue(fromTime) is { } t ? ParseTime(t)
                    : -1L;
                foreach (var p in partitions)
                {
                    positions[p] = result.GetValue(offset) is not null ? start : await client.ListOffsetAsync(name, p, start, cancellationToken);
                    if (positions[p] < 0)
                    {
                        positions[p] = await client.ListOffsetAsync(name, p, -1, cancellationToken); // no record that late: wait at the end
                    }
                }
            }

            var printer = new RecordPrinter(result.GetValue(format)!, result.GetValue(separator)!);
            var limit = result.GetValue(max) ?? long.MaxValue;
            var idle = result.GetValue(timeout);
            long printed = 0;
            var lastRecord = DateTime.UtcNow;
            var lastCommit = DateTime.UtcNow;
            try
            {
                while (printed < limit && !cancellationToken.IsCancellationRequested)
                {
                    if (member is { RebalanceNeeded: true })
                    {
                        await CommitQuietlyAsync(member, name, positions, cancellationToken);
                        await JoinAsync(client, member, name, result.GetValue(fromBeginning), positions, cancellationToken);
                    }

                    var any = false;
                    if (positions.Count == 0)
                    {
                        await Task.Delay(200, cancellationToken); // a member with nothing assigned waits for a rebalance
                    }
                    else
                    {
                        var leaders = info.Partitions.Where(p => positions.ContainsKey(p.Partition)).GroupBy(p => p.Leader);
                        var fetches = leaders.Select(async leader =>
                        {
                            var connection = await client.NodeAsync(leader.Key, cancellationToken);
                            return await client.FetchAsync(connection, name, leader.ToDictionary(p => p.Partition, p => positions[p.Partition]), idle is { } ms ? Math.Min(ms, 500) : 500, 8 << 20, 4 << 20, cancellationToken);
                        });
                        foreach (var fetched in await Task.WhenAll(fetches))
                        {
                            foreach (var (p, (records, _)) in fetched.OrderBy(f => f.Key))
                            {
                                foreach (var record in records.TakeWhile(_ => printed < limit))
                                {
                                    printer.Print(record);
                                    printed++;
                                    positions[p] = record.Offset + 1;
                                    any = true;
                                }
                            }
                        }
                    }

                    if (any)
                    {
                        lastRecord = DateTime.UtcNow;
                        await Console.Out.FlushAsync(cancellationToken);
                    }
                    else if (idle is { } wait && (DateTime.UtcNow - lastRecord).TotalMilliseconds >= wait)
                    {
                        break;
                    }

                    if (member is not null && DateTime.UtcNow - lastCommit > TimeSpan.FromSeconds(5))
                    {
                        await CommitQuietlyAsync(member, name, positions, cancellationToken);
                        lastCommit = DateTime.UtcNow;
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Ctrl+C or SIGTERM: stop reading; what was printed is committed below.
            }
            finally
            {
                await Console.Out.FlushAsync(CancellationToken.None);
                if (member is not null)
                {
                    // Commit what was printed and leave the group, so that no ghost member holds its partitions
                    // for the session timeout; bounded, so a stop never hangs on an unreachable broker.
                    using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    try
                    {
                        await CommitQuietlyAsync(member, name, positions, bounded.Token);
                        await member.LeaveAsync(bounded.Token);
                    }
                    catch (Exception e) when (e is KafkaException or OperationCanceledException)
                    {
                        await Console.Error.WriteLineAsync($"osprey: could not leave group {member.GroupId} cleanly: {e.Message}");
                    }

                    await member.DisposeAsync();
                }
            }

            return 0;
        }));
        return command;
    }

    /// <summary>(Re)joins the group and starts each assigned partition at its committed offset, else the earliest or latest.</summary>
    private static async Task JoinAsync(KafkaClient client, GroupMember member, string topic, bool fromBeginning, Dictionary<int, long> positions, CancellationToken cancellationToken)
    {
        var assignment = await member.JoinAsync(cancellationToken);
        var committed = await client.CommittedOffsetsAsync(member.GroupId, cancellationToken);
        positions.Clear();
        foreach (var (_, partition) in assignment.Where(a => a.Topic == topic))
        {
            positions[partition] = committed.TryGetValue((topic, partition), out var offset)
                ? offset
                : await client.ListOffsetAsync(topic, partition, fromBeginning ? -2 : -1, cancellationToken);
        }
    }

    /// <summary>Commits the positions; a rebalance under way makes the commit fail, which is fine to ignore.</summary>
    private static async Task CommitQuietlyAsync(GroupMember member, string topic, Dictionary<int, long> positions, CancellationToken cancellationToken)
    {
        try
        {
            await member.CommitAsync(positions.ToDictionary(p => (topic, p.Key), p => p.Value), cancellationToken);
        }
        catch (KafkaException)
        {
        }
    }

    private static long ParseTime(string text)
    {
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
        {
            return ms;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time)
            ? time.ToUnixTimeMilliseconds()
            : throw new ArgumentException($"--from-time '{text}' is neither ms since the epoch nor an ISO 8601 time.");
    }

    private sealed class RecordPrinter(string format, string separator)
    {
        private readonly TextWriter _out = Console.Out;

        public void Print(ConsumedRecord record)
        {
            switch (format)
            {
                case "json":
                    _out.WriteLine(JsonSerializer.Serialize(
                        new
                        {
                            topic = record.Topic,
                            partition = record.Partition,
                            offset = record.Offset,
                            timestamp = record.Timestamp,
                            timestampType = record.TimestampType.ToString(),
                            key = Text(record.Key),
                            value = Text(record.Value),
                            headers = record.Headers.Select(h => new { key = h.Key, value = Text(h.Value) }),
                        },
                        ClientCommand.Json));
                    break;
                case "key-value":
                    _out.WriteLine($"{Text(record.Key) ?? "null"}{separator}{Text(record.Value) ?? "null"}");
                    break;
                default:
                    _out.WriteLine(Text(record.Value) ?? "null");
                    break;
            }
        }

        private static string? Text(byte[]? bytes) => bytes is null ? null : Encoding.UTF8.GetString(bytes);
    }
}
