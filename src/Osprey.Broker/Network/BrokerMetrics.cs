using System.Diagnostics.Metrics;
using Osprey.Protocol;

namespace Osprey.Broker.Network;

/// <summary>
/// The broker's instruments on <see cref="System.Diagnostics.Metrics"/>, readable live with
/// <c>dotnet-counters monitor -n osprey --counters Osprey.Broker</c> or any OpenTelemetry exporter.
/// <c>osprey.request.duration</c> is Kafka's request TotalTimeMs: from a request's last byte read to its response
/// handed to the socket, per API.
/// </summary>
public static class BrokerMetrics
{
    public const string MeterName = "Osprey.Broker";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Histogram<double> RequestDuration = Meter.CreateHistogram<double>(
        "osprey.request.duration", unit: "ms", description: "Time from a request's arrival to its response being written, per API.");

    private static readonly string[] ApiNames = Names();

    public static void RequestCompleted(short apiKey, long startedTimestamp, long endedTimestamp)
    {
        if (!RequestDuration.Enabled)
        {
            return;
        }

        var name = apiKey >= 0 && apiKey < ApiNames.Length ? ApiNames[apiKey] : "Unknown";
        var ms = (endedTimestamp - startedTimestamp) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
        RequestDuration.Record(ms, new KeyValuePair<string, object?>("api", name));
    }

    // Tag values made once, indexed by API key (the keys have gaps: those are "Unknown").
    private static string[] Names()
    {
        var keys = Enum.GetValues<ApiKey>();
        var names = Enumerable.Repeat("Unknown", keys.Max(k => (int)k) + 1).ToArray();
        foreach (var key in keys)
        {
            names[(int)key] = key.ToString();
        }

        return names;
    }
}
