namespace Osprey.Tests;

/// <summary>Waiting for something that happens on another thread, for tests that cannot be told by an event.</summary>
internal static class TestWait
{
    /// <summary>
    /// Completes once <paramref name="condition"/> holds. The limit is generous and only keeps a broken broker from
    /// hanging the test (a loaded CI machine is slow); reaching it fails the test, naming what never happened.
    /// </summary>
    public static async Task UntilAsync(Func<bool> condition, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(condition))] string what = "")
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Still not true after 30 s: {what}");
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }
    }

    /// <inheritdoc cref="UntilAsync(Func{bool}, string)"/>
    public static async Task UntilAsync(Func<Task<bool>> condition, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(condition))] string what = "")
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Still not true after 30 s: {what}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
