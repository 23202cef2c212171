using System.CommandLine;
using System.Globalization;
using Osprey.Client;
using Spectre.Console;

namespace Osprey.Cli.Commands;

/// <summary><c>osprey topics list|create|describe|delete|alter</c>.</summary>
internal static class TopicsCommand
{
    public static Command Create()
    {
        var bootstrap = ClientCommand.Bootstrap();
        var output = ClientCommand.Output();
        var command = new Command("topics", "List, create, describe, alter and delete topics.") { bootstrap, output };
        command.Subcommands.Add(List(bootstrap, output));
        command.Subcommands.Add(CreateTopic(bootstrap, output));
        command.Subcommands.Add(Describe(bootstrap, output));
        command.Subcommands.Add(Delete(bootstrap));
        command.Subcommands.Add(Alter(bootstrap));
        command.Subcommands.Add(DeleteRecords());
        return command;
    }

    /// <summary>osprey topics delete-records TOPIC --before OFFSET [--partition P]: moves the low watermark (DeleteRecords).</summary>
    private static Command DeleteRecords()
    {
        var name = new Argument<string>("topic") { Description = "The topic's name." };
        var before = new Option<long>("--before") { Description = "Delete the records before this offset (-1: all records so far).", Required = true };
        var partition = new Option<int?>("--partition", "-p") { Description = "Only this partition (default: every partition)." };
        var command = new Command("delete-records", "Delete a topic's records before an offset (its log start moves there).") { name, before, partition };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var topic = result.GetValue(name)!;
            var info = await client.TopicAsync(topic, cancellationToken);
            var partitions = result.GetValue(partition) is { } only
                ? info.Partitions.Any(p => p.Partition == only) ? [only] : throw new ArgumentException($"Topic '{topic}' has no partition {only} (it has {info.Partitions.Count}).")
                : info.Partitions.Select(p => p.Partition).ToList();
            foreach (var p in partitions)
            {
                var low = await client.DeleteRecordsAsync(topic, p, result.GetValue(before), cancellationToken);
                Console.WriteLine($"{topic}-{p}: low watermark {low}");
            }

            return 0;
        }));
        return command;
    }

    private static Command List(Option<string> bootstrap, Option<string> output)
    {
        var all = new Option<bool>("--include-internal") { Description = "Also list internal topics (names starting with __)." };
        var command = new Command("list", "List the topics.") { all };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var (_, topics) = await client.MetadataAsync(null, cancellationToken);
            var shown = topics.Select(t => t.Topic).OfType<TopicInfo>().Where(t => result.GetValue(all) || !t.IsInternal).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
            if (result.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(shown.Select(t => new { name = t.Name, topicId = Metadata.MetaProperties.ToKafkaString(t.TopicId), partitions = t.Partitions.Count, replicationFactor = ReplicationFactor(t), @internal = t.IsInternal }));
                return 0;
            }

            var table = new OutputTable().AddColumns("Topic", "Partitions", "Replication factor", "Topic id");
            foreach (var topic in shown)
            {
                table.AddRow(Markup.Escape(topic.Name), Number(topic.Partitions.Count), Number(ReplicationFactor(topic)), Metadata.MetaProperties.ToKafkaString(topic.TopicId));
            }

            table.Write();
            return 0;
        }));
        return command;
    }

    private static Command CreateTopic(Option<string> bootstrap, Option<string> output)
    {
        var name = new Argument<string>("topic") { Description = "The topic's name." };
        var partitions = new Option<int>("--partitions", "-p") { Description = "Partition count (default: the broker's num.partitions).", DefaultValueFactory = _ => -1 };
        var replication = new Option<short>("--replication-factor", "-r") { Description = "Replicas per partition (default: the broker's default.replication.factor).", DefaultValueFactory = _ => -1 };
        var configs = new Option<string[]>("--config", "-c") { Description = "key=value topic config; repeatable." };
        var validateOnly = new Option<bool>("--validate-only") { Description = "Check the request without creating anything." };
        var ifNotExists = new Option<bool>("--if-not-exists") { Description = "Succeed when the topic already exists." };
        var command = new Command("create", "Create a topic.") { name, partitions, replication, configs, validateOnly, ifNotExists };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var topic = result.GetValue(name)!;
            Guid id;
            try
            {
                id = await client.CreateTopicAsync(topic, result.GetValue(partitions), result.GetValue(replication), ClientCommand.KeyValues(result.GetValue(configs), "--config"), result.GetValue(validateOnly), cancellationToken);
            }
            catch (KafkaException e) when (e.ErrorCode == Protocol.ErrorCode.TopicAlreadyExists && result.GetValue(ifNotExists))
            {
                return 0;
            }

            if (result.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(new { name = topic, topicId = id, validateOnly = result.GetValue(validateOnly) });
            }
            else
            {
                Console.WriteLine(result.GetValue(validateOnly) ? $"Topic '{topic}' could be created." : $"Created topic '{topic}'.");
            }

            return 0;
        }));
        return command;
    }

    private static Command Describe(Option<string> bootstrap, Option<string> output)
    {
        var name = new Argument<string>("topic") { Description = "The topic's name." };
        var command = new Command("describe", "Show a topic's partitions (leader, replicas, ISR, offsets) and the configs set on it.") { name };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var topic = await client.TopicAsync(result.GetValue(name)!, cancellationToken);
            var offsets = new List<(PartitionInfo Partition, long Start, long End)>();
            foreach (var partition in topic.Partitions)
            {
                offsets.Add((partition, await client.ListOffsetAsync(topic.Name, partition.Partition, -2, cancellationToken), await client.ListOffsetAsync(topic.Name, partition.Partition, -1, cancellationToken)));
            }

            var configs = (await client.DescribeConfigsAsync(ConfigResourceType.Topic, topic.Name, cancellationToken)).Where(c => c.Source == "topic").ToList();
            if (result.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(new
                {
                    name = topic.Name,
                    topicId = Metadata.MetaProperties.ToKafkaString(topic.TopicId),
                    @internal = topic.IsInternal,
                    partitions = offsets.Select(o => new { partition = o.Partition.Partition, leader = o.Partition.Leader, leaderEpoch = o.Partition.LeaderEpoch, replicas = o.Partition.Replicas, isr = o.Partition.Isr, logStartOffset = o.Start, logEndOffset = o.End }),
                    configs = configs.ToDictionary(c => c.Name, c => c.Value),
                });
                return 0;
            }

            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(topic.Name)}[/]  id {Metadata.MetaProperties.ToKafkaString(topic.TopicId)}  partitions {topic.Partitions.Count}  replication factor {ReplicationFactor(topic)}");
            var table = new OutputTable().AddColumns("Partition", "Leader", "Replicas", "ISR", "Log start", "Log end");
            foreach (var (partition, start, end) in offsets)
            {
                table.AddRow(Number(partition.Partition), Number(partition.Leader), string.Join(",", partition.Replicas), string.Join(",", partition.Isr), Number(start), Number(end));
            }

            table.Write();
            if (configs.Count > 0)
            {
                var configTable = new OutputTable().AddColumns("Config", "Value");
                foreach (var config in configs)
                {
                    configTable.AddRow(Markup.Escape(config.Name), Markup.Escape(config.Value ?? "(null)"));
                }

                configTable.Write();
            }

            return 0;
        }));
        return command;
    }

    private static Command Delete(Option<string> bootstrap)
    {
        var name = new Argument<string>("topic") { Description = "The topic's name." };
        var ifExists = new Option<bool>("--if-exists") { Description = "Succeed when the topic does not exist." };
        var command = new Command("delete", "Delete a topic and its data.") { name, ifExists };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            try
            {
                await client.DeleteTopicAsync(result.GetValue(name)!, cancellationToken);
            }
            catch (KafkaException e) when (e.ErrorCode == Protocol.ErrorCode.UnknownTopicOrPartition && result.GetValue(ifExists))
            {
                return 0;
            }

            Console.WriteLine($"Deleted topic '{result.GetValue(name)}'.");
            return 0;
        }));
        return command;
    }

    private static Command Alter(Option<string> bootstrap)
    {
        var name = new Argument<string>("topic") { Description = "The topic's name." };
        var partitions = new Option<int?>("--partitions", "-p") { Description = "Raise the partition count to this." };
        var set = new Option<string[]>("--set") { Description = "key=value topic config to set; repeatable." };
        var delete = new Option<string[]>("--delete") { Description = "Topic config to return to its default; repeatable." };
        var command = new Command("alter", "Add partitions to a topic or change its configs.") { name, partitions, set, delete };
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var topic = result.GetValue(name)!;
            var changes = ClientCommand.KeyValues(result.GetValue(set), "--set").Select(kv => new ConfigChange(kv.Key, ConfigOperation.Set, kv.Value))
                .Concat((result.GetValue(delete) ?? []).Select(k => new ConfigChange(k, ConfigOperation.Delete)))
                .ToList();
            if (result.GetValue(partitions) is null && changes.Count == 0)
            {
                throw new ArgumentException("Nothing to alter: give --partitions, --set or --delete.");
            }

            if (result.GetValue(partitions) is { } count)
            {
                await client.CreatePartitionsAsync(topic, count, validateOnly: false, cancellationToken);
                Console.WriteLine($"Topic '{topic}' now has {count} partitions.");
            }

            if (changes.Count > 0)
            {
                await client.AlterConfigsAsync(ConfigResourceType.Topic, topic, changes, validateOnly: false, cancellationToken);
                Console.WriteLine($"Updated {changes.Count} config(s) of topic '{topic}'.");
            }

            return 0;
        }));
        return command;
    }

    private static int ReplicationFactor(TopicInfo topic) => topic.Partitions.Count == 0 ? 0 : topic.Partitions.Max(p => p.Replicas.Count);

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}
