using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

namespace Osprey.Benchmarks;

public static class Program
{
    // docs/benchmarks.md records medians, so every table carries the Median column.
    public static void Main(string[] args) =>
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly)
            .Run(args, DefaultConfig.Instance.AddColumn(StatisticColumn.Median));
}
