namespace Osprey.Tests;

/// <summary>
/// How long one test may take before it fails as hung (xunit enforces a Timeout on async tests; a timed-out test's
/// TestContext.Current.CancellationToken is cancelled). Generous: a loaded CI machine is slow, and the limit is there
/// to name a hang, not to time anything. The whole run also has a limit (tests/Directory.Build.props).
/// </summary>
internal static class TestLimits
{
    /// <summary>Any async test.</summary>
    public const int Timeout = 5 * 60 * 1000;

    /// <summary>Tests that start ./osprey, which builds the CLI first in a fresh clone.</summary>
    public const int ProcessTimeout = 15 * 60 * 1000;
}
