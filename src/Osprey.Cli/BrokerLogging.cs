using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Osprey.Cli;

/// <summary>
/// The broker's log lines on stderr through Microsoft.Extensions.Logging: one human-readable line each (UTC time,
/// level, category, message), or with <c>--log-format json</c> one JSON object per line. Osprey's own lines from
/// Information up; the hosting framework's only from Warning (its "Now listening on: http://..." names Kestrel's
/// endpoint, not the Kafka listener, which the start banner reports).
/// </summary>
internal sealed class BrokerLogging : ILoggerProvider
{
    private readonly ILoggerFactory _factory;

    public BrokerLogging(string format)
    {
        _factory = LoggerFactory.Create(builder =>
        {
            builder.SetMinimumLevel(LogLevel.Information);
            builder.AddFilter("Microsoft", LogLevel.Warning);
            builder.AddFilter("System", LogLevel.Warning);
            builder.AddFilter("Microsoft.Extensions.Hosting", LogLevel.Critical); // start failures are reported by osprey itself
            builder.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            if (format == "json")
            {
                builder.AddJsonConsole(o =>
                {
                    o.UseUtcTimestamp = true;
                    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                });
            }
            else
            {
                builder.AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.UseUtcTimestamp = true;
                    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                    o.ColorBehavior = LoggerColorBehavior.Disabled;
                });
            }
        });
    }

    public ILogger CreateLogger(string categoryName) => _factory.CreateLogger(categoryName);

    public void Dispose() => _factory.Dispose();
}
