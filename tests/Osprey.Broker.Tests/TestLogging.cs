using Microsoft.Extensions.Logging;

namespace Osprey.Broker.Tests;

/// <summary>
/// Broker log lines go to the output of the test that started the broker (captured when it is created: Kestrel's
/// threads do not carry the test context), so a failure shows why a connection was closed.
/// </summary>
internal sealed class TestOutputLoggerProvider : ILoggerProvider
{
    private readonly ITestOutputHelper? _output = TestContext.Current.TestOutputHelper;

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _output);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ITestOutputHelper? output) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            try
            {
                output?.WriteLine($"[{logLevel}] {category}: {formatter(state, exception)} {exception}");
            }
            catch (InvalidOperationException)
            {
                // The test has finished; its output is closed.
            }
        }
    }
}
