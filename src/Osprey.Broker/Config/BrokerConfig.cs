using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace Osprey.Broker.Config;

/// <summary>A setting that is unknown or has an invalid value; the message names it and where it came from.</summary>
public sealed class BrokerConfigException(string message) : Exception(message);

/// <summary>
/// The broker's static settings: Kafka's defaults overlaid, in rising precedence, by a properties file
/// (<c>--config</c>), <c>OSPREY_&lt;KEY&gt;</c> environment variables and <c>--set key=value</c>. Every value is
/// validated when loaded; settings Kafka has but Osprey does not use are kept apart (<see cref="Unused"/>) and
/// reported in <see cref="Warnings"/>. Settings that would restrict access (TLS, SASL, an authorizer) stop the load:
/// until security is implemented, ignoring them would start a broker its owner believes secured wide open.
/// </summary>
public sealed class BrokerConfig
{
    public const string EnvironmentPrefix = "OSPREY_";

    /// <summary>Osprey's own environment variables that are not broker settings: the CLI's default bootstrap server, the tests' knobs.</summary>
    private static readonly string[] OtherVariables = ["OSPREY_BOOTSTRAP", "OSPREY_FUZZ_CASES", "OSPREY_SAVE_GOLDEN"];

    /// <summary>Names Kafka's authorizer reads from the broker's properties (not in Kafka's broker config list).</summary>
    private static readonly string[] AuthorizerSettings = ["allow.everyone.if.no.acl.found", "super.users"];

    private BrokerConfig(ImmutableSortedDictionary<string, string> values, ImmutableSortedDictionary<string, string> unused, ImmutableArray<string> warnings)
    {
        Values = values;
        Unused = unused;
        Warnings = warnings;
    }

