using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

namespace Osprey.Benchmarks;

public static class Program
{
    // "storage" runs the end-to-end storage benchmark; anything else goes to BenchmarkDotNet.
    // docs/benchmarks.md records medians, so every BenchmarkDotNet table carries the Median column.
    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "storage")
        {
            return await StorageBenchmark.RunAsync(args[1..]);
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, DefaultConfig.Instance.AddColumn(StatisticColumn.Median));
        return 0;
    }
}
