using System.CommandLine;
using System.Globalization;
using Osprey.Client;
using Spectre.Console;

namespace Osprey.Cli.Commands;

/// <summary><c>osprey groups list|describe|reset-offsets|delete</c>: consumer groups, their members and lag.</summary>
internal static class GroupsCommand
{
    public static Command Create()
    {
        var bootstrap = ClientCommand.Bootstrap();
        var output = ClientCommand.Output();
        var command = new Command("groups", "List and describe consumer groups, see their lag, reset or delete them.") { bootstrap, output };
        command.Subcommands.Add(List(bootstrap, output));
        command.Subcommands.Add(Describe(bootstrap, output));
        command.Subcommands.Add(ResetOffsets(bootstrap, output));
        command.Subcommands.Add(Delete(bootstrap));
        command.Subcommands.Add(DeleteOffsets());
        return command;
    }

    /// <summary>osprey groups delete-offsets GROUP --topic T [--partition P]: removes committed offsets (OffsetDelete).</summary>
    private static Command DeleteOffsets()
    {
        var name = new Argument<string>("group") { Description = "The group's id." };
        var topic = new Option<string>("--topic", "-t") { Description = "The topic whose committed offsets go.", Required = true };
        var partition = new Option<int?>("--partition", "-p") { Description = "Only this partition (default: every partition of the topic)." };
        var command = new Command("delete-offsets", "Delete a group's committed offsets for a topic (not while a member subscribes to it).") { name, topic, partition };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var group = result.GetValue(name)!;
            var topicName = result.GetValue(topic)!;
            var info = await client.TopicAsync(topicName, cancellationToken);
            var partitions = result.GetValue(partition) is { } only ? [only] : info.Partitions.Select(p => p.Partition).ToList();
            await client.DeleteOffsetsAsync(group, topicName, partitions, cancellationToken);
            Console.WriteLine($"Deleted the committed offsets of group '{group}' for {string.Join(", ", partitions.Select(p => $"{topicName}-{p}"))}.");
            return 0;
        }));
        return command;
    }

    private static Command List(Option<string> bootstrap, Option<string> output)
    {
        var command = new Command("list", "List the consumer groups with their state.");
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var groups = (await client.ListGroupsAsync(cancellationToken)).OrderBy(g => g.GroupId, StringComparer.Ordinal).ToList();
            if (result.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(groups.Select(g => new { group = g.GroupId, state = g.State, protocolType = g.ProtocolType, type = g.Type }));
                return 0;
            }

            var table = new OutputTable().AddColumns("Group", "Type", "State", "Protocol type");
            foreach (var (group, state, protocolType, type) in groups)
            {
                table.AddRow(Markup.Escape(group), Markup.Escape(type), state, Markup.Escape(protocolType));
            }

            table.Write();
            return 0;
        }));
        return command;
    }

    private sealed record PartitionLag(string Topic, int Partition, long? Committed, long LogEnd, long? Lag, long? LagMs, string? Member, string? ClientId);

    private static Command Describe(Option<string> bootstrap, Option<string> output)
    {
        var name = new Argument<string>("group") { Description = "The group id." };
        var command = new Command("describe", "Show a group's state, members and assignments, and per partition its committed offset and lag.") { name };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var group = await client.DescribeGroupAsync(result.GetValue(name)!, cancellationToken);
            var committed = await client.CommittedOffsetsAsync(group.GroupId, cancellationToken);
            var owners = group.Members.SelectMany(m => m.Assignment.Select(a => (a, m))).ToDictionary(x => x.a, x => x.m);
            var partitions = committed.Keys.Union(owners.Keys).Order().ToList();
            var lags = new List<PartitionLag>();
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            foreach (var (topic, partition) in partitions)
            {
                var end = await client.ListOffsetAsync(topic, partition, -1, cancellationToken);
                long? position = committed.TryGetValue((topic, partition), out var c) ? c : null;
                long? lag = position is { } p ? Math.Max(0, end - p) : null;
                long? lagMs = lag switch
                {
                    null => null,
                    0 => 0,
                    _ => await OldestUnreadAgeAsync(client, topic, partition, position!.Value, now, cancellationToken),
                };
                owners.TryGetValue((topic, partition), out var owner);
                lags.Add(new PartitionLag(topic, partition, position, end, lag, lagMs, owner?.MemberId, owner?.ClientId));
            }

            if (result.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(new
                {
                    group = group.GroupId,
                    type = group.Type,
                    state = group.State,
                    protocolType = group.ProtocolType,
                    protocol = group.Protocol,
                    members = group.Members.Select(m => new { memberId = m.MemberId, groupInstanceId = m.GroupInstanceId, clientId = m.ClientId, host = m.ClientHost, assignment = m.Assignment.Select(a => new { topic = a.Topic, partition = a.Partition }) }),
                    partitions = lags.Select(l => new { topic = l.Topic, partition = l.Partition, committedOffset = l.Committed, logEndOffset = l.LogEnd, lag = l.Lag, lagMs = l.LagMs, memberId = l.Member, clientId = l.ClientId }),
                    totalLag = lags.Sum(l => l.Lag ?? 0),
                });
                return 0;
            }

            var protocol = group.Type == "consumer" ? $"consumer (KIP-848), assignor {Markup.Escape(group.Protocol)}" : $"{Markup.Escape(group.ProtocolType)}/{Markup.Escape(group.Protocol)}";
            AnsiConsole.MarkupLine($"Group [bold]{Markup.Escape(group.GroupId)}[/]  state {group.State}  protocol {protocol}  members {group.Members.Count}");
            if (group.Members.Count > 0)
            {
                var members = new OutputTable().AddColumns("Member", "Client id", "Host", "Partitions");
                foreach (var m in group.Members)
                {
                    members.AddRow(Markup.Escape(m.MemberId), Markup.Escape(m.ClientId), Markup.Escape(m.ClientHost), Markup.Escape(string.Join(", ", m.Assignment.Select(a => $"{a.Topic}-{a.Partition}"))));
                }

                members.Write();
            }

            var table = new OutputTable().AddColumns("Topic", "Partition", "Committed", "Log end", "Lag", "Lag (time)", "Client id");
            foreach (var l in lags)
            {
                table.AddRow(Markup.Escape(l.Topic), Number(l.Partition), l.Committed is { } c ? Number(c) : "-", Number(l.LogEnd), l.Lag is { } lag ? Number(lag) : "-", l.LagMs is { } ms ? Duration(ms) : "-", Markup.Escape(l.ClientId ?? "-"));
            }

            table.AddRow("[bold]total[/]", "", "", "", $"[bold]{Number(lags.Sum(l => l.Lag ?? 0))}[/]", "", "");
            table.Write();
            return 0;
        }));
        return command;
    }

    /// <summary>How long ago the first record the group has not read yet was written (null when it cannot be read).</summary>
    private static async Task<long?> OldestUnreadAgeAsync(KafkaClient client, string topic, int partition, long offset, long now, CancellationToken cancellationToken)
    {
        try
        {
            var leader = await client.LeaderAsync(topic, partition, cancellationToken);
            var fetched = await client.FetchAsync(leader, topic, new Dictionary<int, long> { [partition] = offset }, 0, 1 << 20, 1 << 20, cancellationToken);
            return fetched.TryGetValue(partition, out var f) && f.Records.Count > 0 ? Math.Max(0, now - f.Records[0].Timestamp) : null;
        }
        catch (KafkaException)
        {
            return null;
        }
    }

    private static Command ResetOffsets(Option<string> bootstrap, Option<string> output)
    {
        var name = new Argument<string>("group") { Description = "The group id." };
        var topic = new Option<string>("--topic", "-t") { Description = "The topic whose offsets to reset.", Required = true };
        var earliest = new Option<bool>("--to-earliest") { Description = "To each partition's log start offset." };
        var latest = new Option<bool>("--to-latest") { Description = "To each partition's log end offset." };
        var toOffset = new Option<long?>("--to-offset") { Description = "To this offset (kept within each partition's range)." };
        var toDatetime = new Option<string?>("--to-datetime") { Description = "To the first record at or after this ISO 8601 time." };
        var shiftBy = new Option<long?>("--shift-by") { Description = "Move the committed offset by N (negative goes back)." };
        var execute = new Option<bool>("--execute") { Description = "Apply the reset (without it, only show what would change)." };
        var command = new Command("reset-offsets", "Move a group's committed offsets for a topic; only while the group has no active members.") { name, topic, earliest, latest, toOffset, toDatetime, shiftBy, execute };
        command.Validators.Add(r =>
        {
            var modes = new[] { r.GetValue(earliest), r.GetValue(latest), r.GetValue(toOffset) is not null, r.GetValue(toDatetime) is not null, r.GetValue(shiftBy) is not null }.Count(b => b);
            if (modes != 1)
            {
                r.AddError("Give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime and --shift-by.");
            }
        });
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var groupId = result.GetValue(name)!;
            var topicName = result.GetValue(topic)!;
            var group = await client.DescribeGroupAsync(groupId, cancellationToken);
            if (group.State is not ("Empty" or "Dead"))
            {
                throw new KafkaException(Protocol.ErrorCode.NonEmptyGroup, $"Group '{groupId}' has active members (state {group.State}); stop its consumers before resetting offsets.");
            }

            var info = await client.TopicAsync(topicName, cancellationToken);
            var committed = await client.CommittedOffsetsAsync(groupId, cancellationToken);
            var plan = new List<(int Partition, long? Current, long New)>();
            foreach (var partition in info.Partitions.Select(p => p.Partition))
            {
                var start = await client.ListOffsetAsync(topicName, partition, -2, cancellationToken);
                var end = await client.ListOffsetAsync(topicName, partition, -1, cancellationToken);
                long? current = committed.TryGetValue((topicName, partition), out var c) ? c : null;
                long target;
                if (result.GetValue(earliest))
                {
                    target = start;
                }
                else if (result.GetValue(latest))
                {
                    target = end;
                }
                else if (result.GetValue(toOffset) is { } offset)
                {
                    target = offset;
                }
                else if (result.GetValue(toDatetime) is { } text)
                {
                    if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
                    {
                        throw new ArgumentException($"--to-datetime '{text}' is not an ISO 8601 time.");
                    }

                    target = await client.ListOffsetAsync(topicName, partition, time.ToUnixTimeMilliseconds(), cancellationToken);
                    target = target < 0 ? end : target;
                }
                else
                {
                    target = (current ?? start) + result.GetValue(shiftBy)!.Value;
                }

                plan.Add((partition, current, Math.Clamp(target, start, end)));
            }

            if (result.GetValue(execute))
            {
                await client.CommitOffsetsAsync(groupId, plan.ToDictionary(p => (topicName, p.Partition), p => p.New), cancellationToken);
            }

            if (result.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(new { group = groupId, topic = topicName, executed = result.GetValue(execute), partitions = plan.Select(p => new { partition = p.Partition, current = p.Current, @new = p.New }) });
                return 0;
            }

            var table = new OutputTable().AddColumns("Topic", "Partition", "Current", "New");
            foreach (var (partition, current, target) in plan)
            {
                table.AddRow(Markup.Escape(topicName), Number(partition), current is { } v ? Number(v) : "-", Number(target));
            }

            table.Write();
            Console.WriteLine(result.GetValue(execute) ? $"Reset {plan.Count} partition(s) of '{topicName}' for group '{groupId}'." : "Dry run: nothing changed. Add --execute to apply.");
            return 0;
        }));
        return command;
    }

    private static Command Delete(Option<string> bootstrap)
    {
        var name = new Argument<string>("group") { Description = "The group id." };
        var command = new Command("delete", "Delete an empty group and its committed offsets.") { name };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            await client.DeleteGroupAsync(result.GetValue(name)!, cancellationToken);
            Console.WriteLine($"Deleted group '{result.GetValue(name)}'.");
            return 0;
        }));
        return command;
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Duration(long ms) => ms switch
    {
        < 1000 => FormattableString.Invariant($"{ms} ms"),
        < 60_000 => FormattableString.Invariant($"{ms / 1000.0:0.#} s"),
        < 3_600_000 => FormattableString.Invariant($"{ms / 60_000.0:0.#} min"),
        _ => FormattableString.Invariant($"{ms / 3_600_000.0:0.#} h"),
    };
}