    /// <summary>Every setting left at its default.</summary>
    public static BrokerConfig Defaults { get; } = new(ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal), ImmutableSortedDictionary.Create<string, string>(StringComparer.Ordinal), []);

    /// <summary>The settings given explicitly (the rest are defaults).</summary>
    public ImmutableSortedDictionary<string, string> Values { get; }

    /// <summary>Kafka settings given explicitly that Osprey has no use for (reported by DescribeConfigs as given).</summary>
    public ImmutableSortedDictionary<string, string> Unused { get; }

    /// <summary>Settings that were ignored, one readable line each.</summary>
    public ImmutableArray<string> Warnings { get; }

    /// <summary>A config with <paramref name="settings"/> set (validated like <c>--set</c>).</summary>
    public static BrokerConfig From(params (string Name, string Value)[] settings) =>
        Load(null, new Dictionary<string, string>(), settings.Select(s => $"{s.Name}={s.Value}"));

    /// <summary>
    /// Reads the sources in precedence order. Throws <see cref="BrokerConfigException"/> naming the first unknown
    /// or invalid setting.
    /// </summary>
    public static BrokerConfig Load(string? propertiesFile, IReadOnlyDictionary<string, string> environment, IEnumerable<string> sets)
    {
        var values = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        var unused = ImmutableSortedDictionary.CreateBuilder<string, string>(StringComparer.Ordinal);
        var warnings = ImmutableArray.CreateBuilder<string>();

        void Add(string name, string value, string origin)
        {
            if (SecurityRefusal(name, value) is { } refusal)
            {
                throw new BrokerConfigException($"{name} (from {origin}): {refusal}");
            }

            if (BrokerSettings.Find(name) is { } definition)
            {
                if (definition.Validate(value) is { } problem)
                {
                    throw new BrokerConfigException($"{problem} (from {origin})");
                }

                values[name] = value.Trim();
            }
            else if (KafkaBrokerConfigs.Find(name) is not null || AuthorizerSettings.Contains(name))
            {
                unused[name] = value.Trim();
                warnings.Add($"{name} (from {origin}) is a Kafka setting Osprey does not use; ignored.");
            }
            else
            {
                throw new BrokerConfigException($"Unknown setting '{name}' (from {origin}).");
            }
        }

        if (propertiesFile is not null)
        {
            string text;
            try
            {
                text = File.ReadAllText(propertiesFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new BrokerConfigException($"Cannot read the config file {propertiesFile}: {e.Message}");
            }

            foreach (var (name, value, line) in ParseProperties(text))
            {
                Add(name, value, $"{propertiesFile}:{line}");
            }
        }

        var byVariable = BrokerSettings.All.Keys.Concat(KafkaBrokerConfigs.All.Keys).Concat(AuthorizerSettings)
            .Distinct(StringComparer.Ordinal)
            .ToDictionary(VariableName, StringComparer.Ordinal);
        foreach (var (variable, value) in environment.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            if (!variable.StartsWith(EnvironmentPrefix, StringComparison.Ordinal))
            {
                continue;
            }

            if (byVariable.TryGetValue(variable, out var name))
            {
                Add(name, value, $"environment variable {variable}");
            }
            else if (!OtherVariables.Contains(variable, StringComparer.Ordinal))
            {
                throw new BrokerConfigException($"The environment variable {variable} names no broker setting (OSPREY_ followed by a setting's name upper-cased, '.' as '_', e.g. OSPREY_LOG_RETENTION_MS).");
            }
        }

        foreach (var set in sets)
        {
            var equals = set.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new BrokerConfigException($"--set '{set}' must look like key=value.");
            }

            Add(set[..equals].Trim(), set[(equals + 1)..], $"--set {set}");
        }

        return new BrokerConfig(values.ToImmutable(), unused.ToImmutable(), warnings.ToImmutable());
    }

    /// <summary>
    /// Why a setting that would restrict who may connect or what they may do cannot be honoured yet, or null. Such a
    /// setting stops the start: served without it, the broker would be open to everyone while its owner thinks
    /// otherwise. Settings whose absence exposes nothing (super.users without an authorizer) are only ignored.
    /// </summary>
    private static string? SecurityRefusal(string name, string value)
    {
        const string NotYet = "Osprey does not support TLS, SASL or ACLs yet, and will not start without the protection this setting asks for.";
        if (name.StartsWith("ssl.", StringComparison.Ordinal) || name.StartsWith("sasl.", StringComparison.Ordinal)
            || (name.StartsWith("listener.name.", StringComparison.Ordinal) && (name.Contains(".ssl.", StringComparison.Ordinal) || name.Contains(".sasl.", StringComparison.Ordinal) || name.EndsWith(".jaas.config", StringComparison.Ordinal))))
        {
            return NotYet;
        }

        return name switch
        {
            "authorizer.class.name" when value.Trim().Length > 0 => NotYet,
            "security.inter.broker.protocol" when !value.Trim().Equals("PLAINTEXT", StringComparison.OrdinalIgnoreCase) => NotYet,
            _ => null,
        };
    }

    /// <summary>The environment variable for a setting: OSPREY_ and the name upper-cased with '.' and '-' as '_'.</summary>
    public static string VariableName(string setting) =>
        EnvironmentPrefix + setting.ToUpperInvariant().Replace('.', '_').Replace('-', '_');

    /// <summary>This config with more settings laid on top (used for the dedicated command-line flags).</summary>
    public BrokerConfig With(params (string Name, string? Value)[] settings)
    {
        var result = Load(null, new Dictionary<string, string>(), settings.Where(s => s.Value is not null).Select(s => $"{s.Name}={s.Value}"));
        return new BrokerConfig(Values.SetItems(result.Values), Unused.SetItems(result.Unused), Warnings.AddRange(result.Warnings));
    }

    /// <summary>The value in force: the one given, else the default (null when neither).</summary>
    public string? Get(string name) =>
        Values.TryGetValue(name, out var value) ? value
        : BrokerSettings.Find(name) is { } definition ? definition.Default
        : throw new ArgumentException($"{name} is not a broker setting Osprey knows.", nameof(name));

    public int GetInt(string name) => int.Parse(Get(name)!, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    public long GetLong(string name) => long.Parse(Get(name)!, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    public double GetDouble(string name) => double.Parse(Get(name)!, NumberStyles.Float, CultureInfo.InvariantCulture);

    public bool GetBool(string name) => bool.Parse(Get(name)!);

    /// <summary>
    /// Java properties syntax: '#' and '!' comments, key=value, key:value or key value, backslash line
    /// continuations and escapes (\t \n \r \f \uXXXX and escaped separators).
    /// </summary>
    public static IEnumerable<(string Name, string Value, int Line)> ParseProperties(string text)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var startLine = i + 1;
            var logical = lines[i].TrimStart();
            if (logical.Length == 0 || logical[0] is '#' or '!')
            {
                continue;
            }

            while (EndsWithContinuation(logical) && i + 1 < lines.Length)
            {
                logical = logical[..^1] + lines[++i].TrimStart();
            }

            var keyEnd = 0;
            while (keyEnd < logical.Length && !(logical[keyEnd] is '=' or ':' || char.IsWhiteSpace(logical[keyEnd])))
            {
                keyEnd += logical[keyEnd] == '\\' ? 2 : 1;
            }

            keyEnd = Math.Min(keyEnd, logical.Length);
            var valueStart = keyEnd;
            while (valueStart < logical.Length && char.IsWhiteSpace(logical[valueStart]))
            {
                valueStart++;
            }

            if (valueStart < logical.Length && logical[valueStart] is '=' or ':')
            {
                valueStart++;
            }

            while (valueStart < logical.Length && char.IsWhiteSpace(logical[valueStart]))
            {
                valueStart++;
            }

            yield return (Unescape(logical[..keyEnd], startLine), Unescape(logical[valueStart..], startLine), startLine);
        }
    }

    private static bool EndsWithContinuation(string line)
    {
        var backslashes = 0;
        for (var i = line.Length - 1; i >= 0 && line[i] == '\\'; i--)
        {
            backslashes++;
        }

        return backslashes % 2 == 1;
    }

    private static string Unescape(string text, int line)
    {
        if (!text.Contains('\\', StringComparison.Ordinal))
        {
            return text;
        }

        var result = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\' || i + 1 == text.Length)
            {
                result.Append(text[i]);
                continue;
            }

            var c = text[++i];
            switch (c)
            {
                case 't': result.Append('\t'); break;
                case 'n': result.Append('\n'); break;
                case 'r': result.Append('\r'); break;
                case 'f': result.Append('\f'); break;
                case 'u' when i + 4 < text.Length && ushort.TryParse(text.AsSpan(i + 1, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var code):
                    result.Append((char)code);
                    i += 4;
                    break;
                case 'u':
                    throw new BrokerConfigException($"Malformed \\uXXXX escape on line {line}.");
                default: result.Append(c); break;
            }
        }

        return result.ToString();
    }
}
