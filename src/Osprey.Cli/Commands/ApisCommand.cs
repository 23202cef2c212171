using System.CommandLine;
using System.Globalization;
using Osprey.Protocol;
using Spectre.Console;

namespace Osprey.Cli.Commands;

/// <summary>
/// <c>osprey apis</c>: the Kafka APIs the broker at --bootstrap-server advertises (its ApiVersions answer), with
/// the range Osprey's codec can encode beside each (so a gap between the two shows). With --codec, no broker is
/// asked: every API the codec knows.
/// </summary>
internal static class ApisCommand
{
    public static Command Create()
    {
        var bootstrap = ClientCommand.Bootstrap();
        var output = ClientCommand.Output();
        var codecOnly = new Option<bool>("--codec") { Description = "List what Osprey's codec knows, without asking a broker." };
        var command = new Command("apis", "List the Kafka APIs the broker advertises (ApiVersions), with the versions Osprey's codec speaks.") { bootstrap, output, codecOnly };
        command.SetAction(async (result, cancellationToken) =>
        {
            var json = result.GetValue(output) == "json";
            if (result.GetValue(codecOnly))
            {
                var known = ApiMessages.All.Select(d => new ApiRow((short)d.Key, d.Name, null, $"{d.LowestVersion}-{d.HighestVersion}")).ToList();
                Print(known, json, broker: false);
                return 0;
            }

            return await ClientCommand.RunAsync(result, async client =>
            {
                var connection = await client.AnyAsync(cancellationToken);
                var rows = connection.BrokerVersions.OrderBy(v => v.Key).Select(v =>
                {
                    var codec = ApiMessages.TryGet(v.Key, out var d) ? $"{d.LowestVersion}-{d.HighestVersion}" : "-";
                    var name = ApiMessages.TryGet(v.Key, out var named) ? named.Name : $"(unknown {((short)v.Key).ToString(CultureInfo.InvariantCulture)})";
                    return new ApiRow((short)v.Key, name, $"{v.Value.Min}-{v.Value.Max}", codec);
                }).ToList();
                Print(rows, json, broker: true);
                return 0;
            });
        });
        return command;
    }

    private static void Print(List<ApiRow> rows, bool json, bool broker)
    {
        if (json)
        {
            ClientCommand.WriteJson(rows.Select(r => new { key = r.Key, name = r.Name, brokerVersions = r.Broker, codecVersions = r.Codec }));
            return;
        }

        var table = broker ? new OutputTable().AddColumns("Key", "API", "Broker", "Codec") : new OutputTable().AddColumns("Key", "API", "Codec");
        foreach (var r in rows)
        {
            var key = r.Key.ToString(CultureInfo.InvariantCulture);
            _ = broker ? table.AddRow(key, Markup.Escape(r.Name), r.Broker!, r.Codec) : table.AddRow(key, Markup.Escape(r.Name), r.Codec);
        }

        table.Write();
    }

    private sealed record ApiRow(short Key, string Name, string? Broker, string Codec);
}
