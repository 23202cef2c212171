using System.Globalization;
using Osprey.Broker.Config;

namespace Osprey.Cli.Commands;

/// <summary>
/// A Kafka client properties file (--command-config), read as Kafka's tools read one. The settings the CLI's client
/// has are taken; security settings it cannot honour yet are refused rather than ignored (the connection would go
/// out unencrypted and unauthenticated while its owner believes otherwise); any other client setting is accepted
/// and has no effect.
/// </summary>
internal sealed record ClientProperties(string? BootstrapServers, string? ClientId, TimeSpan? RequestTimeout)
{
    public static ClientProperties Load(string? path)
    {
        if (path is null)
        {
            return new(null, null, null);
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"Cannot read --command-config {path}: {e.Message}");
        }

        string? bootstrap = null, clientId = null;
        TimeSpan? timeout = null;
        foreach (var (name, value, line) in BrokerConfig.ParseProperties(text))
        {
            switch (name)
            {
                case "bootstrap.servers":
                    bootstrap = value.Trim();
                    break;
                case "client.id":
                    clientId = value.Trim();
                    break;
                case "request.timeout.ms" or "default.api.timeout.ms":
                    timeout = int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var ms) && ms > 0
                        ? TimeSpan.FromMilliseconds(ms)
                        : throw new ArgumentException($"{path}:{line}: {name} must be a positive number of milliseconds, not '{value}'.");
                    break;
                case "security.protocol" when !value.Trim().Equals("PLAINTEXT", StringComparison.OrdinalIgnoreCase):
                case not null when name.StartsWith("ssl.", StringComparison.Ordinal) || name.StartsWith("sasl.", StringComparison.Ordinal):
                    throw new ArgumentException($"{path}:{line}: {name} asks for TLS or SASL, which Osprey's client does not support yet.");
            }
        }

        return new(bootstrap, clientId, timeout);
    }
}
