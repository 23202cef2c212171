using System.CommandLine;
using Osprey.Client;
using Spectre.Console;

namespace Osprey.Cli.Commands;

/// <summary><c>osprey configs describe|alter</c> for a topic (--topic) or a broker (--broker N, or --broker-defaults).</summary>
internal static class ConfigsCommand
{
    public static Command Create()
    {
        var bootstrap = ClientCommand.Bootstrap();
        var output = ClientCommand.Output();
        var command = new Command("configs", "Show and change topic and broker configs.") { bootstrap, output };
        command.Subcommands.Add(Describe(bootstrap, output));
        command.Subcommands.Add(Alter(bootstrap));
        return command;
    }

    private static (Option<string?> Topic, Option<int?> Broker, Option<bool> Defaults) Target(Command command)
    {
        var topic = new Option<string?>("--topic", "-t") { Description = "The topic." };
        var broker = new Option<int?>("--broker") { Description = "The broker's node id." };
        var defaults = new Option<bool>("--broker-defaults") { Description = "The cluster-wide dynamic broker defaults." };
        command.Options.Add(topic);
        command.Options.Add(broker);
        command.Options.Add(defaults);
        command.Validators.Add(result =>
        {
            if (new[] { result.GetValue(topic) is not null, result.GetValue(broker) is not null, result.GetValue(defaults) }.Count(b => b) != 1)
            {
                result.AddError("Give exactly one of --topic, --broker and --broker-defaults.");
            }
        });
        return (topic, broker, defaults);
    }

    private static (ConfigResourceType, string) Resolve(ParseResult result, (Option<string?> Topic, Option<int?> Broker, Option<bool> Defaults) target) =>
        result.GetValue(target.Topic) is { } topic ? (ConfigResourceType.Topic, topic)
        : result.GetValue(target.Broker) is { } broker ? (ConfigResourceType.Broker, broker.ToString(System.Globalization.CultureInfo.InvariantCulture))
        : (ConfigResourceType.Broker, "");

    private static Command Describe(Option<string> bootstrap, Option<string> output)
    {
        var all = new Option<bool>("--all") { Description = "Include settings left at their defaults." };
        var command = new Command("describe", "Show the configs in force and where each comes from.") { all };
        var target = Target(command);
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var (type, name) = Resolve(result, target);
            var entries = (await client.DescribeConfigsAsync(type, name, cancellationToken)).Where(e => result.GetValue(all) || !e.IsDefault).OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
            if (result.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(entries.Select(e => new { name = e.Name, value = e.IsSensitive ? null : e.Value, source = e.Source, readOnly = e.IsReadOnly, sensitive = e.IsSensitive }));
                return 0;
            }

            var table = new OutputTable().AddColumns("Config", "Value", "Source", "Read-only");
            foreach (var entry in entries)
            {
                table.AddRow(Markup.Escape(entry.Name), Markup.Escape(entry.IsSensitive ? "(sensitive)" : entry.Value ?? "(null)"), entry.Source, entry.IsReadOnly ? "yes" : "");
            }

            table.Write();
            return 0;
        }));
        return command;
    }

    private static Command Alter(Option<string> bootstrap)
    {
        var set = new Option<string[]>("--set") { Description = "key=value to set; repeatable." };
        var delete = new Option<string[]>("--delete") { Description = "A config to return to its default; repeatable." };
        var validateOnly = new Option<bool>("--validate-only") { Description = "Check the change without making it." };
        var command = new Command("alter", "Set or remove config overrides.") { set, delete, validateOnly };
        var target = Target(command);
        command.SetAction((result, cancellationToken) => ClientCommand.RunAsync(result, async client =>
        {
            var (type, name) = Resolve(result, target);
            var changes = ClientCommand.KeyValues(result.GetValue(set), "--set").Select(kv => new ConfigChange(kv.Key, ConfigOperation.Set, kv.Value))
                .Concat((result.GetValue(delete) ?? []).Select(k => new ConfigChange(k, ConfigOperation.Delete)))
                .ToList();
            if (changes.Count == 0)
            {
                throw new ArgumentException("Nothing to alter: give --set or --delete.");
            }

            await client.AlterConfigsAsync(type, name, changes, result.GetValue(validateOnly), cancellationToken);
            Console.WriteLine(result.GetValue(validateOnly) ? $"The {changes.Count} change(s) are valid." : $"Applied {changes.Count} change(s).");
            return 0;
        }));
        return command;
    }
}
