using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Osprey.Protocol;
using Spectre.Console;

namespace Osprey.Cli.Commands;

/// <summary><c>osprey apis</c>: the Kafka APIs Osprey has message definitions for, with their versions.</summary>
internal static class ApisCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--output", "-o")
        {
            Description = "table or json",
            DefaultValueFactory = _ => "table",
        };
        output.AcceptOnlyFromAmong("table", "json");
        var command = new Command("apis", "List the Kafka APIs Osprey's codec knows, with version ranges.") { output };
        command.SetAction(result =>
        {
            if (result.GetValue(output) == "json")
            {
                var rows = ApiMessages.All.Select(d => new
                {
                    key = (short)d.Key,
                    name = d.Name,
                    minVersion = d.LowestVersion,
                    maxVersion = d.HighestVersion,
                    firstFlexibleVersion = d.FirstFlexibleVersion,
                });
                Console.WriteLine(JsonSerializer.Serialize(rows));
                return 0;
            }

            var table = new Table().AddColumns("Key", "API", "Versions", "Flexible from");
            foreach (var d in ApiMessages.All)
            {
                table.AddRow(
                    ((short)d.Key).ToString(CultureInfo.InvariantCulture),
                    d.Name,
                    $"{d.LowestVersion}-{d.HighestVersion}",
                    d.FirstFlexibleVersion < 0 ? "-" : d.FirstFlexibleVersion.ToString(CultureInfo.InvariantCulture));
            }

            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }
}
