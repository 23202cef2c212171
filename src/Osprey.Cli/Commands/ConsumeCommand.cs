using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Osprey.Client;

namespace Osprey.Cli.Commands;

/// <summary>
/// <c>osprey consume TOPIC...</c>: reads topics' partitions (all, or one; topics named or matched by --include) from
/// the latest offset, the beginning, an offset or a point in time, read_uncommitted or read_committed, and prints each
/// record: its value, key and value, or a JSON line with everything, as text or binary-safe base64/hex. Runs until
/// Ctrl+C, --max records, or --timeout-ms without a new record.
/// </summary>
internal static class ConsumeCommand
{
    public static Command Create()
    {
        var bootstrap = ClientCommand.Bootstrap();
        var topicNames = new Argument<string[]>("topics") { Description = "The topics to read (one or more).", Arity = ArgumentArity.ZeroOrMore };
        var include = new Option<string?>("--include") { Description = "Also read every topic whose name matches this regular expression (as Kafka's console consumer's --include)." };
        var partition = new Option<int?>("--partition", "-p") { Description = "Read only this partition (of a single topic)." };
        var fromBeginning = new Option<bool>("--from-beginning") { Description = "Start at the earliest offset (default: only new records)." };
        var offset = new Option<long?>("--offset") { Description = "Start at this offset (in every partition read)." };
        var fromTime = new Option<string?>("--from-time") { Description = "Start at the first record at or after this time (ISO 8601, or ms since the epoch)." };
        var max = new Option<long?>("--max", "-n") { Description = "Stop after this many records." };
        var timeout = new Option<int?>("--timeout-ms") { Description = "Stop when no record arrives for this long." };
        var format = new Option<string>("--format", "-f") { Description = "value, key-value or json (one JSON object per line).", DefaultValueFactory = _ => "value" };
        format.AcceptOnlyFromAmong("value", "key-value", "json");
        var encoding = new Option<string>("--encoding") { Description = "How keys, values and header values are written: text (UTF-8), base64 or hex (binary-safe).", DefaultValueFactory = _ => "text" };
        encoding.AcceptOnlyFromAmong("text", "base64", "hex");
        var isolation = new Option<string>("--isolation-level") { Description = "read_uncommitted (everything) or read_committed (committed transactions only, up to the last stable offset).", DefaultValueFactory = _ => "read_uncommitted" };
        isolation.AcceptOnlyFromAmong("read_uncommitted", "read_committed");
        var separator = new Option<string>("--key-separator") { Description = "Between key and value with --format key-value.", DefaultValueFactory = _ => "\t" };
        var group = new Option<string?>("--group", "-g") { Description = "Read as a member of this consumer group: partitions shared with its other members, positions committed." };
        var command = new Command("consume", "Print the records of one or more topics.") { bootstrap, topicNames, include, partition, fromBeginning, offset, fromTime, max, timeout, format, encoding, isolation, separator, group };
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

            if ((result.GetValue(topicNames) ?? []).Length == 0 && result.GetValue(include) is null)
            {
                result.AddError("Name at least one topic, or --include a pattern.");
            }

            if (result.GetValue(partition) is not null && ((result.GetValue(topicNames) ?? []).Length != 1 || result.GetValue(include) is not null))
            {
                result.AddError("--partition reads one partition of a single named topic.");
            }
        });
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var names = (result.GetValue(topicNames) ?? []).ToList();
            if (result.GetValue(include) is { } pattern)
            {
                var regex = new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
                var (_, all) = await client.MetadataAsync(null, cancellationToken);
                names.AddRange(all.Where(t => t.Topic is { IsInternal: false } && regex.IsMatch(t.Name)).Select(t => t.Name).Where(n => !names.Contains(n)).Order(StringComparer.Ordinal));
                if (names.Count == 0)
                {
                    throw new ArgumentException($"No topic matches --include '{pattern}'.");
                }
            }

            var infos = new Dictionary<string, TopicInfo>(StringComparer.Ordinal);
            foreach (var name in names)
            {
                infos[name] = await client.TopicAsync(name, cancellationToken);
            }

            var readCommitted = result.GetValue(isolation) == "read_committed";
            var positions = new Dictionary<(string Topic, int Partition), long>();
            GroupMember? member = null;
            var groupId = result.GetValue(group);
            if (groupId is not null)
            {
                member = new GroupMember(client, groupId, names);
                await JoinAsync(client, member, result.GetValue(fromBeginning), positions, cancellationToken);
            }
            else
            {
                var start = result.GetValue(fromBeginning) ? -2L
                    : result.GetValue(offset) is { } o ? o
                    : result.GetValue(fromTime) is { } t ? ParseTime(t)
                    : -1L;
                foreach (var (name, info) in infos)
                {
                    var partitions = result.GetValue(partition) is { } only
                        ? info.Partitions.Any(p => p.Partition == only) ? [only] : throw new ArgumentException($"Topic '{name}' has no partition {only} (it has {info.Partitions.Count}).")
                        : info.Partitions.Select(p => p.Partition).ToList();
                    foreach (var p in partitions)
                    {
                        positions[(name, p)] = result.GetValue(offset) is not null ? start : await client.ListOffsetAsync(name, p, start, cancellationToken);
                        if (positions[(name, p)] < 0)
                        {
                            positions[(name, p)] = await client.ListOffsetAsync(name, p, -1, cancellationToken); // no record that late: wait at the end
                        }
                    }
                }
            }

            var printer = new RecordPrinter(result.GetValue(format)!, result.GetValue(separator)!, result.GetValue(encoding)!);
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
                        await CommitQuietlyAsync(member, positions, cancellationToken);
                        await JoinAsync(client, member, result.GetValue(fromBeginning), positions, cancellationToken);
                    }

                    var any = false;
                    if (positions.Count == 0)
                    {
                        await Task.Delay(200, cancellationToken); // a member with nothing assigned waits for a rebalance
                    }
                    else
                    {
                        var wait = idle is { } ms ? Math.Min(ms, 500) : 500;
                        var fetches = positions.Keys
                            .GroupBy(tp => (tp.Topic, Leader: infos[tp.Topic].Partitions.First(p => p.Partition == tp.Partition).Leader))
                            .Select(async g =>
                            {
                                var connection = await client.NodeAsync(g.Key.Leader, cancellationToken);
                                var fetched = await client.FetchAsync(connection, g.Key.Topic, g.ToDictionary(tp => tp.Partition, tp => positions[tp]), wait, 8 << 20, 4 << 20, cancellationToken, readCommitted);
                                return (g.Key.Topic, Fetched: fetched);
                            });
                        foreach (var (topicName, fetched) in (await Task.WhenAll(fetches)).OrderBy(f => f.Topic, StringComparer.Ordinal))
                        {
                            foreach (var (p, part) in fetched.OrderBy(f => f.Key))
                            {
                                foreach (var record in part.Records.TakeWhile(_ => printed < limit))
                                {
                                    printer.Print(record);
                                    printed++;
                                    positions[(topicName, p)] = record.Offset + 1;
                                    any = true;
                                }

                                // Past control batches and aborted transactions too, once every record of them is printed.
                                if (printed < limit && part.NextOffset > positions[(topicName, p)])
                                {
                                    positions[(topicName, p)] = part.NextOffset;
                                }
                            }
                        }
                    }

                    if (any)
                    {
                        lastRecord = DateTime.UtcNow;
                        await Console.Out.FlushAsync(cancellationToken);
                    }
                    else if (idle is { } waitMs && (DateTime.UtcNow - lastRecord).TotalMilliseconds >= waitMs)
                    {
                        break;
                    }

                    if (member is not null && DateTime.UtcNow - lastCommit > TimeSpan.FromSeconds(5))
                    {
                        await CommitQuietlyAsync(member, positions, cancellationToken);
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
                        await CommitQuietlyAsync(member, positions, bounded.Token);
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
    private static async Task JoinAsync(KafkaClient client, GroupMember member, bool fromBeginning, Dictionary<(string Topic, int Partition), long> positions, CancellationToken cancellationToken)
    {
        var assignment = await member.JoinAsync(cancellationToken);
        var committed = await client.CommittedOffsetsAsync(member.GroupId, cancellationToken);
        positions.Clear();
        foreach (var (topic, partition) in assignment)
        {
            positions[(topic, partition)] = committed.TryGetValue((topic, partition), out var offset)
                ? offset
                : await client.ListOffsetAsync(topic, partition, fromBeginning ? -2 : -1, cancellationToken);
        }
    }

    /// <summary>Commits the positions; a rebalance under way makes the commit fail, which is fine to ignore.</summary>
    private static async Task CommitQuietlyAsync(GroupMember member, Dictionary<(string Topic, int Partition), long> positions, CancellationToken cancellationToken)
    {
        try
        {
            await member.CommitAsync(positions, cancellationToken);
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

    private sealed class RecordPrinter(string format, string separator, string encoding)
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

        private string? Text(byte[]? bytes) => bytes is null ? null : encoding switch
        {
            "base64" => Convert.ToBase64String(bytes),
            "hex" => Convert.ToHexStringLower(bytes),
            _ => Encoding.UTF8.GetString(bytes),
        };
    }
}
