using System.Globalization;

namespace Osprey.Broker.Config;

/// <summary>Kafka's config types as DescribeConfigs v3+ reports them.</summary>
public enum ConfigType : sbyte
{
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}

/// <summary>Where a config value came from, as DescribeConfigs reports it (Kafka's ConfigSource ids).</summary>
public enum ConfigSource : sbyte
{
    Unknown = 0,
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

/// <summary>
/// One setting: its name, type, default (null when it has none) and the values it accepts. Numeric bounds are
/// inclusive; <see cref="ValidValues"/> restricts a string, or each item of a list.
/// </summary>
public sealed record ConfigDefinition(string Name, ConfigType Type, string? Default)
{
    public decimal? Min { get; init; }

    public decimal? Max { get; init; }

    public IReadOnlyList<string>? ValidValues { get; init; }

    /// <summary>Whether the value may be changed while the broker runs (Incremental/AlterConfigs on a broker).</summary>
    public bool Dynamic { get; init; }

    /// <summary>Null when <paramref name="value"/> is acceptable; otherwise a message naming the setting.</summary>
    public string? Validate(string? value)
    {
        if (value is null)
        {
            return Default is null ? null : $"Null value not supported for config {Name}";
        }

        var problem = Type switch
        {
            ConfigType.Boolean => bool.TryParse(value.Trim(), out _) ? null : "Expected value to be either true or false",
            ConfigType.Int => CheckNumber(int.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i), i, "INT"),
            ConfigType.Short => CheckNumber(short.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var s), s, "SHORT"),
            ConfigType.Long => CheckNumber(long.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l), l, "LONG"),
            ConfigType.Double => CheckNumber(double.TryParse(value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d), d is > (double)decimal.MaxValue or < (double)decimal.MinValue ? 0 : (decimal)d, "DOUBLE"),
            ConfigType.List => ValidValues is null ? null : CheckItems(value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)),
            _ => ValidValues is null || ValidValues.Contains(value, StringComparer.Ordinal) ? null : $"String must be one of: {string.Join(", ", ValidValues)}",
        };
        return problem is null ? null : $"Invalid value {value} for configuration {Name}: {problem}";
    }

    /// <summary>Kafka's wording (ConfigDef's type and range checks), so tools and people see the messages they know.</summary>
    private string? CheckNumber(bool parsed, decimal value, string kafkaType)
    {
        if (!parsed)
        {
            return $"Not a number of type {kafkaType}";
        }

        return (Min, Max) switch
        {
            ({ } min, _) when value < min => $"Value must be at least {min}",
            (_, { } max) when value > max => $"Value must be no more than {max}",
            _ => null,
        };
    }

    private string? CheckItems(string[] items)
    {
        if (items.Length == 0)
        {
            return "Empty list";
        }

        var bad = items.FirstOrDefault(i => !ValidValues!.Contains(i, StringComparer.Ordinal));
        return bad is null ? null : $"String must be one of: {string.Join(", ", ValidValues!)}";
    }
}
