using System.CommandLine;
using System.Text.Json;
using Osprey.Client;

namespace Osprey.Cli.Commands;

/// <summary>What the commands that talk to a cluster share: --bootstrap-server, --output and error handling.</summary>
internal static class ClientCommand
{
    public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static Option<string> Bootstrap() => new("--bootstrap-server", "-b")
    {
        Description = "host:port of a broker (comma-separated for several); default $OSPREY_BOOTSTRAP, else 127.0.0.1:9092.",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("OSPREY_BOOTSTRAP") is { Length: > 0 } fromEnvironment ? fromEnvironment : "127.0.0.1:9092",
        Recursive = true,
    };

    public static Option<string> Output()
    {
        var output = new Option<string>("--output", "-o") { Description = "table or json", DefaultValueFactory = _ => "table", Recursive = true };
        output.AcceptOnlyFromAmong("table", "json");
        return output;
    }

    /// <summary>--command-config FILE: Kafka client properties, as Kafka's tools take them (on every client command).</summary>
    public static Option<string?> CommandConfig() => new("--command-config")
    {
        Description = "A Kafka client properties file: bootstrap.servers, client.id, request.timeout.ms, security.protocol (PLAINTEXT until security is supported).",
        Recursive = true,
    };

    /// <summary>
    /// Runs <paramref name="action"/> with a client for the bootstrap servers (--bootstrap-server, else the
    /// --command-config file's bootstrap.servers, else $OSPREY_BOOTSTRAP or 127.0.0.1:9092); a Kafka error, an
    /// unreachable broker or bad input becomes one readable line on stderr and exit code 1.
    /// </summary>
    public static async Task<int> RunAsync(ParseResult result, Func<KafkaClient, Task<int>> action)
    {
        try
        {
            var bootstrap = result.GetValue<string>("--bootstrap-server")!;
            var properties = ClientProperties.Load(result.GetValue<string?>("--command-config"));
            if (result.GetResult("--bootstrap-server") is not System.CommandLine.Parsing.OptionResult { Implicit: false } && properties.BootstrapServers is { } fromFile)
            {
                bootstrap = fromFile;
            }

            await using var client = new KafkaClient(bootstrap, properties.ClientId ?? "osprey-cli") { RequestTimeout = properties.RequestTimeout ?? TimeSpan.FromSeconds(30) };
            return await action(client);
        }
        catch (KafkaException e)
        {
            await Console.Error.WriteLineAsync($"osprey: {e.Message}");
            return 1;
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"osprey: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            return 130;
        }
    }

    public static void WriteJson<T>(T value) => Console.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>Parses repeated key=value arguments; an entry without '=' is an ArgumentException naming it.</summary>
    public static Dictionary<string, string> KeyValues(IEnumerable<string>? entries, string option)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in entries ?? [])
        {
            var equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new ArgumentException($"{option} '{entry}' must look like key=value.");
            }

            result[entry[..equals]] = entry[(equals + 1)..];
        }

        return result;
    }
}
